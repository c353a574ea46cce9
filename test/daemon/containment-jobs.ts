import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

import type { ResourceLimits } from '../../daemon/config/limits.ts';
import type { RunRequest } from '../../daemon/jobs/executor.ts';
import { waitFor } from '../helpers/env.ts';

/** Jobs for the containment tests: shell code run by an executor in a folder of its own. */
export class ContainmentJobs {
  #seq = 0;
  readonly #root: string;

  constructor(root: string) {
    this.#root = root;
  }

  /** A job running `script`, with `$DIR` its folder; `file(name)` is a file in that folder. */
  job(
    script: string,
    extra: { timeoutMs?: number; limits?: ResourceLimits } = {},
  ): { request: RunRequest; dir: string; file: (name: string) => string } {
    const seq = ++this.#seq;
    const dir = path.join(this.#root, `job-${seq}`);
    mkdirSync(dir);
    const request: RunRequest = {
      jobId: `20261207T000000.000Z-t${seq}`,
      queue: 'default',
      attempt: 1,
      dir,
      plan: { kind: 'shell', script, env: {} },
      env: { DIR: dir },
      cwd: dir,
      killGraceMs: 1_000,
      ...extra,
    };
    return { request, dir, file: (name) => path.join(dir, name) };
  }
}

/** Pids the job wrote into `file`, one a line, once there are `count` of them. */
export function pidsIn(file: string, count: number): Promise<number[]> {
  return waitFor(() => {
    if (!existsSync(file)) return undefined;
    const pids = readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
    return pids.length >= count ? pids : undefined;
  }, 15_000);
}

/**
 * Two ways out of a job's process group: `setsid` (a session of its own) and a double fork whose
 * grandchild starts a new session too (the classic daemon), each writing its pid down first; and
 * a child that stays in the group.
 */
export const ESCAPES = [
  'setsid sh -c \'echo $$ >> "$DIR/escaped"; exec sleep 300\' &',
  '( setsid sh -c \'echo $$ >> "$DIR/escaped"; exec sleep 301\' & ) &',
  'sleep 302 & echo $! > "$DIR/stayed"',
  'wait',
].join('\n');

/** The same, but the job ends by itself (exit 0) once both escaped children are there. */
export const ESCAPES_THEN_EXIT = ESCAPES.replace(
  'wait',
  'while [ "$(cat "$DIR/escaped" 2>/dev/null | wc -l)" -lt 2 ]; do sleep 0.05; done',
);

export function size(file: string): number {
  return existsSync(file) ? statSync(file).size : 0;
}
