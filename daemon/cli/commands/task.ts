import type { Command } from 'commander';

import { act } from '../command.ts';
import { EXIT, OperationFailed, UsageError } from '../exit-codes.ts';
import { makeProgress, paintStatus, printFields, printJson, printTable, shortTime } from '../output.ts';
import type { Session } from '../session.ts';

interface CollectOptions {
  timeout?: string;
  wait: boolean;
}

export function registerTask(program: Command): void {
  const task = program
    .command('task')
    .summary('list tasks; status, collect and resume one')
    .description(
      'Tasks: the many jobs of one job file with a range or list parameter (restbatch). QUEUE defaults to BATCH_QUEUE / client.yaml / "default".',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  batch task ls renders\n  batch task status renders shot42\n  batch task collect renders shot42 --json > results.json\n  batch task resume renders shot42\n',
    );
  task
    .command('ls')
    .summary("a queue's tasks")
    .description('The tasks submitted to a queue, with their job counts.')
    .argument('[queue]', 'the queue (default: BATCH_QUEUE / client.yaml / "default")')
    .action(act(list));
  task
    .command('status')
    .summary("a task's job counts")
    .description("Counts of the task's jobs by state; resolved = nothing queued or running.")
    .argument('<queue-or-name>', 'QUEUE NAME, or NAME alone')
    .argument('[name]')
    .action(act(status));
  task
    .command('collect')
    .summary('wait for a task, then its results in order')
    .description(
      "Wait until the task is resolved, then print each job's result in order. Exits 1 if any job did not succeed.",
    )
    .argument('<queue-or-name>', 'QUEUE NAME, or NAME alone')
    .argument('[name]')
    .option('--timeout <duration>', 'give up after this long (exit 124)')
    .option('--no-wait', 'print the results as they are now, resolved or not')
    .action(act(collect));
  task
    .command('resume')
    .summary("re-run a task's failed jobs")
    .description("Queue the task's failed and cancelled jobs again (done ones are kept).")
    .argument('<queue-or-name>', 'QUEUE NAME, or NAME alone')
    .argument('[name]')
    .action(act(resume));
}

function where(session: Session, args: string[]): [string, string] {
  const [first = '', second] = args;
  return second === undefined ? [session.config.queue, first] : [first, second];
}

async function list(session: Session, [queue = session.config.queue]: string[]): Promise<void> {
  const tasks = await (await session.client()).tasks(queue);
  if (session.out.json) return printJson(session.out, tasks);
  if (tasks.length === 0) return session.out.note(`no tasks in ${queue}`);
  printTable(
    session.out,
    ['task', 'jobs', 'submitted'],
    tasks.map((t) => [t.name, t.count, shortTime(t.submitted_at)]),
  );
}

async function status(session: Session, args: string[]): Promise<void> {
  const [queue, name] = where(session, args);
  const info = await (await session.client()).task(queue, name);
  if (session.out.json) return printJson(session.out, info);
  printFields(session.out, [
    ['task', `${info.name} in ${info.queue}`],
    ['resolved', info.resolved ? 'yes' : 'no'],
    ['total', info.total],
    ['queued', info.queued],
    ['running', info.running],
    ['done', info.done],
    ['failed', info.failed],
    ['cancelled', info.cancelled],
    ['missing', info.missing === 0 ? null : info.missing],
  ]);
}

async function collect(session: Session, args: string[], options: CollectOptions): Promise<void> {
  const [queue, name] = where(session, args);
  const client = await session.client();
  let results;
  if (options.wait) {
    const { parseDuration } = await import('../../config/duration.ts');
    const ms = options.timeout === undefined ? undefined : parseDuration(options.timeout);
    if (options.timeout !== undefined && ms === undefined)
      throw new UsageError(
        `task collect --timeout: expected a duration such as 90s or 15m, got ${JSON.stringify(options.timeout)}`,
      );
    const signal = ms === undefined ? undefined : AbortSignal.timeout(ms);
    const progress = makeProgress(session.out);
    try {
      results = await client.collectTask(queue, name, {
        ...(signal === undefined ? {} : { signal }),
        onPoll: (s) =>
          progress.show(
            `task ${name}: ${s.done + s.failed + s.cancelled} of ${s.total} finished (${s.done} done, ${s.failed} failed, ${s.cancelled} cancelled), ${s.running} running, ${s.queued} queued`,
          ),
      });
      progress.end();
    } catch (error) {
      progress.end();
      if (signal?.aborted === true) {
        const info = await client.task(queue, name);
        throw new OperationFailed(
          `timed out after ${options.timeout ?? ''}: task ${name} has ${info.queued} queued and ${info.running} running`,
          EXIT.timeout,
        );
      }
      throw error;
    }
  } else {
    results = await client.taskResults(queue, name);
  }
  if (session.out.json) printJson(session.out, results);
  else {
    printTable(
      session.out,
      ['#', 'id', 'status', 'exit', 'result'],
      results.map((r) => [
        r.index,
        r.id,
        paintStatus(session.out, r.status),
        r.exit_code ?? r.error,
        r.result === null ? '' : JSON.stringify(r.result),
      ]),
    );
  }
  const bad = results.filter((r) => r.status !== 'done' && r.status !== 'queued' && r.status !== 'running');
  if (bad.length > 0)
    throw new OperationFailed(
      `${bad.length} of ${results.length} job(s) of task ${name} did not succeed (batch task resume ${queue} ${name} re-runs the failed ones)`,
    );
}

async function resume(session: Session, args: string[]): Promise<void> {
  const [queue, name] = where(session, args);
  const result = await (await session.client()).resumeTask(queue, name);
  if (session.out.json) return printJson(session.out, result);
  if (result.resumed.length === 0)
    return session.out.note(`task ${name}: nothing to resume (no failed or cancelled jobs)`);
  session.out.write(result.resumed.join('\n'));
}
