import type { Command } from 'commander';

import { ApiError } from '../../client/errors.ts';
import type { QueueInfo, QueueUpdate } from '../../protocol/index.ts';
import { act, parseInteger, pickMode } from '../command.ts';
import { EXIT, OperationFailed, UsageError } from '../exit-codes.ts';
import { printFields, printJson } from '../output.ts';
import type { Session } from '../session.ts';

interface QueueOptions {
  add?: boolean;
  update?: boolean;
  delete?: boolean;
  schedule?: string;
  host?: string;
  title?: string;
  enable?: boolean;
  disable?: boolean;
  freeze?: boolean;
  autostart?: string;
  force?: boolean;
  status?: string;
  type?: string;
  priority?: number;
  parallel?: string;
}

export function registerQueue(program: Command): void {
  program
    .command('queue')
    .summary('show, add, change or delete a queue')
    .description(
      'Show a queue (no options), add one (-a), change it (-u, the default with options) or delete it (-d).',
    )
    .argument('<name>', 'queue name')
    .option('-a, --add', 'create the queue (defaults: title = name, enabled, schedule "anytime")')
    .option('-u, --update', 'change the queue (default when options are given)')
    .option('-d, --delete', 'delete the queue; refused if it holds jobs, unless --force')
    .option('-s, --schedule <schedule>', 'the schedule whose time windows the queue runs in')
    .option('-h, --host <host>', 'default host of its jobs ("*": none, the daemon\'s machine)')
    .option('-n, --title <title>', 'a title for people')
    .option('-e, --enable', 'jobs start')
    .option('-D, --disable', 'jobs wait (they can still be added)')
    .option('--freeze', 'with -D: pause its running jobs too (-e resumes them)')
    .option('--autostart <n>', 'enable the queue by itself once it holds N queued jobs; "no" turns this off')
    .option('-t, --type <type>', 'default job type of its jobs ("none" clears it)')
    .option('--priority <n>', 'between queues with work, higher first', parseInteger('--priority'))
    .option('--parallel <n>', 'at most N of its jobs run at once ("no": no limit)')
    .option('-f, --force', 'with -d: delete even if it holds jobs')
    .option(
      '--status <status>',
      "with -d: delete the queue's jobs in that state instead (done, failed, cancelled: their folders go; queued: they are cancelled)",
    )
    .addHelpText(
      'after',
      '\nExamples:\n  batch queue renders -a -s night -n "Render farm"\n  batch queue renders -D\n  batch queue renders -D --freeze\n  batch queue renders --parallel 2 --json\n  batch queue renders -d -f\n  batch queue renders -d --status done\n',
    )
    .action(act(queue));
}

async function queue(session: Session, [name = '']: string[], options: QueueOptions): Promise<void> {
  if (options.enable === true && options.disable === true)
    throw new UsageError('queue: give --enable or --disable, not both');
  if (options.freeze === true && options.disable !== true)
    throw new UsageError('queue --freeze goes with --disable (-D)');
  if (options.force === true && options.delete !== true)
    throw new UsageError('queue --force goes with --delete');
  if (options.status !== undefined && (options.delete !== true || options.force === true))
    throw new UsageError('queue --status goes with --delete (and not with --force)');
  const settings = settingsFrom(options);
  const hasSettings = Object.keys(settings).length > 0;
  const mode = pickMode(
    options,
    ['add', 'update', 'delete'] as const,
    hasSettings ? 'update' : 'view',
    'queue',
  );
  const client = await session.client();
  if (mode === 'delete') {
    if (hasSettings) throw new UsageError('queue -d takes no settings');
    if (options.status !== undefined) return deleteJobs(session, name, options.status);
    try {
      await client.deleteQueue(name, options.force === true);
    } catch (error) {
      if (error instanceof ApiError && error.status === 409)
        throw new OperationFailed(`${error.message} (with the CLI: batch queue ${name} -d -f)`, EXIT.invalid);
      throw error;
    }
    if (session.out.json) return printJson(session.out, { deleted: name });
    return session.out.write(`queue ${name} deleted`);
  }
  if (mode === 'update' && !hasSettings) {
    throw new UsageError(
      'queue -u: nothing to change (give -s, -h, -n, -e, -D, --autostart, -t, --priority or --parallel)',
    );
  }
  if (options.freeze === true && mode === 'update') return freezeQueue(session, name, settings);
  const info =
    mode === 'add'
      ? await client.createQueue({ name, title: name, ...settings })
      : mode === 'update'
        ? await client.updateQueue(name, settings)
        : await client.queue(name);
  if (session.out.json) return printJson(session.out, info);
  showQueue(session, info);
}

/** Disable a queue and pause its running jobs (they are resumed when it is enabled again). */
async function freezeQueue(session: Session, name: string, settings: QueueUpdate): Promise<void> {
  const client = await session.client();
  const { enabled: _disabled, ...others } = settings;
  if (Object.keys(others).length > 0) await client.updateQueue(name, others);
  const result = await client.pauseQueue(name, true);
  if (session.out.json) return printJson(session.out, result);
  session.out.write(`queue ${name} disabled; ${result.jobs.length} running job(s)`);
  for (const job of result.jobs)
    session.out.write(`  ${job.id} ${job.result}${job.error === undefined ? '' : `: ${job.error}`}`);
}

/** batchd's bulk delete by status: finished jobs are deleted, queued ones cancelled. */
async function deleteJobs(session: Session, name: string, status: string): Promise<void> {
  const client = await session.client();
  const result = await client.deleteQueueJobs(name, status);
  if (session.out.json) return printJson(session.out, result);
  session.out.write(
    result.status === 'queued'
      ? `queue ${name}: ${result.cancelled} queued job(s) cancelled`
      : `queue ${name}: ${result.deleted} ${result.status} job(s) deleted`,
  );
  for (const s of result.skipped) session.out.write(`  ${s.id} left alone: ${s.reason}`);
}

function settingsFrom(options: QueueOptions): QueueUpdate {
  const settings: QueueUpdate = {};
  if (options.schedule !== undefined) settings.schedule_name = options.schedule;
  if (options.host !== undefined) settings.host_name = options.host;
  if (options.title !== undefined) settings.title = options.title;
  if (options.enable === true) settings.enabled = true;
  if (options.disable === true) settings.enabled = false;
  if (options.autostart !== undefined)
    settings.autostart_job_count = countOrOff(options.autostart, '--autostart');
  if (options.type !== undefined) settings.type = ['none', '*'].includes(options.type) ? null : options.type;
  if (options.priority !== undefined) settings.priority = options.priority;
  if (options.parallel !== undefined) settings.parallel = countOrOff(options.parallel, '--parallel');
  return settings;
}

/** batchd's `--autostart N|no|disable|false`. */
function countOrOff(text: string, flag: string): number | null {
  if (['no', 'disable', 'false', 'off', 'none'].includes(text.toLowerCase())) return null;
  if (/^\d+$/.test(text) && Number(text) >= 1) return Number(text);
  throw new UsageError(`queue ${flag}: expected a number ≥ 1 or "no", got ${JSON.stringify(text)}`);
}

function showQueue(session: Session, q: QueueInfo): void {
  const c = q.counts;
  printFields(session.out, [
    ['queue', q.name],
    ['title', q.title],
    ['enabled', q.enabled ? 'yes' : 'no'],
    ['schedule', q.schedule_name],
    ['host', q.host_name ?? "* (the daemon's machine)"],
    ['type', q.type],
    ['priority', q.priority],
    ['parallel', q.parallel ?? 'no limit'],
    ['autostart', q.autostart_job_count ?? 'no'],
    [
      'jobs',
      `${c.queued} queued, ${c.running} running, ${c.done} done, ${c.failed} failed, ${c.cancelled} cancelled`,
    ],
  ]);
}
