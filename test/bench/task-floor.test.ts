// The task suite's floor (bench/task-floor.mjs) bounds what docs/performance.md says about the
// 10,000-job task, so it must do the work it claims: every job made, claimed and finished through
// the spool's folders, and run by the build's job launcher. Run here as a real process, small.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

const FLOOR = path.join(import.meta.dirname, '..', '..', 'bench', 'task-floor.mjs');
const kept: string[] = [];

afterAll(() => {
  for (const dir of kept) rmSync(dir, { recursive: true, force: true });
});

describe('the task floor', () => {
  it('runs every job through the launcher and leaves each one finished in done/', () => {
    const run = spawnSync(process.execPath, [FLOOR, '--jobs', '12', '--keep'], { encoding: 'utf8' });
    const work = /kept (\S+)/.exec(run.stderr)?.[1];
    if (work !== undefined) kept.push(work);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^12 × true, 1 round\(s\), fsync off, .*xargs -P2 .*floor .* × xargs/);
    const done = path.join(work as string, 'floor-1', 'done');
    const jobs = readdirSync(done);
    expect(jobs).toHaveLength(12);
    for (const id of jobs) {
      expect(JSON.parse(readFileSync(path.join(done, id, 'state.yaml'), 'utf8'))).toMatchObject({
        id,
        state: 'done',
      });
    }
    for (const state of ['staging', 'queued', 'running'])
      expect(readdirSync(path.join(work as string, 'floor-1', state))).toEqual([]);
  });
});
