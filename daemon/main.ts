#!/usr/bin/env node
import { Command } from 'commander';

import { locateConfigDir } from './config/locate.ts';
import { Daemon } from './daemon.ts';
import { coerceError } from './errors.ts';

const program = new Command()
  .name('batchd')
  .description('The batchd daemon: runs the jobs dropped into a spool folder.')
  .option('-c, --config <dir>', 'configuration folder (else $BATCHD_CONFIG, ~/.config/batchd, /etc/batchd)')
  .option('-s, --spool <dir>', "spool folder (overrides batchd.yaml's spool)")
  .option('--spool-from <dir>', 'create a missing spool as a copy of this folder')
  .action(async (options: { config?: string; spool?: string; spoolFrom?: string }) => {
    const daemon = await Daemon.start({
      configDir: locateConfigDir(options.config),
      spool: options.spool,
      spoolFrom: options.spoolFrom,
    });
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      signals += 1;
      daemon.log.info({ signal }, signals === 1 ? 'stopping: no new jobs start; running jobs may finish' : 'stopping now');
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

program.parseAsync().catch((error: unknown) => {
  process.stderr.write(`batchd: ${coerceError(error).message}\n`);
  process.exit(1);
});
