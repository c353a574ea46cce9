import { Command } from 'commander';

import { addGlobalOptions } from './command.ts';
import { registerCatalog } from './commands/catalog.ts';
import { registerControl } from './commands/control.ts';
import { registerEnqueue } from './commands/enqueue.ts';
import { registerGrant } from './commands/grant.ts';
import { registerJob } from './commands/job.ts';
import { registerLogin } from './commands/login.ts';
import { registerLogs } from './commands/logs.ts';
import { registerLs } from './commands/ls.ts';
import { registerQueue } from './commands/queue.ts';
import { registerSchedule } from './commands/schedule.ts';
import { registerStats } from './commands/stats.ts';
import { registerTask } from './commands/task.ts';
import { registerUser } from './commands/user.ts';
import { registerWait } from './commands/wait.ts';
import { EXIT_CODES_HELP } from './exit-codes.ts';
import { packageVersion } from './version.ts';

const ENVIRONMENT_HELP = `Settings: a flag wins over the environment (BATCH_MANAGER_URL, BATCH_QUEUE, BATCH_TYPE,
BATCH_HOST, BATCH_USERNAME, BATCH_PASSWORD, BATCH_TOKEN), which wins over client.yaml
(--client-config FILE, $BATCH_CLIENT_CONFIG, ~/.config/batchd/client.yaml, /etc/batchd/client.yaml),
which wins over the defaults. A token saved by \`batch login\` is used when no password or token is given.`;

/** The `batch` command line: batchd's verbs and flags, plus logs, wait, cancel, retry, task and login. */
export function buildProgram(): Command {
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
  for (const register of [
    registerEnqueue,
    registerLs,
    registerJob,
    registerLogs,
    registerWait,
    registerControl,
    registerTask,
    registerQueue,
    registerSchedule,
    registerCatalog,
    registerStats,
    registerUser,
    registerGrant,
    registerLogin,
  ]) {
    register(program);
  }
  for (const verb of program.commands) addVerbOptions(verb);
  return program;
}

function addVerbOptions(cmd: Command): void {
  if (cmd.commands.length > 0) {
    for (const sub of cmd.commands) addVerbOptions(sub);
    return;
  }
  addGlobalOptions(cmd, true);
}
