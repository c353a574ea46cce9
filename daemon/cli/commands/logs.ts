import type { Command } from 'commander';

import { act } from '../command.ts';
import { resolveJobIds } from '../ids.ts';
import { printJson } from '../output.ts';
import type { Session } from '../session.ts';

interface LogsOptions {
  stderr?: boolean;
  follow?: boolean;
}

export function registerLogs(program: Command): void {
  program
    .command('logs')
    .summary("print a job's output; -f follows it")
    .alias('log')
    .description(
      "Print a job's output (stdout, or --stderr). With -f, keep printing what it writes until the job ends.",
    )
    .argument('<id>', 'job id')
    .option('--stderr', 'the error output instead of the standard output')
    .option('-f, --follow', 'keep printing until the job ends')
    .addHelpText(
      'after',
      '\nExamples:\n  batch logs 20261121T093000.123Z-k3f9qa\n  batch logs -f "$(batch enqueue -- make test)"\n',
    )
    .action(act(logs));
}

async function logs(session: Session, [given = '']: string[], options: LogsOptions): Promise<void> {
  const stream = options.stderr === true ? 'stderr' : 'stdout';
  const client = await session.client();
  const [id = given] = await resolveJobIds(session, [given]);
  if (options.follow !== true) {
    const text = await client.log(id, stream);
    if (session.out.json) return printJson(session.out, { id, stream, log: text });
    process.stdout.write(text);
    return;
  }
  // Ctrl-C ends the follow as it ends `tail -f`: Node's default SIGINT exit (130) is right.
  const body = await client.followLog(id, stream);
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (session.out.json) chunks.push(chunk);
    else process.stdout.write(chunk);
  }
  if (session.out.json) printJson(session.out, { id, stream, log: Buffer.concat(chunks).toString('utf8') });
}
