import type { Command } from 'commander';

import type { BatchClient } from '../../client/client.ts';
import type { ControlResponse } from '../../protocol/index.ts';
import { act } from '../command.ts';
import { describeError } from '../describe-error.ts';
import { exitCodeFor, OperationFailed } from '../exit-codes.ts';
import { resolveJobIds } from '../ids.ts';
import { printJson } from '../output.ts';
import type { Session } from '../session.ts';

const VERBS = {
  cancel: {
    summary: 'cancel queued or running jobs',
    description:
      'Cancel queued or running jobs (a running job is stopped: SIGTERM, then SIGKILL after the kill grace).',
    call: (client: BatchClient, id: string) => client.cancel(id),
  },
  retry: {
    summary: 'queue failed or cancelled jobs again',
    description: 'Queue failed or cancelled jobs again.',
    call: (client: BatchClient, id: string) => client.retry(id),
  },
} as const;

/** A verb that does one thing to each of the jobs it is given, e.g. `batch cancel <ids...>`. */
export interface JobVerb {
  summary: string;
  description: string;
  call: (client: BatchClient, id: string) => Promise<ControlResponse>;
}

export function registerControl(program: Command): void {
  registerJobVerbs(program, VERBS);
}

/** Register verbs that take job ids (prefixes accepted) and report each job's result. */
export function registerJobVerbs(program: Command, verbs: Record<string, JobVerb>): void {
  for (const [verb, { summary, description, call }] of Object.entries(verbs)) {
    program
      .command(verb)
      .summary(summary)
      .description(`${description} Every id is tried; the exit code is that of the first failure.`)
      .argument('<ids...>', 'job ids')
      .addHelpText('after', `\nExample:\n  batch ${verb} 20261121T093000.123Z-k3f9qa --json\n`)
      .action(act((session: Session, ids: string[]) => control(session, ids, call)));
  }
}

async function control(
  session: Session,
  given: string[],
  call: (client: BatchClient, id: string) => Promise<ControlResponse>,
): Promise<void> {
  const client = await session.client();
  const ids = await resolveJobIds(session, given);
  const done: ControlResponse[] = [];
  let firstError: unknown;
  for (const id of ids) {
    try {
      const result = await call(client, id);
      done.push(result);
      if (!session.out.json) session.out.write(`${id} ${result.result}`);
    } catch (error) {
      if (ids.length === 1) throw error;
      firstError ??= error;
      process.stderr.write(`batch: ${id}: ${describeError(error, session.config)}\n`);
    }
  }
  if (session.out.json) printJson(session.out, done);
  if (firstError !== undefined)
    throw new OperationFailed(`${ids.length - done.length} of ${ids.length} failed`, exitCodeFor(firstError));
}
