import { readFileSync } from 'node:fs';
import path from 'node:path';

import type { Command } from 'commander';

import type { JobSubmit, JobTypeInfo } from '../../protocol/index.ts';
import { ApiError } from '../../client/errors.ts';
import { BatchdError } from '../../errors.ts';
import { act, collect, parseInteger } from '../command.ts';
import { UsageError } from '../exit-codes.ts';
import { printJson } from '../output.ts';
import type { Session } from '../session.ts';

interface EnqueueOptions {
  queue?: string;
  type?: string;
  host?: string;
  at?: string;
  notes?: string;
  param?: string[];
  file?: string;
  priority?: number;
  after?: string[];
  name?: string;
  each?: string;
  task?: string;
}

export function registerEnqueue(program: Command): void {
  program
    .command('enqueue')
    .summary('submit a job (or a job file with -f)')
    .alias('add')
    .description(
      "Submit a job. Positional ARGs fill the job type's parameters in their declared order (the daemon maps them, as `args` of the job); -p NAME=VALUE sets one by name and wins. For the built-in `command` type, several ARGs are joined with spaces into one command, as ssh does; put `--` before a command that has options of its own. Prints the new job ids, one per line.",
    )
    .argument('[args...]', "values for the type's parameters, in order")
    .option('-q, --queue <queue>', 'queue (default: BATCH_QUEUE, client.yaml, "default")')
    .option('-t, --type <type>', 'job type (default: BATCH_TYPE, client.yaml, the queue\'s type, "command")')
    .option(
      '-h, --host <host>',
      "run on this host (default: the type's, else the queue's, else the daemon's machine)",
    )
    .option('--at <time>', 'not before this time: "YYYY-MM-DD HH:MM:SS" (local), ISO, "HH:MM", "+30m"')
    .option('-n, --notes <notes>', 'free text kept with the job')
    .option('-p, --param <name=value>', 'a parameter by name (repeatable)', collect)
    .option('-f, --file <file>', 'submit this job file (YAML or JSON) unchanged; "-" reads stdin')
    .option('--priority <n>', 'higher runs first (default 0)', parseInteger('--priority'))
    .option('--after <id>', 'start only after this job is done (repeatable)', collect)
    .option('--name <name>', 'a name for the job (shown by ls)')
    .option(
      '--each <file>',
      'one job per line of FILE ("-": stdin), all sent as one task in one request: each line is a command, or the value of the type\'s first parameter',
    )
    .option(
      '--task <name>',
      "with --each: the task's name (default: the file's name, or stdin; -2, -3… if taken)",
    )
    .addHelpText(
      'after',
      `
Examples:
  batch enqueue -- make -j8 test                 # the built-in command type
  batch enqueue -t sleep 30                      # fills the first parameter of "sleep"
  batch enqueue -t report -p who=alice -p frame=3 -q renders --at "2026-11-22 01:00:00"
  batch enqueue -q renders -f shot42.yaml        # a job or task file, as dropped into incoming/
  printf 'gzip a.log\ngzip b.log\n' | batch enqueue --each -   # one task, one job per line
  id=$(batch enqueue -t echo hello) && batch wait "$id"
`,
    )
    .action(act(enqueue));
}

async function enqueue(session: Session, args: string[], options: EnqueueOptions): Promise<void> {
  const queue = options.queue ?? session.config.queue;
  if (options.task !== undefined && options.each === undefined)
    throw new UsageError('enqueue --task goes with --each');
  if (
    options.file === undefined &&
    options.each === undefined &&
    args.length === 0 &&
    options.param === undefined &&
    (options.type ?? session.config.type) === undefined
  )
    throw new UsageError(
      'enqueue: nothing to submit; give a command (batch enqueue -- make test), -t TYPE with its values, -f FILE or --each FILE',
    );
  const client = await session.client();
  let response;
  try {
    response = await submit(session, client, queue, args, options);
  } catch (error) {
    throw namingTheSource(error, options);
  }
  if (session.out.json) return printJson(session.out, { queue, ...response });
  session.out.write(response.jobs.join('\n'));
  if (response.task !== undefined)
    session.out.note(
      `task ${response.task} in ${queue}: ${response.jobs.length} jobs (batch task status ${queue} ${response.task})`,
    );
}

type Client = Awaited<ReturnType<Session['client']>>;

async function submit(
  session: Session,
  client: Client,
  queue: string,
  args: string[],
  options: EnqueueOptions,
) {
  let response;
  if (options.each !== undefined) {
    response = await client.submit(queue, await eachLineJob(session, client, queue, args, options));
  } else if (options.file !== undefined) {
    const extra = ['type', 'host', 'at', 'notes', 'param', 'priority', 'after', 'name'].filter(
      (k) => options[k as keyof EnqueueOptions] !== undefined,
    );
    if (args.length > 0 || extra.length > 0) {
      throw new UsageError(
        `enqueue -f sends the file unchanged: put ${[...extra.map((k) => `--${k}`), ...(args.length > 0 ? ['the arguments'] : [])].join(', ')} into the file instead`,
      );
    }
    const text = options.file === '-' ? readFileSync(0, 'utf8') : readJobFile(options.file);
    response = await client.submit(queue, {
      text,
      format: options.file.toLowerCase().endsWith('.json') ? 'json' : 'yaml',
    });
  } else {
    // The server maps positional values to the type's parameters (jobs/positional.ts): one request.
    const type = options.type ?? session.config.type;
    const host = options.host ?? session.config.host;
    const job: JobSubmit = { params: namedParams(options.param ?? []) };
    if (args.length > 0) job.args = args;
    if (type !== undefined) job.type = type;
    if (host !== undefined) job.host = host;
    if (options.at !== undefined) job.not_before = (await import('../time.ts')).parseAt(options.at);
    if (options.notes !== undefined) job.notes = options.notes;
    if (options.priority !== undefined) job.priority = options.priority;
    if (options.after !== undefined) job.after = options.after;
    if (options.name !== undefined) job.name = options.name;
    try {
      response = await client.submit(queue, job);
    } catch (error) {
      throw args.length > 0 ? asPositionalError(error) : error;
    }
  }
  return response;
}

/**
 * What the server found wrong with the positional values, said as before it checked them: too many
 * values is a usage error (2), an unknown type is not found (3), with the types there are.
 */
function asPositionalError(error: unknown): unknown {
  if (!(error instanceof ApiError)) return error;
  const problems = error.problems;
  const tooMany = problems.find((p) => p.field === 'args')?.message.split('; ')[0];
  if (tooMany !== undefined) return new UsageError(`enqueue: ${tooMany}; use -p NAME=VALUE or fewer values`);
  const unknownType = problems.find((p) => p.field === 'type' && p.message.startsWith('Unknown job type'));
  if (error.serverCode === 'UNKNOWN_TYPE' && unknownType !== undefined)
    return new BatchdError('UNKNOWN_TYPE', `${unknownType.message} (batch type lists them)`);
  return error;
}

/**
 * The server calls what it was sent "request"; the user gave a file, stdin, lines or arguments, so
 * say that. For arguments, the line of the JSON the CLI built means nothing: it goes.
 */
function namingTheSource(error: unknown, options: EnqueueOptions): unknown {
  if (!(error instanceof ApiError) || !/^request\b/.test(error.message)) return error;
  const fromFile = options.file ?? options.each;
  const source = fromFile === undefined ? 'the job' : fromFile === '-' ? 'stdin' : fromFile;
  const message =
    fromFile === undefined || options.each !== undefined
      ? error.message.replace(/^request(, line \d+)?/, source)
      : error.message.replace(/^request/, source);
  const { method = '', url = '' } = error.context as { method?: string; url?: string };
  return new ApiError(error.status, error.serverCode, message, error.problems, { method, url });
}

/** A job type from the server; an unknown one is named with the types there are, as a drop's error does. */
async function typeInfo(client: Client, name: string): Promise<JobTypeInfo> {
  try {
    return await client.type(name);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404) throw error;
    const known = (await client.types()).map((t) => t.name).join(', ');
    throw new BatchdError(
      'UNKNOWN_TYPE',
      `Unknown job type "${name}"; known types: ${known} (batch type lists them)`,
    );
  }
}

/**
 * `--each FILE`: the lines become one parameter's `{each: [...]}`, so the daemon expands them into
 * a task in one request and one acceptance, instead of a process and a request per job.
 */
async function eachLineJob(
  session: Session,
  client: Client,
  queue: string,
  args: string[],
  options: EnqueueOptions,
): Promise<JobSubmit> {
  if (args.length > 0 || options.file !== undefined)
    throw new UsageError('enqueue --each: the jobs come from the lines; give no other values and no -f');
  const text = options.each === '-' ? readFileSync(0, 'utf8') : readJobFile(options.each ?? '-', '--each');
  // Blank lines and `#` comments are skipped, as in a shell script.
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  if (lines.length === 0)
    throw new UsageError(
      `enqueue --each: ${options.each === '-' ? 'stdin' : options.each} holds no line to run`,
    );
  const type = options.type ?? session.config.type;
  const info = await typeInfo(client, type ?? (await client.queue(queue)).type ?? 'command');
  const target = info.params.find((p) => p.type === 'Script') ?? info.params[0];
  if (target === undefined)
    throw new UsageError(`enqueue --each: type "${info.name}" takes no parameter to fill from the lines`);
  const job: JobSubmit = { params: { ...namedParams(options.param ?? []), [target.name]: { each: lines } } };
  if (type !== undefined) job.type = type;
  const host = options.host ?? session.config.host;
  if (host !== undefined) job.host = host;
  if (options.at !== undefined) job.not_before = (await import('../time.ts')).parseAt(options.at);
  if (options.notes !== undefined) job.notes = options.notes;
  if (options.priority !== undefined) job.priority = options.priority;
  if (options.after !== undefined) job.after = options.after;
  if (options.name !== undefined) job.name = options.name;
  job.task = options.task ?? taskNameFor(options.each ?? '-');
  return job;
}

/** `renders/frames.txt` → `frames`; stdin → `stdin`: a task name the daemon accepts. */
function taskNameFor(source: string): string {
  if (source === '-') return 'stdin';
  const base = path
    .basename(source)
    .replace(/\.[^.]*$/, '')
    .replace(/[^A-Za-z0-9_.-]+/g, '-');
  const name = base.replace(/^[^A-Za-z0-9]+/, '').slice(0, 64);
  return name === '' ? 'lines' : name;
}

function readJobFile(file: string, flag = '-f'): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`enqueue ${flag}: cannot read ${file}: ${(error as Error).message}`);
  }
}

export function namedParams(pairs: string[]): Record<string, string> {
  const params: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`-p ${JSON.stringify(pair)}: expected NAME=VALUE`);
    params[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return params;
}
