import { copyFileSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path, { posix } from 'node:path';

import type { JobType } from '../config/schema.ts';
import { BatchdError, coerceError } from '../errors.ts';
import type { ParamValue } from '../jobs/spec.ts';

/** The file calls staging needs on a host: SFTP's, or a provider shell's (shell-files.ts). */
export interface RemoteFiles {
  stat(remote: string): Promise<{ isFile(): boolean; isDirectory(): boolean } | undefined>;
  mkdirp(remote: string): Promise<void>;
  put(local: string, remote: string, mode: number): Promise<void>;
  get(remote: string, local: string): Promise<void>;
}

/** A file parameter: where it is here, and where it is on the host. */
export interface StagedFile {
  param: string;
  /** Absolute path on this machine (InputFile: read; OutputFile: the path the job asked for). */
  local: string;
  remote: string;
}

export interface Staging {
  /** The parameters with file values rewritten to the host's paths. */
  params: Record<string, ParamValue>;
  inputs: StagedFile[];
  outputs: StagedFile[];
}

export interface RemoteDirs {
  jobDir: string;
  inputDir: string;
  outputDir: string;
}

export const OUTPUTS_FOLDER = 'outputs';

/**
 * Where each InputFile goes on the host and where each OutputFile is expected, as batchd did:
 * `<input_directory>/<basename>` and `<output_directory>/<basename>` (both default to the job's own
 * folder on the host). Relative local paths are relative to where the job would run here.
 */
export function planStaging(
  type: JobType,
  params: Record<string, ParamValue>,
  dirs: RemoteDirs,
  localCwd: string,
): Staging {
  const rewritten = { ...params };
  const inputs: StagedFile[] = [];
  const outputs: StagedFile[] = [];
  for (const spec of type.params) {
    if (spec.type !== 'InputFile' && spec.type !== 'OutputFile') continue;
    const value = params[spec.name];
    if (value === undefined) continue;
    const local = path.resolve(localCwd, String(value));
    const base = path.basename(local);
    if (base === '' || base === '.' || base === '..') {
      throw new BatchdError(
        'TRANSFER_FAILED',
        `${spec.type} parameter "${spec.name}": ${JSON.stringify(value)} names no file`,
        { param: spec.name },
      );
    }
    const remote = posix.join(spec.type === 'InputFile' ? dirs.inputDir : dirs.outputDir, base);
    rewritten[spec.name] = remote;
    (spec.type === 'InputFile' ? inputs : outputs).push({ param: spec.name, local, remote });
  }
  return { params: rewritten, inputs, outputs };
}

/** Check every input before anything is sent: a missing or unreadable file is a clear job error. */
export function checkInputs(inputs: readonly StagedFile[], host: string): void {
  for (const file of inputs) {
    try {
      const stats = statSync(file.local);
      if (!stats.isFile()) throw new Error('not a regular file');
    } catch (error) {
      throw new BatchdError(
        'TRANSFER_FAILED',
        `input file ${file.local} (parameter "${file.param}") cannot be sent to host ${host}: ${reason(error)}`,
        { param: file.param, file: file.local },
      );
    }
  }
}

/** Upload every input (checked first by `checkInputs`), keeping its permission bits. */
export async function uploadInputs(
  sftp: RemoteFiles,
  inputs: readonly StagedFile[],
  host: string,
  signal: AbortSignal,
): Promise<void> {
  for (const file of inputs) {
    signal.throwIfAborted();
    try {
      const mode = statSync(file.local).mode & 0o777;
      await sftp.mkdirp(posix.dirname(file.remote));
      await sftp.put(file.local, file.remote, mode);
    } catch (error) {
      throw new BatchdError(
        'TRANSFER_FAILED',
        `upload of input file ${file.local} (parameter "${file.param}") to ${host}:${file.remote} failed: ${reason(error)}`,
        { param: file.param, file: file.local },
      );
    }
  }
}

/**
 * Fetch each output into the job folder's `outputs/`, then copy it to the path the job asked
 * for. Returns what could not be fetched (the caller decides whether that fails the job).
 */
export async function downloadOutputs(
  sftp: RemoteFiles,
  outputs: readonly StagedFile[],
  jobDir: string,
  host: string,
): Promise<string[]> {
  const problems: string[] = [];
  const taken = new Set<string>();
  for (const file of outputs) {
    let base = path.basename(file.local);
    if (taken.has(base)) base = `${file.param}-${base}`;
    taken.add(base);
    const kept = path.join(jobDir, OUTPUTS_FOLDER, base);
    try {
      const stats = await sftp.stat(file.remote);
      if (stats === undefined) {
        problems.push(`output file ${host}:${file.remote} (parameter "${file.param}") was not produced`);
        continue;
      }
      if (!stats.isFile()) {
        problems.push(`output ${host}:${file.remote} (parameter "${file.param}") is not a regular file`);
        continue;
      }
      mkdirSync(path.dirname(kept), { recursive: true });
      await fetchAtomic(sftp, file.remote, kept);
    } catch (error) {
      problems.push(
        `download of output file ${host}:${file.remote} (parameter "${file.param}") failed: ${reason(error)}`,
      );
      continue;
    }
    if (path.resolve(file.local) === kept) continue;
    try {
      mkdirSync(path.dirname(file.local), { recursive: true });
      const part = `${file.local}.batchd-part`;
      copyFileSync(kept, part);
      renameSync(part, file.local);
    } catch (error) {
      problems.push(
        `output file of parameter "${file.param}" was fetched to ${kept} but not copied to ${file.local}: ${reason(error)}`,
      );
    }
  }
  return problems;
}

/** Download to a temporary name and rename, so a half-fetched file never has the final name. */
export async function fetchAtomic(sftp: RemoteFiles, remote: string, local: string): Promise<void> {
  const part = `${local}.batchd-part`;
  try {
    await sftp.get(remote, part);
    renameSync(part, local);
  } catch (error) {
    rmSync(part, { force: true });
    throw error;
  }
}

function reason(error: unknown): string {
  const e = coerceError(error) as Error & { code?: unknown };
  return e.code === 'ENOENT' ? 'no such file' : e.message;
}
