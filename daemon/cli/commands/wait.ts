import type { Command } from 'commander';

import type { JobInfo } from '../../protocol/index.ts';
import { act } from '../command.ts';
import { EXIT, OperationFailed, UsageError } from '../exit-codes.ts';
import { resolveJobIds } from '../ids.ts';
import { jobStatus, makeProgress, paintStatus, printJson } from '../output.ts';
import type { Session } from '../session.ts';

interface WaitOptions {
  timeout?: string;
}

export function registerWait(program: Command): void {
  program
    .command('wait')
    .summary('wait for jobs; the exit code tells how they ended')
    .description(
      'Wait until the jobs are finished. Exits 0 if all are done, 1 if any failed or was cancelled, 124 if --timeout passed first (as timeout(1) does).',
    )
    .argument('<ids...>', 'job ids')
    .option('--timeout <duration>', 'give up after this long: 90, 90s, 15m, 1h30m')
    .addHelpText(
      'after',
      '\nExamples:\n  batch wait "$(batch enqueue -- make test)" && echo passed\n  batch wait ID1 ID2 --timeout 10m --json\n',
    )
    .action(act(wait));
}

async function wait(session: Session, given: string[], options: WaitOptions): Promise<void> {
  let signal: AbortSignal | undefined;
  if (options.timeout !== undefined) {
    const { parseDuration } = await import('../../config/duration.ts');
    const ms = parseDuration(options.timeout);
    if (ms === undefined)
      throw new UsageError(
        `wait --timeout: expected a duration such as 90, 90s, 15m or 1h30m, got ${JSON.stringify(options.timeout)}`,
      );
    signal = AbortSignal.timeout(ms);
  }
  const client = await session.client();
  const ids = await resolveJobIds(session, given);
  const finished = new Map<string, JobInfo>();
  const last = new Map<string, JobInfo>();
  const progress = makeProgress(session.out);
  const showProgress = (): void => {
    const running = [...last.values()].filter((j) => j.status === 'running').length;
    const paused = [...last.values()].filter((j) => jobStatus(j) === 'paused').length;
    progress.show(
      `waiting: ${finished.size} of ${ids.length} finished, ${running} running${paused > 0 ? ` (${paused} paused)` : ''}, ${ids.length - finished.size - running} queued`,
    );
  };
  const results = await Promise.allSettled(
    ids.map(async (id) => {
      const job = await client.waitFor(id, {
        ...(signal === undefined ? {} : { signal }),
        onPoll: (j) => {
          last.set(id, j);
          showProgress();
        },
      });
      finished.set(id, job);
      progress.end();
      if (!session.out.json)
        session.out.write(`${id}  ${paintStatus(session.out, job.status)}${outcome(job)}`);
      if (finished.size < ids.length) showProgress();
    }),
  );
  progress.end();
  // Once the timeout fires, the pending polls reject with AbortErrors: those are the timeout, not failures.
  const failure = results.find(
    (r): r is PromiseRejectedResult => r.status === 'rejected' && signal?.aborted !== true,
  );
  if (failure !== undefined) throw failure.reason;
  if (session.out.json)
    printJson(
      session.out,
      ids.map((id) => finished.get(id) ?? last.get(id)).filter((j) => j !== undefined),
    );
  const pending = ids.filter((id) => !finished.has(id));
  if (pending.length > 0) {
    throw new OperationFailed(
      `timed out after ${options.timeout ?? ''}; not finished: ${pending.map((id) => `${id} (${last.get(id)?.status ?? 'unknown'})`).join(', ')}`,
      EXIT.timeout,
    );
  }
  const bad = [...finished.values()].filter((j) => j.status !== 'done');
  if (bad.length > 0)
    throw new OperationFailed(
      `${bad.length} of ${ids.length} job(s) did not succeed: ${bad.map((j) => `${j.id} ${j.status}`).join(', ')}`,
    );
}

function outcome(job: JobInfo): string {
  if (job.signal !== null) return ` (signal ${job.signal})`;
  if (job.exit_code !== null) return ` (exit ${job.exit_code})`;
  if (job.error !== null) return ` (${job.error})`;
  return '';
}
