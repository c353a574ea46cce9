#!/usr/bin/env node
import { Command } from 'commander';

import { adminCommand, readPasswordFrom } from './auth/admin.ts';
import { locateConfigDir } from './config/locate.ts';
import { packageVersion } from './cli/version.ts';
import { coerceError } from './errors.ts';
import { writeFileAtomic } from './spool/atomic.ts';
import { startBatchd } from './start.ts';

const program = new Command()
  .name('batchd')
  .description('The batchd daemon: runs the jobs dropped into a spool folder.')
  .version(packageVersion(), '-V, --version', 'print the version')
  .option('-c, --config <dir>', 'configuration folder (else $BATCHD_CONFIG, ~/.config/batchd, /etc/batchd)')
  .option('-s, --spool <dir>', "spool folder (overrides batchd.yaml's spool)")
  .option('--spool-from <dir>', 'create a missing spool as a copy of this folder')
  .option('--api-url-file <file>', "write the HTTP API's URL here once it listens (for port 0)")
  .action(async (options: { config?: string; spool?: string; spoolFrom?: string; apiUrlFile?: string }) => {
    const daemon = await startBatchd({
      configDir: locateConfigDir(options.config),
      spool: options.spool,
      spoolFrom: options.spoolFrom,
    });
    const manager = daemon.config.daemon.manager;
    if (manager.enabled && daemon.api === undefined) {
      // Said on stderr as well as in the log: in JSON logs a person starting a second daemon misses it.
      process.stderr.write(
        `batchd: the HTTP API could not listen on ${manager.host}:${manager.port} (another batchd, or another program, holds it).\n` +
          `  This daemon dispatches the spool's jobs, but \`batch\` and the web page reach only the other one.\n` +
          `  To run one daemon, stop this one (Ctrl-C); to serve this one's API too, give it another manager.port in batchd.yaml.\n`,
      );
    }
    if (options.apiUrlFile !== undefined && daemon.api !== undefined) {
      // Atomically: a reader polling for the file must never see half a URL.
      writeFileAtomic(options.apiUrlFile, `${daemon.api.url}\n`, false);
    }
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      signals += 1;
      daemon.log.info(
        { signal },
        signals === 1 ? 'stopping: no new jobs start; running jobs may finish' : 'stopping now',
      );
      daemon.stop().then(
        () => process.exit(0),
        (error: unknown) => {
          daemon.log.error({ err: coerceError(error) }, 'stop failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });

const admin = program
  .command('admin')
  .description('Manage users in <config>/users.yaml (works with the daemon running or not)');
for (const verb of ['create-superuser', 'passwd'] as const) {
  admin
    .command(`${verb} [name]`)
    .description(
      verb === 'create-superuser'
        ? 'create a user with the SuperUser permission (default name: root)'
        : "change a user's password (default name: root)",
    )
    .option('-c, --config <dir>', 'configuration folder (else $BATCHD_CONFIG, ~/.config/batchd, /etc/batchd)')
    .option(
      '--password-stdin',
      'read the password from the first line of stdin (also the default when stdin is not a terminal)',
    )
    .action(async (name: string | undefined, options: { config?: string; passwordStdin?: boolean }) => {
      const configDir = locateConfigDir(options.config ?? program.opts<{ config?: string }>().config);
      const read = (): Promise<string> =>
        readPasswordFrom(process.stdin, process.stderr, options.passwordStdin === true);
      process.stdout.write(`${await adminCommand(verb, name ?? 'root', configDir, read)}\n`);
    });
}

program.parseAsync().catch((error: unknown) => {
  process.stderr.write(`batchd: ${coerceError(error).message}\n`);
  process.exit(1);
});
