import { Command } from 'commander';

import { addGlobalOptions } from './command.ts';
import { EXIT_CODES_HELP } from './exit-codes.ts';
import { packageVersion } from './version.ts';

const ENVIRONMENT_HELP = `Settings: a flag wins over the environment (BATCH_MANAGER_URL, BATCH_QUEUE, BATCH_TYPE,
BATCH_HOST, BATCH_USERNAME, BATCH_PASSWORD, BATCH_TOKEN), which wins over client.yaml
(--client-config FILE, $BATCH_CLIENT_CONFIG, ~/.config/batchd/client.yaml, /etc/batchd/client.yaml),
which wins over the defaults. A token saved by \`batch login\` is used when no password or token is given.`;

/** How the top-level help lists a verb, without loading the verb's module. */
export interface VerbListing {
  name: string;
  alias?: string;
  summary: string;
  /** Its arguments as help shows them (`<id>`, `[queues...]`). */
  args?: string;
  /** A verb with subcommands takes no options itself. */
  subcommands?: true;
}

type Register = (program: Command) => void;

/**
 * Each verb module with the verbs it registers, in the order `batch --help` lists them. A verb's
 * module, and what it imports, is loaded only when that verb runs: the client, its schemas and the
 * other verbs are most of what `batch` would otherwise load before doing anything. The listings
 * must match the verbs themselves (test/cli/cli-verbs.test.ts checks that they do).
 */
export const VERB_MODULES: { verbs: VerbListing[]; load: () => Promise<Register> }[] = [
  {
    verbs: [
      { name: 'enqueue', alias: 'add', summary: 'submit a job (or a job file with -f)', args: '[args...]' },
    ],
    load: async () => (await import('./commands/enqueue.ts')).registerEnqueue,
  },
  {
    verbs: [
      { name: 'ls', alias: 'list', summary: 'list the queues, or the jobs of queues', args: '[queues...]' },
    ],
    load: async () => (await import('./commands/ls.ts')).registerLs,
  },
  {
    verbs: [{ name: 'job', summary: 'show, change or cancel one job', args: '<id>' }],
    load: async () => (await import('./commands/job.ts')).registerJob,
  },
  {
    verbs: [{ name: 'logs', alias: 'log', summary: "print a job's output; -f follows it", args: '<id>' }],
    load: async () => (await import('./commands/logs.ts')).registerLogs,
  },
  {
    verbs: [{ name: 'wait', summary: 'wait for jobs; the exit code tells how they ended', args: '<ids...>' }],
    load: async () => (await import('./commands/wait.ts')).registerWait,
  },
  {
    verbs: [
      { name: 'cancel', summary: 'cancel queued or running jobs', args: '<ids...>' },
      { name: 'retry', summary: 'queue failed or cancelled jobs again', args: '<ids...>' },
    ],
    load: async () => (await import('./commands/control.ts')).registerControl,
  },
  {
    verbs: [
      { name: 'pause', summary: 'pause running jobs', args: '<ids...>' },
      { name: 'resume', summary: 'resume paused jobs', args: '<ids...>' },
    ],
    load: async () => (await import('./commands/pause.ts')).registerPause,
  },
  {
    verbs: [{ name: 'task', summary: 'list tasks; status, collect and resume one', subcommands: true }],
    load: async () => (await import('./commands/task.ts')).registerTask,
  },
  {
    verbs: [{ name: 'queue', summary: 'show, add, change or delete a queue', args: '<name>' }],
    load: async () => (await import('./commands/queue.ts')).registerQueue,
  },
  {
    verbs: [{ name: 'schedule', summary: 'list, add or delete schedules', args: '[names...]' }],
    load: async () => (await import('./commands/schedule.ts')).registerSchedule,
  },
  {
    verbs: [
      { name: 'type', summary: "the server's job types and their parameters", args: '[types...]' },
      { name: 'host', summary: "the server's hosts" },
    ],
    load: async () => (await import('./commands/catalog.ts')).registerCatalog,
  },
  {
    verbs: [{ name: 'stats', summary: 'job counts per queue', args: '[queues...]' }],
    load: async () => (await import('./commands/stats.ts')).registerStats,
  },
  {
    verbs: [{ name: 'user', summary: 'list users, add one, change a password', args: '[name]' }],
    load: async () => (await import('./commands/user.ts')).registerUser,
  },
  {
    verbs: [{ name: 'grant', summary: "list, grant or revoke a user's permissions", args: '<user>' }],
    load: async () => (await import('./commands/grant.ts')).registerGrant,
  },
  {
    verbs: [
      { name: 'login', summary: 'get a token and keep it for later commands' },
      { name: 'logout', summary: 'revoke and forget the saved token' },
      { name: 'whoami', summary: 'who the server takes you for' },
    ],
    load: async () => (await import('./commands/login.ts')).registerLogin,
  },
];

/** The global options that take a value: the token after them is that value, not the verb. */
const GLOBAL_VALUE_OPTIONS = new Set([
  '-M',
  '--manager-url',
  '-U',
  '--username',
  '-P',
  '--password',
  '--token',
  '--client-config',
]);

/**
 * The verb the command line names (`batch -M URL ls` → `ls`; `batch help job` → `job`), or
 * undefined when it names none (`batch --help`, `batch --version`, `batch`). Global options come
 * before the verb (positional options), so the first operand is the verb.
 */
export function verbOf(argv: string[]): string | undefined {
  const args = argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--') return args[i + 1];
    if (!arg.startsWith('-') || arg === '-') {
      return arg === 'help' ? args.slice(i + 1).find((a) => !a.startsWith('-')) : arg;
    }
    if (GLOBAL_VALUE_OPTIONS.has(arg)) i++;
  }
  return undefined;
}

/**
 * The `batch` command line: batchd's verbs and flags, plus logs, wait, cancel, retry, task and login.
 * Given the command line, only the verb it names is loaded; a line that names no verb gets the
 * verbs' listings for the help; one that names no known verb gets every verb, for commander's
 * "unknown command" and its suggestion. Without a command line, every verb is loaded.
 */
export async function buildProgram(argv?: string[]): Promise<Command> {
  const program = new Command('batch')
    .description("batchd's command-line client: submit jobs, watch them, manage queues, schedules and users.")
    .enablePositionalOptions()
    .helpOption('--help', 'show help (also `batch -h`, `batch help VERB`)')
    .version(packageVersion(), '-V, --version', 'print the version')
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`batch: ${text.replace(/^error: /, '')}`) })
    .showHelpAfterError('(see `batch --help`, or `batch VERB --help`)')
    .addHelpText('after', `\n${ENVIRONMENT_HELP}\n\n${EXIT_CODES_HELP}\n`);
  addGlobalOptions(program, false);
  const verb = argv === undefined ? undefined : verbOf(argv);
  if (argv !== undefined && verb === undefined) {
    for (const listing of VERB_MODULES.flatMap((m) => m.verbs)) program.addCommand(listed(listing));
    return program;
  }
  const named = VERB_MODULES.find((m) => m.verbs.some((v) => v.name === verb || v.alias === verb));
  const modules = verb === undefined || named === undefined ? VERB_MODULES : [named];
  for (const register of await Promise.all(modules.map((m) => m.load()))) register(program);
  for (const cmd of program.commands) addVerbOptions(cmd);
  return program;
}

/** A verb as the top-level help lists it; it is never run (a line naming a verb loads the verb). */
function listed(verb: VerbListing): Command {
  const cmd = new Command(verb.name).summary(verb.summary);
  if (verb.alias !== undefined) cmd.alias(verb.alias);
  if (verb.args !== undefined) cmd.arguments(verb.args);
  if (verb.subcommands === undefined) addGlobalOptions(cmd, true);
  return cmd;
}

function addVerbOptions(cmd: Command): void {
  if (cmd.commands.length > 0) {
    for (const sub of cmd.commands) addVerbOptions(sub);
    return;
  }
  addGlobalOptions(cmd, true);
}
