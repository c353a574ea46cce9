import {
  copyFileSync,
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import path, { posix } from 'node:path';
import { pipeline } from 'node:stream/promises';

import { BatchdError, coerceError } from '../errors.ts';
import type { BatchFiles, BatchScript } from '../hosts/batch-system.ts';
import { PARAM_ENV_PREFIX, planCommand } from '../jobs/template.ts';
import { RESULT_FILE, STDERR_FILE, STDOUT_FILE } from '../spool/state-file.ts';
import { BATCH_EXIT_FILE, scriptBody } from './batch-system-script.ts';
import {
  checkInputs,
  downloadOutputs,
  planStaging,
  type RemoteFiles,
  type Staging,
  uploadInputs,
} from './staging.ts';
import type { RunRequest } from '../jobs/executor.ts';

/** Where the files of an attempt land in its job folder on their way back, before they take their places. */
const FETCH_FOLDER = '.batch-fetch';
/**
 * The job's log sizes before an attempt's logs are appended, with the attempt's folder on the
 * cluster: a collection cut short by a crash after the append (before `batch.exit` took its place)
 * cuts the logs back to these sizes before it appends again, so nothing is appended twice.
 */
const APPEND_MARK = '.batch-append.json';

/**
 * Before an attempt's logs are appended: where a collection of the same attempt cut short by a
 * crash left them (its mark) they are cut back to that; else their sizes are marked now. Only the
 * two logs' sizes are taken from a mark (a number each): the job folder is not the daemon's alone.
 */
function markLogsBeforeAppend(localDir: string, remoteDir: string): void {
  const mark = path.join(localDir, APPEND_MARK);
  const logs = [STDOUT_FILE, STDERR_FILE];
  try {
    const kept = JSON.parse(readFileSync(mark, 'utf8')) as { dir?: unknown; sizes?: Record<string, unknown> };
    if (kept.dir === remoteDir) {
      for (const log of logs) {
        const size = kept.sizes?.[log];
        const now = statSync(path.join(localDir, log), { throwIfNoEntry: false })?.size;
        // Only ever shorter: a mark cannot make a log grow.
        if (
          typeof size === 'number' &&
          Number.isInteger(size) &&
          size >= 0 &&
          now !== undefined &&
          size < now
        )
          truncateSync(path.join(localDir, log), size);
      }
      return;
    }
  } catch {
    // No mark (the usual case), or one that cannot be read: the logs are as they are.
  }
  const sizes = Object.fromEntries(
    logs.map((log) => [log, statSync(path.join(localDir, log), { throwIfNoEntry: false })?.size ?? 0]),
  );
  writeFileSync(mark, JSON.stringify({ dir: remoteDir, sizes }));
}

/**
 * One attempt's folder on the cluster (`staging: copy`): `<work_directory>/<job id>.<attempt>`,
 * as an SSH host's, so recovery finds it again from the job alone. Its script reads its inputs,
 * writes its logs, exit status, result.json and outputs there.
 */
export interface RemoteAttempt {
  dir: string;
  staging: Staging;
  /** The batch script with the cluster's paths, the job's parameters planned for them. */
  script: BatchScript;
}

/**
 * Plans the attempt for the cluster's side, as the SSH executor plans one for its host: file
 * parameters point into the attempt's folder there, BATCHD_JOB_DIR and BATCHD_RESULT too, and a
 * job that runs in its own folder (the default) runs in that one.
 */
export function planRemote(request: RunRequest, workDirectory: string): RemoteAttempt {
  const job = request.job;
  if (job === undefined)
    throw new BatchdError('PARAM_INVALID', `job ${request.jobId}: no job type to plan its files with`, {
      jobId: request.jobId,
    });
  const dir = posix.join(workDirectory, `${request.jobId}.${request.attempt}`);
  const staging = planStaging(
    job.type,
    job.params,
    { jobDir: dir, inputDir: dir, outputDir: dir },
    request.cwd,
  );
  const plan = planCommand(job.type, staging.params, job.variables);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(request.env)) if (!k.startsWith(PARAM_ENV_PREFIX)) env[k] = v;
  Object.assign(env, plan.env, { BATCHD_JOB_DIR: dir, BATCHD_RESULT: posix.join(dir, RESULT_FILE) });
  return {
    dir,
    staging,
    script: {
      ...scriptBody(plan),
      env,
      stdout: posix.join(dir, STDOUT_FILE),
      stderr: posix.join(dir, STDERR_FILE),
      exitFile: posix.join(dir, BATCH_EXIT_FILE),
      workdir: request.cwd === request.dir ? dir : request.cwd,
    },
  };
}

/** Makes the attempts' folders (one call for all) and uploads their input files. */
export async function sendFiles(
  files: BatchFiles,
  attempts: readonly RemoteAttempt[],
  host: string,
  signal: AbortSignal,
): Promise<void> {
  for (const attempt of attempts) checkInputs(attempt.staging.inputs, host);
  try {
    await files.mkdirs(attempts.map((a) => a.dir));
  } catch (error) {
    throw new BatchdError(
      'TRANSFER_FAILED',
      `host ${host}: cannot create the job's folder on the cluster: ${coerceError(error).message}`,
      { host, path: attempts[0]?.dir },
      { cause: error },
    );
  }
  for (const attempt of attempts) await uploadInputs(files, attempt.staging.inputs, host, signal);
}

/**
 * Brings an ended attempt's files into its job folder: stdout and stderr appended to the job's
 * logs (as every attempt's are), the exit status and result.json, the outputs as staging keeps
 * them. Then removes the folder on the cluster, unless something could not be fetched (it stays
 * for a look). Returns what went wrong, for the outcome.
 */
export async function collectFiles(
  files: BatchFiles,
  attempt: RemoteAttempt,
  localDir: string,
  host: string,
  warn: (message: string) => void,
): Promise<string[]> {
  // Here already: collected before a crash (a fresh attempt removes it before its submission).
  if (existsSync(path.join(localDir, BATCH_EXIT_FILE))) {
    rmSync(path.join(localDir, APPEND_MARK), { force: true });
    return [];
  }
  const into = path.join(localDir, FETCH_FOLDER);
  rmSync(into, { recursive: true, force: true });
  mkdirSync(into);
  const names = new Set([STDOUT_FILE, STDERR_FILE, BATCH_EXIT_FILE, RESULT_FILE]);
  for (const output of attempt.staging.outputs) names.add(posix.basename(output.remote));
  let problems: string[];
  try {
    await files.fetch(attempt.dir, [...names], into);
    markLogsBeforeAppend(localDir, attempt.dir);
    for (const log of [STDOUT_FILE, STDERR_FILE])
      if (existsSync(path.join(into, log)))
        await pipeline(
          createReadStream(path.join(into, log)),
          createWriteStream(path.join(localDir, log), { flags: 'a' }),
        );
    for (const name of [BATCH_EXIT_FILE, RESULT_FILE])
      if (existsSync(path.join(into, name))) renameSync(path.join(into, name), path.join(localDir, name));
    // With `batch.exit` here, a collection again returns at once; without it (a job that never
    // wrote one), the mark stays, so that one after a crash does not append the logs again.
    if (existsSync(path.join(localDir, BATCH_EXIT_FILE)))
      rmSync(path.join(localDir, APPEND_MARK), { force: true });
    problems = await downloadOutputs(fetched(into, attempt.dir), attempt.staging.outputs, localDir, host);
  } catch (error) {
    return [
      `host ${host}: fetching the job's files from the cluster's ${attempt.dir} failed: ${coerceError(error).message}`,
    ];
  } finally {
    rmSync(into, { recursive: true, force: true });
  }
  // The job's files are here: a folder left behind is no reason to fail it.
  await files.remove([attempt.dir]).catch((error: unknown) => {
    warn(`host ${host}: removing ${attempt.dir} on the cluster failed: ${coerceError(error).message}`);
  });
  return problems;
}

/** The files fetched into `into`, seen under their paths on the cluster (for downloadOutputs). */
function fetched(into: string, remoteDir: string): RemoteFiles {
  const here = (remote: string): string => path.join(into, posix.relative(remoteDir, remote));
  return {
    stat: (remote) => {
      try {
        return Promise.resolve(statSync(here(remote)));
      } catch {
        return Promise.resolve(undefined);
      }
    },
    get: (remote, local) => Promise.resolve(copyFileSync(here(remote), local)),
    mkdirp: () => Promise.reject(new Error('read-only')),
    put: () => Promise.reject(new Error('read-only')),
  };
}
