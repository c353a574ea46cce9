import type { Command } from 'commander';

import type { Health, JobInfo, QueueInfo } from '../../protocol/index.ts';
import { act, parseInteger } from '../command.ts';
import { UsageError } from '../exit-codes.ts';
import { jobStatus, type Output, paintStatus, printJson, printTable, shortTime } from '../output.ts';
import type { Session } from '../session.ts';

interface LsOptions {
  status?: string;
  all?: boolean;
  limit: number;
}

export function registerLs(program: Command): void {
  program
    .command('ls')
    .summary('list the queues, or the jobs of queues')
    .alias('list')
    .description(
      'Without a queue: the queues ([*] enabled, [ ] disabled) with their job counts. With queues: their jobs, by default those not finished yet (queued and running).',
    )
    .argument('[queues...]', 'queues whose jobs to list')
    .option(
      '-s, --status <status>',
      "only jobs in this state: queued, running, done, failed, cancelled (batchd's New, Processing... too)",
    )
    .option('-a, --all', 'jobs in every state')
    .option('--limit <n>', 'at most this many jobs per queue', parseInteger('--limit'), 200)
    .addHelpText(
      'after',
      "\nExamples:\n  batch ls\n  batch ls default -s failed\n  batch ls renders -a --json | jq '.[].id'\n  batch ls -s running          # running jobs of every queue\n",
    )
    .action(act(ls));
}

async function ls(session: Session, queues: string[], options: LsOptions): Promise<void> {
  if (options.status !== undefined && options.all === true)
    throw new UsageError('ls: give --status or --all, not both');
  if (options.limit < 1) throw new UsageError('ls --limit: expected at least 1');
  const client = await session.client();
  // Asked alongside the listing; a daemon without GET /health (an older one) just says nothing.
  const health = client.health().catch(() => undefined);
  if (queues.length === 0 && options.status === undefined && options.all !== true) {
    showQueues(session.out, await client.queues());
    return noteHealth(session.out, await health);
  }
  const statuses =
    options.all === true
      ? ['all']
      : options.status !== undefined
        ? [await checkStatus(options.status)]
        : ['running', 'queued'];
  const jobs: JobInfo[] = [];
  for (const queue of queues.length === 0 ? [undefined] : queues) {
    for (const status of statuses) {
      const page = await client.jobs(queue, { status }, options.limit);
      jobs.push(...page.jobs);
      if (page.more)
        session.out.note(
          `batch: more ${status === 'all' ? '' : `${status} `}jobs in ${queue ?? 'the queues'} than --limit ${options.limit}; showing the first ${options.limit} (raise --limit to see more)`,
        );
    }
  }
  if (session.out.json) printJson(session.out, jobs);
  else showJobs(session.out, jobs, queues.length !== 1);
  noteHealth(session.out, await health);
}

/** The last lines: a graceful stop under way, and other dispatchers on the same spool. */
function noteHealth(out: Output, health: Health | undefined): void {
  if (health === undefined) return;
  if (health.stopping)
    out.note(
      `daemon stopping: it waits for ${health.running} running job(s) to finish and starts no others; submissions and changes are refused until it is restarted`,
    );
  if (health.dispatchers > 1) out.note(`${health.dispatchers} dispatchers share this spool`);
}

async function checkStatus(status: string): Promise<string> {
  const { statusFilterSchema } = await import('../../protocol/index.ts');
  const parsed = statusFilterSchema.safeParse(status);
  if (!parsed.success)
    throw new UsageError(`ls --status: ${parsed.error.issues[0]?.message ?? 'unknown status'}`);
  return parsed.data;
}

function showQueues(out: Output, queues: QueueInfo[]): void {
  if (out.json) return printJson(out, queues);
  if (queues.length === 0) return out.note('no queues you may see (batch queue NAME -a creates one)');
  printTable(
    out,
    ['on', 'queue', 'title', 'schedule', 'host', 'auto', 'queued', 'run', 'done', 'failed', 'cancel'],
    queues.map((q) => [
      q.enabled ? '[*]' : '[ ]',
      q.name,
      q.title,
      q.schedule_name,
      q.host_name ?? '*',
      q.autostart_job_count ?? 'no',
      q.counts.queued,
      q.counts.running,
      q.counts.done,
      q.counts.failed,
      q.counts.cancelled,
    ]),
  );
}

export function showJobs(out: Output, jobs: JobInfo[], withQueue: boolean): void {
  if (jobs.length === 0) return out.note('no jobs');
  printTable(
    out,
    [
      'id',
      ...(withQueue ? ['queue'] : []),
      'type',
      'status',
      'prio',
      'submitted',
      'exit',
      'name / notes',
      'params',
    ],
    jobs.map((j) => [
      j.id,
      ...(withQueue ? [j.queue] : []),
      j.type,
      paintStatus(out, jobStatus(j)),
      j.priority,
      shortTime(j.submitted_at),
      j.exit_code ?? j.signal ?? '',
      [j.name, j.notes].filter((x) => x !== null && x !== '').join(' — '),
      truncate(
        Object.entries(j.params)
          .map(([k, v]) => `${k}=${String(v)}`)
          .join(' '),
        60,
      ),
    ]),
  );
}

function truncate(text: string, max: number): string {
  return text.length > max ? text.slice(0, max - 1) + '…' : text;
}
