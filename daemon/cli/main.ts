#!/usr/bin/env node
import { CommanderError } from 'commander';

import { currentSession } from './command.ts';
import { describeError } from './describe-error.ts';
import { EXIT, exitCodeFor } from './exit-codes.ts';
import { buildProgram } from './program.ts';

/**
 * Help and version are successes (`batch help` as `batch --help`); every other commander complaint,
 * and help shown because no verb was given, is a usage error.
 */
function commanderExit(error: CommanderError): number {
  if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return EXIT.ok;
  if (error.code === 'commander.help' && error.exitCode === 0) return EXIT.ok;
  return EXIT.usage;
}

/**
 * `-h` means `--host` after most verbs (batchd's flag), so it cannot be the help option everywhere;
 * alone, before any verb, it can only mean help.
 */
function helpForBareH(argv: string[]): string[] {
  return argv[2] === '-h' ? [...argv.slice(0, 2), '--help', ...argv.slice(3)] : argv;
}

async function main(argv: string[]): Promise<number> {
  try {
    const args = helpForBareH(argv);
    await (await buildProgram(args)).parseAsync(args);
    return EXIT.ok;
  } catch (error) {
    // commander has already printed its own message.
    if (error instanceof CommanderError) return commanderExit(error);
    process.stderr.write(`batch: ${describeError(error, currentSession?.config)}\n`);
    return exitCodeFor(error);
  }
}

// `batch ls | head -1`: the reader left; stop quietly, as a shell tool does on SIGPIPE.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(EXIT.ok);
  throw error;
});

// Set the code and let Node drain stdout: process.exit() could cut a large piped output short.
main(process.argv).then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    process.stderr.write(`batch: ${String(error)}\n`);
    process.exitCode = EXIT.failed;
  },
);
