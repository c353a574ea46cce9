import type { Command } from 'commander';

import type { AttemptResult, JobInfo, JobUpdate } from '../../protocol/index.ts';
import { act, pickMode } from '../command.ts';
import { UsageError } from '../exit-codes.ts';
import { resolveJobIds } from '../ids.ts';
import {
  formatParams,
  type Output,
  jobStatus,
  paintStatus,
  printFields,
  printJson,
  printTable,
  shortTime,
} from '../output.ts';
import type { Session } from '../session.ts';

interface JobOptions {
  view?: boolean;
  update?: boolean;
  delete?: boolean;
  description?: boolean;
  result?: boolean;
  all?: boolean;
  history?: boolean;
  move?: string;
  priority?: string;
  at?: string;
  status?: string;
  host?: string;
  notes?: string;
}

const PRIORITY_WORDS: Record<string, JobUpdate['priority']> = {
  first: 'first',
  f: 'first',
  up: 'more',
  more: 'more',
  u: 'more',
  down: 'less',
  less: 'less',
  d: 'less',
  last: 'last',
  l: 'last',
};

export function registerJob(program: Command): void {
  program
    .command('job')
    .summary('show, change or cancel one job')
    .description(
      'View a job (default), change it (-u, implied by any change option) or cancel it (-d). One change per call, as in batchd.',
    )
    .argument('<id>', 'job id')
    .option('-v, --view', 'show the job (default)')
    .option('-u, --update', 'change the job')
    .option('-d, --delete', 'cancel the job if queued or running (its folder and history stay)')
    .option('--description', "also show the job type's title and command template")
    .option('-r, --result', "also show the last attempt's result")
    .option('-a, --all', 'also show every attempt')
    .option('--history', 'also show every state change')
    .option('-m, --move <queue>', 'move a queued job to the end of another queue')
    .option(
      '-p, --priority <priority>',
      'first, up (more), down (less), last, or a number (higher runs first)',
    )
    .option('-n, --notes <notes>', 'replace the notes')
    .option('-s, --status <status>', 'New/queued: retry a failed or cancelled job; cancelled: cancel it')
    .option(
      '--at <time>',
      'start a queued job no earlier than TIME ("YYYY-MM-DD HH:MM:SS", ISO, HH:MM, +1h30m, now); any or anytime: no start time',
    )
    .option('-h, --host <host>', 'run a queued job on HOST ("*": none of its own, the type\'s or queue\'s)')
    .addHelpText(
      'after',
      `
One change per call: --move, --priority, --status, or fields (--notes, --at, --host, together if you like).
--priority up/down swaps the job with its neighbour in the queue's order (as batchd); first/last put it
at the front/back (a priority above/below every other queued job of the queue).

Examples:
  batch job 20261121T093000.123Z-k3f9qa -a
  batch job 20261121T093000.123Z-k3f9qa -p first
  batch job 20261121T093000.123Z-k3f9qa -u --at "2026-11-22 01:00:00" -h render-box
  batch job 20261121T093000.123Z-k3f9qa -m night --json
`,
    )
    .action(act(job));
}

async function job(session: Session, [given = '']: string[], options: JobOptions): Promise<void> {
  const changes = (['move', 'priority', 'notes', 'status', 'at', 'host'] as const).filter(
    (k) => options[k] !== undefined,
  );
  const mode = pickMode(
    options,
    ['view', 'update', 'delete'] as const,
    changes.length > 0 ? 'update' : 'view',
    'job',
  );
  if (mode !== 'update' && changes.length > 0)
    throw new UsageError(`job: --${changes[0]} changes the job; it cannot go with --${mode}`);
  const client = await session.client();
  const [id = given] = await resolveJobIds(session, [given]);
  if (mode === 'delete') {
    const result = await client.deleteJob(id);
    if (session.out.json) return printJson(session.out, result);
    return session.out.write(`${id} ${result.result}`);
  }
  if (mode === 'update') {
    // batchd: one of move, priority, status, or a field update (notes, start time, host: any of them).
    const kinds = new Set(changes.map((k) => (FIELD_OPTIONS.has(k) ? 'fields' : k)));
    if (kinds.size !== 1)
      throw new UsageError(
        `job -u: give one change (--move, --priority, --status, or fields: --notes, --at, --host), got ${changes.length === 0 ? 'none' : changes.map((k) => `--${k}`).join(', ')}`,
      );
    if (options.status !== undefined) {
      const result = await setStatus(session, id, options.status);
      if (session.out.json) return printJson(session.out, result);
      return session.out.write(`${id} ${result.result}`);
    }
    const change: JobUpdate =
      options.move !== undefined
        ? { move: options.move }
        : options.priority !== undefined
          ? { priority: parsePriority(options.priority) }
          : await fieldChange(options);
    const after = await client.updateJob(id, change);
    if (session.out.json) return printJson(session.out, after);
    return session.out.write(`${id} ${describeChange(change, after)}`);
  }
  const info = await client.job(id);
  const results =
    options.all === true
      ? await client.jobResults(id)
      : options.result === true
        ? await lastOrNone(() => client.lastResult(id))
        : undefined;
  const type = options.description === true ? await client.type(info.type) : undefined;
  if (session.out.json) {
    return printJson(session.out, {
      ...info,
      ...(results === undefined ? {} : { results }),
      ...(type === undefined ? {} : { type_info: type }),
    });
  }
  showJob(session.out, info);
  if (info.status === 'queued') {
    const { describeWaiting } = await import('../wait-reason.ts');
    printFields(session.out, [['waiting for', describeWaiting(info)]]);
  }
  if (type !== undefined) {
    session.out.write('');
    printFields(session.out, [
      ['type', `${type.name}${type.title === type.name ? '' : ` — ${type.title}`}`],
      ['template', type.template.join('\n          ')],
    ]);
  }
  if (results !== undefined) {
    session.out.write('');
    showResults(session.out, results);
  }
  if (info.history !== undefined && options.history === true) {
    session.out.write('');
    printTable(
      session.out,
      ['at', 'from', 'to', 'reason'],
      info.history.map((h) => [shortTime(h.at), h.from ?? '', h.to, h.reason]),
    );
  }
}

async function lastOrNone(get: () => Promise<AttemptResult>): Promise<AttemptResult[]> {
  try {
    return [await get()];
  } catch (error) {
    if ((error as { status?: number }).status === 404) return [];
    throw error;
  }
}

async function setStatus(session: Session, id: string, status: string) {
  const client = await session.client();
  const wanted = status.toLowerCase();
  if (['new', 'queued', 'waiting'].includes(wanted)) return client.retry(id);
  if (['cancelled', 'canceled'].includes(wanted)) return client.cancel(id);
  throw new UsageError(
    `job --status ${status}: a job's state changes only by running; use New (retry) or Cancelled (cancel)`,
  );
}

function parsePriority(text: string): NonNullable<JobUpdate['priority']> {
  const word = PRIORITY_WORDS[text.toLowerCase()];
  if (word !== undefined) return word;
  if (/^-?\d+$/.test(text)) return Number(text);
  throw new UsageError(
    `job --priority: expected first, up, down, last or a number, got ${JSON.stringify(text)}`,
  );
}

const FIELD_OPTIONS = new Set<string>(['notes', 'at', 'host']);

/** batchd's `--at TIME|any|now|anytime` and `-h HOST` (`*`: none). */
async function fieldChange(options: JobOptions): Promise<JobUpdate> {
  const { parseAt } = await import('../time.ts');
  const change: JobUpdate = {};
  if (options.notes !== undefined) change.notes = options.notes;
  if (options.at !== undefined)
    change.not_before = ['any', 'anytime'].includes(options.at.toLowerCase()) ? null : parseAt(options.at);
  if (options.host !== undefined) change.host = options.host === '*' ? null : options.host;
  return change;
}

function describeChange(change: JobUpdate, after: JobInfo): string {
  if (change.move !== undefined) return `moved to ${after.queue}`;
  if (change.priority !== undefined) return `priority ${after.priority}`;
  const said: string[] = [];
  if (change.not_before !== undefined)
    said.push(after.not_before === null ? 'no start time' : `not before ${shortTime(after.not_before)}`);
  if (change.host !== undefined) said.push(after.host === null ? 'no host of its own' : `host ${after.host}`);
  if (change.notes !== undefined) said.push('notes changed');
  return said.join(', ');
}

export function showJob(out: Output, j: JobInfo): void {
  printFields(out, [
    ['id', j.id],
    ['queue', j.queue],
    ['type', j.type],
    ['status', paintStatus(out, jobStatus(j))],
    ['priority', j.priority],
    ['name', j.name],
    ['notes', j.notes],
    ['task', j.task === null ? null : `${j.task} #${j.task_index ?? '?'}`],
    ['params', formatParams(j.params)],
    ['host', j.host],
    ['user', j.user],
    ['submitted', shortTime(j.submitted_at)],
    ['not before', shortTime(j.not_before)],
    ['after', j.after.join(', ')],
    ['started', shortTime(j.started_at)],
    ['paused since', shortTime(j.paused_at)],
    ['paused (s)', j.paused_seconds],
    ['ended', shortTime(j.ended_at)],
    ['attempts', j.attempts],
    ['exit code', j.exit_code],
    ['signal', j.signal],
    ['error', j.error],
    ['limits hit', j.limit_hit?.join(', ')],
  ]);
}

function showResults(out: Output, results: AttemptResult[]): void {
  if (results.length === 0) return out.write('no attempts yet');
  printTable(
    out,
    ['attempt', 'outcome', 'exit', 'signal', 'host', 'started', 'ended', 'seconds', 'error'],
    results.map((r) => [
      r.attempt,
      r.outcome,
      r.exit_code,
      r.signal,
      r.host,
      shortTime(r.started_at),
      shortTime(r.ended_at),
      r.duration_ms === undefined ? '' : (r.duration_ms / 1000).toFixed(1),
      r.error,
    ]),
  );
}
