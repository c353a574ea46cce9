import { describe, expect, it } from 'vitest';

import { daemonConfigSchema } from '../../daemon/config/schema.ts';

describe('batchd.yaml defaults', () => {
  it('reads the dispatcher durations left out as seconds, like the same numbers written in the file', () => {
    const defaults = daemonConfigSchema.parse({}).dispatcher;
    const written = daemonConfigSchema.parse({
      dispatcher: { poll_timeout: 5, stable_time: 0.5, grace_time: 60, kill_grace: 5, lock_stale: 20 },
    }).dispatcher;
    expect(defaults).toEqual(written);
    expect(defaults).toMatchObject({
      poll_timeout: 5000,
      stable_time: 500,
      grace_time: 60_000,
      kill_grace: 5000,
      lock_stale: 20_000,
    });
  });
});
