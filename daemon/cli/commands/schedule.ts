import type { Command } from 'commander';

import { ApiError } from '../../client/errors.ts';
import type { ScheduleCreate, ScheduleInfo } from '../../protocol/index.ts';
import { act, collect, pickMode } from '../command.ts';
import { EXIT, OperationFailed, UsageError } from '../exit-codes.ts';
import { printJson, printTable } from '../output.ts';
import type { Session } from '../session.ts';

interface ScheduleOptions {
  view?: boolean;
  add?: boolean;
  delete?: boolean;
  force?: boolean;
  period?: string[];
  weekday?: string[];
  timezone?: string;
}

export function registerSchedule(program: Command): void {
  program
    .command('schedule')
    .summary('list, add or delete schedules')
    .description(
      "List schedules (default: all, or the ones named), add one (-a) or delete them (-d). A queue runs jobs only inside its schedule's windows.",
    )
    .argument('[names...]', 'schedule names')
    .option('-v, --view', 'list (default)')
    .option('-a, --add', 'create a schedule')
    .option('-d, --delete', 'delete schedules; refused while a queue uses one, unless --force')
    .option('-f, --force', 'with -d: delete even if queues use it')
    .option(
      '-p, --period <"begin end">',
      'a time window "HH:MM[:SS] HH:MM[:SS]" (repeatable; end before begin crosses midnight)',
      collect,
    )
    .option(
      '-w, --weekday <day>',
      'a weekday such as Monday or Mon (repeatable; default: every day)',
      collect,
    )
    .option('--timezone <zone>', "an IANA time zone such as Europe/Berlin (default: the daemon's)")
    .addHelpText(
      'after',
      '\nExamples:\n  batch schedule\n  batch schedule night -a -p "22:00 06:00"\n  batch schedule office -a -w Mon -w Tue -w Wed -w Thu -w Fri -p "09:00:00 17:00:00"\n  batch schedule night -d\n',
    )
    .action(act(schedule));
}

async function schedule(session: Session, names: string[], options: ScheduleOptions): Promise<void> {
  const mode = pickMode(options, ['view', 'add', 'delete'] as const, 'view', 'schedule');
  const shaping =
    options.period !== undefined || options.weekday !== undefined || options.timezone !== undefined;
  if (mode !== 'add' && shaping)
    throw new UsageError('schedule: --period, --weekday and --timezone go with --add');
  if (options.force === true && mode !== 'delete')
    throw new UsageError('schedule --force goes with --delete');
  const client = await session.client();
  if (mode === 'add') {
    if (names.length !== 1) throw new UsageError(`schedule -a: give one name, got ${names.length}`);
    const request: ScheduleCreate = { name: names[0] ?? '' };
    if (options.weekday !== undefined) request.weekdays = options.weekday;
    if (options.period !== undefined) request.time = options.period.map(parsePeriod);
    if (options.timezone !== undefined) request.timezone = options.timezone;
    const created = await client.createSchedule(request);
    if (session.out.json) return printJson(session.out, created);
    return showSchedules(session, [created]);
  }
  if (mode === 'delete') {
    if (names.length === 0) throw new UsageError('schedule -d: name the schedules to delete');
    for (const name of names) {
      try {
        await client.deleteSchedule(name, options.force === true);
      } catch (error) {
        if (error instanceof ApiError && error.status === 409)
          throw new OperationFailed(
            `${error.message} (with the CLI: batch schedule ${name} -d -f)`,
            EXIT.invalid,
          );
        throw error;
      }
    }
    if (session.out.json) return printJson(session.out, { deleted: names });
    return session.out.write(names.map((n) => `schedule ${n} deleted`).join('\n'));
  }
  const list =
    names.length === 0 ? await client.schedules() : await Promise.all(names.map((n) => client.schedule(n)));
  if (session.out.json) return printJson(session.out, list);
  showSchedules(session, list);
}

function parsePeriod(text: string): { begin: string; end: string } {
  const parts = text.trim().split(/\s+|-(?=\d)/);
  if (parts.length !== 2)
    throw new UsageError(
      `schedule --period: expected "BEGIN END" such as "22:00 06:00", got ${JSON.stringify(text)}`,
    );
  return { begin: parts[0] ?? '', end: parts[1] ?? '' };
}

function showSchedules(session: Session, list: ScheduleInfo[]): void {
  if (list.length === 0) return session.out.note('no schedules');
  printTable(
    session.out,
    ['schedule', 'weekdays', 'time', 'timezone'],
    list.map((s) => [
      s.name + (s.builtin ? ' (built in)' : ''),
      s.weekdays === null ? 'any' : s.weekdays.map((d) => d.slice(0, 3)).join(' '),
      s.time === null ? 'any' : s.time.map((t) => `${t.begin}–${t.end}`).join(', '),
      s.timezone ?? 'local',
    ]),
  );
}
