import type { HookEvent } from '../../daemon/plugins/api.ts';

/**
 * The command's environment: the daemon's own (without any BATCHD_ variable it may have, so a
 * field the event lacks reads as unset rather than as something inherited), the hook's
 * `environment`, then the event's fields.
 */
export function eventEnvironment(
  event: HookEvent,
  extra: Readonly<Record<string, string>>,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('BATCHD_')) env[key] = value;
  Object.assign(env, extra);
  const set = (name: string, value: string | number | null | undefined): void => {
    if (value !== undefined && value !== null) env[name] = String(value);
  };
  set('BATCHD_EVENT', event.event);
  set('BATCHD_EVENT_ID', event.id);
  set('BATCHD_EVENT_TIME', event.time);
  set('BATCHD_EVENT_JSON', JSON.stringify(event));
  set('BATCHD_QUEUE', event.queue);
  set('BATCHD_JOB_ID', event.jobId);
  set('BATCHD_TASK', event.task);
  set('BATCHD_HOST', event.host);
  set('BATCHD_REASON', event.reason);
  set('BATCHD_OUTCOME', event.outcome);
  set('BATCHD_EXIT_CODE', event.exitCode);
  if (event.counts !== undefined) {
    set('BATCHD_COUNTS', JSON.stringify(event.counts));
    for (const [state, n] of Object.entries(event.counts)) set(`BATCHD_COUNT_${state.toUpperCase()}`, n);
  }
  return env;
}
