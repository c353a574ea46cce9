import { afterAll, describe, expect, it } from 'vitest';

import type { TestEnv } from '../helpers/env.ts';
import { clip } from './audit.ts';
import { SEED } from './harness.ts';
import { cleanupCrashLoop, crashLoopEnv, runCrashLoop } from './crash-loop.ts';

describe('kill -9 of the daemon at random moments (on_fail continue)', () => {
  let env: TestEnv | undefined;
  afterAll(() => cleanupCrashLoop(env));

  it('runs each interrupted job again (on_fail is about its own failures), twice none, loses none', async () => {
    env = crashLoopEnv('continue');
    const result = await runCrashLoop(env, { onFail: 'continue', rounds: 15, jobs: 300, seed: SEED + 1 });
    expect(clip(result.audit.problems)).toEqual([]);
    expect(result.leftoverProcesses).toEqual([]);
    expect(result.audit.stats.done).toBe(result.submissions.jobs);
    // Some kill caught jobs running: they ran again, each interruption recorded and counted.
    expect(result.tally.duringRuns).toBeGreaterThan(0);
    expect(result.audit.stats.interrupted).toBeGreaterThan(0);
    expect(result.audit.stats.failed).toBe(0);
  }, 300_000);
});
