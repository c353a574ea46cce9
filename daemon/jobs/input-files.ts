import { type Stats, statSync } from 'node:fs';
import path from 'node:path';

import type { JobType } from '../config/schema.ts';
import { BatchdError, errnoCode } from '../errors.ts';
import { kindOf } from '../config/safe-read.ts';
import type { ParamValue } from './spec.ts';

/**
 * InputFile parameters of jobs that run on this machine name files here: one that is missing (or
 * is no regular file) is refused when the job is accepted, and checked again when it starts.
 * (Jobs for other hosts have theirs checked before upload, executors/staging.ts.)
 */

/** The host names that mean this machine (the dispatcher runs such jobs with the local executor). */
export function runsHere(host: string | undefined): boolean {
  return host === undefined || host === 'localhost';
}

/**
 * Why a job running in `cwd` (undefined: its own new folder) cannot read `value` as its input, or
 * undefined when it names a regular file. Only the file's metadata is looked at: it is never opened,
 * so a FIFO cannot block the daemon and no byte of any file is read.
 */
export function inputFileProblem(value: string, cwd: string | undefined): string | undefined {
  const shown = JSON.stringify(value);
  if (cwd === undefined && !path.isAbsolute(value))
    return `Input file ${shown} is a relative path, and the job runs in a new folder of its own: give an absolute path (or a workdir in the job type)`;
  const file = path.resolve(cwd ?? '/', value);
  let stats: Stats;
  try {
    stats = statSync(file);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return `Input file ${JSON.stringify(file)} does not exist`;
    return `Input file ${JSON.stringify(file)} cannot be examined (${code ?? 'error'})`;
  }
  const kind = kindOf(stats);
  if (kind !== undefined) return `Input file ${JSON.stringify(file)} is ${kind}; expected a regular file`;
  return undefined;
}

/** At the start of a local run: the first InputFile the job cannot read fails it, before it runs. */
export function assertInputFiles(
  type: JobType,
  params: Record<string, ParamValue>,
  cwd: string | undefined,
): void {
  for (const spec of type.params) {
    const value = params[spec.name];
    if (spec.type !== 'InputFile' || value === undefined) continue;
    const problem = inputFileProblem(String(value), cwd);
    if (problem !== undefined)
      throw new BatchdError('PARAM_INVALID', `Parameter "${spec.name}": ${problem}`, {
        field: `params.${spec.name}`,
        file: String(value),
      });
  }
}
