import { describe, expect, it } from 'vitest';
import type { z } from 'zod';

import { DEFAULTS } from '../../daemon/config/defaults.ts';
import { type authSchema, managerSchema } from '../../daemon/config/manager.ts';
import {
  daemonConfigSchema,
  hookSchema,
  jobTypeSchema,
  queueSettingsSchema,
} from '../../daemon/config/schema.ts';
import { hostSchema } from '../../daemon/hosts/schema.ts';

/** The settings a block of the configuration may hold, as a user writes them. */
type Block<T> = Partial<NonNullable<T>>;
type DaemonInput = z.input<typeof daemonConfigSchema>;
type AuthBlock = Exclude<z.input<typeof authSchema>, string | boolean | undefined>;

// Each block of defaults names real settings with their real types: a renamed or retyped setting
// fails to compile here (the defaults module cannot say `satisfies` itself; its comment says why).
const typed = [
  DEFAULTS.daemon satisfies Block<DaemonInput>,
  DEFAULTS.dispatcher satisfies Block<DaemonInput['dispatcher']>,
  DEFAULTS.logging satisfies Block<DaemonInput['logging']>,
  DEFAULTS.storage satisfies Block<DaemonInput['storage']>,
  DEFAULTS.queue satisfies Block<z.input<typeof queueSettingsSchema>>,
  DEFAULTS.hook satisfies Block<z.input<typeof hookSchema>>,
  DEFAULTS.host satisfies Block<z.input<typeof hostSchema>>,
  { auth: DEFAULTS.manager.auth, port: DEFAULTS.manager.port } satisfies Block<z.input<typeof managerSchema>>,
  { basic: DEFAULTS.auth.basic, failed_logins: DEFAULTS.auth.failed_logins } satisfies Block<AuthBlock>,
  { on_fail: DEFAULTS.jobType.on_fail, syntax: DEFAULTS.jobType.syntax } satisfies Block<
    z.input<typeof jobTypeSchema>
  >,
];

const seconds = (s: number): number => s * 1000;

describe('the defaults, in one place', () => {
  it('are what an empty batchd.yaml parses to', () => {
    expect(typed).toHaveLength(10);
    const config = daemonConfigSchema.parse({});
    expect(config.spool).toBe(DEFAULTS.daemon.spool);
    expect(config.default_queue).toBe(DEFAULTS.daemon.default_queue);
    const d = DEFAULTS.dispatcher;
    expect(config.dispatcher).toEqual({
      workers: d.workers,
      poll_timeout: seconds(d.poll_timeout),
      stable_time: seconds(d.stable_time),
      grace_time: seconds(d.grace_time),
      kill_grace: seconds(d.kill_grace),
      lock_stale: seconds(d.lock_stale),
      reap_interval: seconds(d.reap_interval),
      max_interruptions: d.max_interruptions,
      containment: d.containment,
    });
    expect(config.logging).toEqual(DEFAULTS.logging);
    expect(config.storage).toEqual({
      ...DEFAULTS.storage,
      journal_checkpoint: seconds(DEFAULTS.storage.journal_checkpoint),
    });
    const m = DEFAULTS.manager;
    expect(config.manager).toMatchObject({
      enabled: m.enabled,
      host: m.host,
      port: m.port,
      auth: m.auth,
      allow_unauthenticated_remote: m.allow_unauthenticated_remote,
      max_body_bytes: m.max_body_bytes,
      token_ttl: seconds(m.token_ttl),
      max_token_ttl: seconds(m.max_token_ttl),
    });
  });

  it('fill in an auth block, a queue, a job type, a host and a hook', () => {
    const manager = managerSchema.parse({ auth: {} });
    expect(manager.auth).toMatchObject({
      basic: DEFAULTS.auth.basic,
      token: DEFAULTS.auth.token,
      failed_logins: {
        per_user: DEFAULTS.auth.failed_logins.per_user,
        per_address: DEFAULTS.auth.failed_logins.per_address,
        window: seconds(DEFAULTS.auth.failed_logins.window),
      },
    });
    expect(queueSettingsSchema.parse({})).toEqual(DEFAULTS.queue);
    const type = jobTypeSchema.parse({ name: 't', template: 'true', params: [{ name: 'p' }] });
    expect(type).toMatchObject({
      syntax: DEFAULTS.jobType.syntax,
      on_fail: DEFAULTS.jobType.on_fail,
      params: [{ type: DEFAULTS.jobType.param_type }],
    });
    expect(jobTypeSchema.parse({ name: 't', template: 'true', on_fail: 'retry' }).on_fail).toEqual({
      retry: DEFAULTS.jobType.retry,
    });
    const h = DEFAULTS.host;
    expect(hostSchema.parse({ name: 'h', host_name: 'h.example' })).toMatchObject({
      port: h.port,
      sessions_per_connection: h.sessions_per_connection,
      max_connections: h.max_connections,
      perl: h.perl,
      work_directory: h.work_directory,
      controller: h.controller,
      connect_timeout: seconds(h.connect_timeout),
      backoff: { initial: seconds(h.backoff.initial), max: seconds(h.backoff.max) },
      shutdown_timeout: seconds(h.shutdown_timeout),
    });
    expect(hookSchema.parse({ driver: 'webhook', url: 'http://127.0.0.1:1/' }).timeout).toBe(
      seconds(DEFAULTS.hook.timeout),
    );
  });
});
