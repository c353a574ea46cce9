import { afterAll, describe, expect, it } from 'vitest';

import type { TestEnv } from '../helpers/env.ts';
import { clip } from './audit.ts';
import { cleanupCrashLoop, crashLoopEnv, runCrashLoop } from './crash-loop.ts';

describe('kill -9 of the daemon at random moments (on_fail retry)', () => {
  let env: TestEnv | undefined;
  afterAll(() => cleanupCrashLoop(env));

  it('loses no job, and re-runs only jobs it recorded as interrupted, over 100 rounds', async () => {
    env = crashLoopEnv('retry');
    const result = await runCrashLoop(env, { onFail: 'retry', rounds: 100, jobs: 2400 });
    expect(clip(result.audit.problems)).toEqual([]);
    expect(result.leftoverProcesses).toEqual([]);
    expect(result.audit.stats.done).toBe(result.submissions.jobs);
    expect(result.submissions.jobs).toBeGreaterThanOrEqual(2000);
    // The kills must have hit every phase, or the loop proved nothing.
    expect(result.tally.duringRuns).toBeGreaterThanOrEqual(10);
    expect(result.tally.duringAcceptance).toBeGreaterThanOrEqual(5);
    expect(result.tally.duringBoot).toBeGreaterThanOrEqual(3);
    expect(result.audit.stats.reran).toBeGreaterThan(0);
  }, 600_000);
});
