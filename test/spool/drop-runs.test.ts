import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { drop, jobDir, jobsIn, makeEnv, readState, type TestEnv, waitFor } from '../helpers/env.ts';

describe('a dropped job file', () => {
  let env: TestEnv;
  let daemon: DaemonProcess | undefined;

  beforeEach(() => {
    env = makeEnv({ queues: { default: null } });
  });
  afterEach(async () => {
    await daemon?.stop();
    env.cleanup();
  });

  it('runs and ends in done/ with its output, exit code and attempt recorded', async () => {
    daemon = await startDaemon(env.etc, env.spool);
    drop(env.spool, 'default', { command: 'echo out; echo err >&2' }, 'hello.yaml');
    const [id] = await waitFor(() => {
      const done = jobsIn(env.spool, 'default', 'done');
      return done.length === 1 ? done : undefined;
    });
    const dir = jobDir(env.spool, 'default', 'done', id ?? '');
    expect(readFileSync(path.join(dir, 'stdout.log'), 'utf8')).toBe('out\n');
    expect(readFileSync(path.join(dir, 'stderr.log'), 'utf8')).toBe('err\n');
    expect(readFileSync(path.join(dir, 'drop.yaml'), 'utf8')).toContain('echo out');
    const state = readState(env.spool, 'default', 'done', id ?? '');
    expect(state.attempts).toBe(1);
    expect(state.last).toMatchObject({ outcome: 'success', exit_code: 0 });
    expect(state.history.map((h) => h.to)).toEqual(['queued', 'running', 'done']);
    expect(jobsIn(env.spool, 'default', 'queued')).toEqual([]);
    expect(jobsIn(env.spool, 'default', 'incoming')).toEqual([]);
  });

  it('leaves a log file only for a stream the job wrote to', async () => {
    daemon = await startDaemon(env.etc, env.spool);
    drop(env.spool, 'default', { command: 'true' }, 'silent.yaml');
    drop(env.spool, 'default', { command: 'echo only-err >&2' }, 'stderr-only.yaml');
    const done = await waitFor(() => {
      const ids = jobsIn(env.spool, 'default', 'done');
      return ids.length === 2 ? ids : undefined;
    });
    const dirOf = (slug: string): string =>
      jobDir(env.spool, 'default', 'done', done.find((id) => id.endsWith(slug)) ?? '');
    // The state temp file (`.state.yaml.next`) went back to the daemon's pool when the job ended.
    expect(readdirSync(dirOf('-silent')).sort()).toEqual(['drop.yaml', 'job.yaml', 'state.yaml']);
    expect(existsSync(path.join(dirOf('-stderr-only'), 'stdout.log'))).toBe(false);
    expect(readFileSync(path.join(dirOf('-stderr-only'), 'stderr.log'), 'utf8')).toBe('only-err\n');
  });
});
