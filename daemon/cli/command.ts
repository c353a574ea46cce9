import { type Command, Option } from 'commander';

import { UsageError } from './exit-codes.ts';
import type { GlobalFlags, Session } from './session.ts';

/** The global options, also accepted after the verb (`batch ls --json`); hidden from each verb's help. */
export function addGlobalOptions(cmd: Command, hidden: boolean): Command {
  const options = [
    new Option('-M, --manager-url <url>', 'the batchd server (default http://127.0.0.1:9681)'),
    new Option('-U, --username <name>', 'user name (default: your login name)'),
    new Option(
      '-P, --password <password>',
      'password (visible to `ps`: prefer BATCH_PASSWORD or `batch login`)',
    ),
    new Option('--token <token>', 'API token (see `batch login`)'),
    new Option(
      '--client-config <file>',
      'client.yaml to read (default ~/.config/batchd/client.yaml, then /etc/batchd/client.yaml)',
    ),
    new Option('--json', 'print JSON instead of text'),
    new Option(
      '--wide',
      "tables: show every cell whole (else cut with … to fit the terminal's width or $COLUMNS)",
    ),
    new Option(hidden ? '--quiet' : '-q, --quiet', 'print only what scripts need (ids), no notes'),
    new Option(
      hidden ? '--verbose' : '-v, --verbose',
      'show the server, the config used and each HTTP request on stderr',
    ),
  ];
  for (const option of options)
    cmd.addOption(
      hidden && option.long !== '--json' && option.long !== '--wide' ? option.hideHelp() : option,
    );
  return cmd;
}

/** Options from the program and the verb; the one nearest the verb wins. */
export function globalFlags(cmd: Command): GlobalFlags {
  const chain: Command[] = [];
  for (let c: Command | null = cmd; c !== null; c = c.parent) chain.unshift(c);
  const merged: Record<string, unknown> = {};
  for (const c of chain) {
    for (const [key, value] of Object.entries(c.opts())) if (value !== undefined) merged[key] = value;
  }
  return merged;
}

/**
 * Wrap a verb's handler: commander passes (args..., options, command); the handler gets the
 * session, the verb's positional arguments and its options.
 */
export function act<O>(handler: (session: Session, args: string[], options: O) => Promise<void>) {
  return async (...params: unknown[]): Promise<void> => {
    const cmd = params[params.length - 1] as Command;
    const session = await openSession(cmd);
    try {
      await handler(session, (cmd.processedArgs as unknown[]).flatMap(flattenArg), cmd.opts() as O);
    } finally {
      session.close();
    }
  };
}

function flattenArg(arg: unknown): string[] {
  if (arg === undefined) return [];
  return Array.isArray(arg) ? (arg as string[]) : [arg as string];
}

/** The session of the running command, kept so the error printer can name the server and config. */
export let currentSession: Session | undefined;

async function openSession(cmd: Command): Promise<Session> {
  // Loaded here, not at the top: the client and its schemas are most of what `batch` loads, and
  // `batch --help` or a usage error needs none of it.
  const { Session } = await import('./session.ts');
  currentSession = await Session.open(globalFlags(cmd));
  return currentSession;
}

/** For repeatable options: `-p a=1 -p b=2`. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function parseInteger(what: string) {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value.trim()))
      throw new UsageError(`${what}: expected an integer, got ${JSON.stringify(value)}`);
    return Number(value);
  };
}

/** At most one of the modes; `fallback` when none is given. */
export function pickMode<M extends string, F extends string>(
  options: Partial<Record<M, boolean>>,
  modes: readonly M[],
  fallback: F,
  verb: string,
): M | F {
  const chosen = modes.filter((m) => options[m] === true);
  if (chosen.length > 1)
    throw new UsageError(`${verb}: give only one of ${chosen.map((m) => `--${m}`).join(', ')}`);
  return chosen[0] ?? fallback;
}
