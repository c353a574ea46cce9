import { BatchdError } from '../errors.ts';
import { isJobId } from '../jobs/id.ts';
import { parseTaskRef } from '../jobs/task-ref.ts';
import { UsageError } from './exit-codes.ts';
import type { Session } from './session.ts';

/** Ids listed in an ambiguity error, at most. */
const SHOWN = 5;

/**
 * Full job ids for what the user typed. A full id is taken as it is; a task-relative name
 * (`render#3`, `render/3`, `renders/render/3`: the task's job #3, jobs/task-ref.ts) is looked up by
 * the daemon; anything else names the one job whose id starts with it (`20261206T2202`) or holds it
 * after a dash (the random part `5rte15`, or `5rte15-render`), as git takes a short commit hash.
 */
export async function resolveJobIds(session: Session, given: string[]): Promise<string[]> {
  const resolved: string[] = [];
  for (const text of given) {
    if (isJobId(text)) resolved.push(text);
    else if (parseTaskRef(text) !== undefined)
      resolved.push((await (await session.client()).job(text.trim())).id);
    else resolved.push(await resolveOne(session, text));
  }
  return resolved;
}

async function resolveOne(session: Session, text: string): Promise<string> {
  const needle = text.trim().toLowerCase();
  if (needle.length < 3)
    throw new UsageError(`job id ${JSON.stringify(text)}: give at least 3 characters of the id`);
  const client = await session.client();
  const { jobs } = await client.jobs(undefined, { status: 'all', q: needle }, 1000);
  const matches = jobs
    .map((job) => job.id)
    .filter((id) => id.toLowerCase().startsWith(needle) || id.toLowerCase().includes(`-${needle}`));
  if (matches.length === 1 && matches[0] !== undefined) return matches[0];
  if (matches.length === 0)
    throw new BatchdError(
      'UNKNOWN_JOB',
      `no job id starts with or contains "-${text}" in the queues you may see (batch ls QUEUE -a lists them)`,
    );
  const shown = matches.slice(0, SHOWN).join(', ');
  throw new UsageError(
    `job id ${JSON.stringify(text)} is ambiguous: ${matches.length} jobs match (${shown}${matches.length > SHOWN ? ', …' : ''}); give more of it`,
  );
}
