#!/usr/bin/env node
import { CommanderError } from 'commander';

import { currentSession } from './command.ts';
import { describeError } from './describe-error.ts';
import { EXIT, exitCodeFor } from './exit-codes.ts';
import { buildProgram } from './program.ts';

/** Help and version are successes; every other commander complaint is a usage error. */
function commanderExit(error: CommanderError): number {
  if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return EXIT.ok;
  return EXIT.usage;
}

async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
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
