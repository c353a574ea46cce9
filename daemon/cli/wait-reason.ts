import { scheduleSchema } from '../config/schema.ts';
import { isOpen, msUntilOpen } from '../dispatch/schedule.ts';
import type { JobInfo } from '../protocol/index.ts';
import { shortTime } from './output.ts';
import type { Session } from './session.ts';

type Client = Awaited<ReturnType<Session['client']>>;

/**
 * Why a queued job has not started, worked out from what the API shows: its queue switched off, its
 * start time, a dependency, the queue's schedule. None of these: a limit (workers, the queue's
 * parallel, the type's or host's max_jobs) or jobs ahead of it.
 */
export async function waitReason(client: Client, job: JobInfo, now = new Date()): Promise<string> {
  const queue = await client.queue(job.queue);
  if (!queue.enabled) return `its queue ${job.queue} is disabled (batch queue ${job.queue} -e enables it)`;
  if (job.not_before !== null && Date.parse(job.not_before) > now.getTime())
    return `its start time: not before ${shortTime(job.not_before)}`;
  for (const dep of job.after) {
    const status = await client.job(dep).then(
      (d) => d.status,
      () => 'gone',
    );
    if (status !== 'done') return `dependency ${dep} (${status})`;
  }
  const info = await client.schedule(queue.schedule_name);
  const schedule = scheduleSchema.parse({
    name: info.name,
    weekdays: info.weekdays,
    time: info.time,
    ...(info.timezone === null ? {} : { timezone: info.timezone }),
  });
  if (!isOpen(schedule, now)) {
    // msUntilOpen looks an hour ahead at most: step on, for up to eight days.
    let opens = now;
    for (let step = 0; step < 8 * 24 && !isOpen(schedule, opens); step++)
      opens = new Date(opens.getTime() + Math.max(1000, msUntilOpen(schedule, opens)));
    const until = isOpen(schedule, opens) ? ` until ${shortTime(opens.toISOString())}` : '';
    return `schedule ${info.name} is closed${until}`;
  }
  return 'its turn: a limit is reached (workers, the queue’s parallel, the type’s or host’s max_jobs) or jobs are ahead of it';
}
