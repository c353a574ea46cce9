import { describe, expect, it } from 'vitest';

import { onFailSchema } from '../../daemon/config/schema.ts';
import { nextStep } from '../../daemon/jobs/outcome.ts';

const onFail = (value: unknown): ReturnType<typeof onFailSchema.parse> => onFailSchema.parse(value);

describe('nextStep (where a job goes after an attempt)', () => {
  it('a success is done, whatever on_fail says', () => {
    expect(nextStep('success', undefined, onFail({ retry: { count: 3 } }), 0)).toEqual({
      to: 'done',
      toBack: false,
      reason: 'finished',
    });
  });

  it('on_fail continue: a failure is final', () => {
    for (const outcome of ['exit-code', 'signal', 'timeout', 'spawn-failed', 'error'] as const) {
      expect(nextStep(outcome, 'why', onFail('continue'), 0)).toEqual({
        to: 'failed',
        toBack: false,
        reason: 'why',
      });
    }
    expect(nextStep('exit-code', undefined, onFail(undefined), 0).reason).toBe('exit-code');
  });

  it('on_fail retry (the short form): once, now', () => {
    expect(onFail('retry')).toEqual({ retry: { when: 'now', count: 1 } });
    expect(nextStep('exit-code', 'exit code 1', onFail('retry'), 0)).toEqual({
      to: 'queued',
      toBack: false,
      reason: 'exit code 1; retry 1 of 1 (now)',
      retry: true,
    });
    expect(nextStep('exit-code', 'exit code 1', onFail('retry'), 1)).toEqual({
      to: 'failed',
      toBack: false,
      reason: 'exit code 1',
    });
  });

  it('retry now with a count: requeued in place until the count is used up', () => {
    const policy = onFail({ retry: { when: 'now', count: 3 } });
    expect([0, 1, 2, 3].map((retries) => nextStep('timeout', 'timed out', policy, retries).to)).toEqual([
      'queued',
      'queued',
      'queued',
      'failed',
    ]);
    expect(nextStep('timeout', 'timed out', policy, 2)).toEqual({
      to: 'queued',
      toBack: false,
      reason: 'timed out; retry 3 of 3 (now)',
      retry: true,
    });
  });

  it('retry later: requeued at the back of the queue', () => {
    const policy = onFail({ retry: { when: 'later', count: 2 } });
    expect(nextStep('signal', 'killed by SIGKILL', policy, 1)).toEqual({
      to: 'queued',
      toBack: true,
      reason: 'killed by SIGKILL; retry 2 of 2 (later)',
      retry: true,
    });
    expect(nextStep('signal', 'killed by SIGKILL', policy, 2)).toEqual({
      to: 'failed',
      toBack: false,
      reason: 'killed by SIGKILL',
    });
  });

  it('a cancelled attempt is cancelled, never retried', () => {
    expect(nextStep('cancelled', 'cancelled', onFail({ retry: { count: 5 } }), 1)).toMatchObject({
      to: 'cancelled',
    });
  });

  it('an interruption requeues whatever on_fail says, until there were more than max_interruptions', () => {
    expect(nextStep('interrupted', 'the daemon shut down', onFail('continue'), 9)).toMatchObject({
      to: 'queued',
      toBack: false,
      reason: 'interrupted (1 of at most 3): the daemon shut down',
    });
    expect(nextStep('interrupted', 'gone', onFail('continue'), 1, { count: 3, max: 3 })).toMatchObject({
      to: 'queued',
    });
    expect(nextStep('interrupted', 'gone', onFail('retry'), 1, { count: 4, max: 3 })).toMatchObject({
      to: 'failed',
      reason: 'interrupted 4 times, more than max_interruptions (3): gone',
    });
  });

  it('on_fail files are checked', () => {
    expect(onFailSchema.safeParse({ retry: { when: 'tomorrow' } }).success).toBe(false);
    expect(onFailSchema.safeParse({ retry: { count: 0 } }).success).toBe(false);
    expect(onFailSchema.safeParse('again').success).toBe(false);
    expect(onFail({ retry: {} })).toEqual({ retry: { when: 'now', count: 1 } });
  });
});
