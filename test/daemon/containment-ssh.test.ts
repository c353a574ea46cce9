import { existsSync, statSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Daemon } from '../../daemon/daemon.ts';
import { dropJob, makeDispatchEnv, startInProcess } from '../helpers/dispatch.ts';
import { jobDir, type TestEnv, waitFor } from '../helpers/env.ts';
import { finished, hostFile, log } from '../ssh/ssh-env.ts';
import { type Sshd, startSshd } from '../ssh/sshd.ts';

function size(file: string): number {
  return existsSync(file) ? statSync(file).size : 0;
}

/**
 * Pause and resume of a job on a host (SIGSTOP and SIGCONT to the job's process group): through
 * the launcher there, or, on a host without perl, through the shell wrapper's control line (the
 * wrapper starts the job under setsid, so the stop reaches the job and not the wrapper). Its
 * timeout stops while it is paused. The launcher sets rlimits too.
 */
describe('pause and resume of a job on an SSH host', () => {
  let sshd: Sshd;
  let env: TestEnv;
  let daemon: Daemon;

  beforeAll(async () => {
    sshd = await startSshd();
    env = makeDispatchEnv({
      queues: { default: null },
      jobTypes: {
        // 12 lines, one every 0.1 s; the timeout is far longer than that but shorter than the pause.
        counter: {
          template: 'i=0; while [ $i -lt 12 ]; do i=$((i+1)); echo $i; sleep 0.1; done',
          timeout: 5,
        },
        files: { template: 'ulimit -n', limits: { open_files: 23 } },
      },
    });
    env.writeConfig('hosts/remote.yaml', hostFile(sshd, path.join(env.root, 'remote')));
    env.writeConfig('hosts/plain.yaml', { ...hostFile(sshd, path.join(env.root, 'plain')), perl: false });
    daemon = await startInProcess(env);
  });

  afterAll(async () => {
    await daemon?.stop();
    await sshd?.stop();
    env?.cleanup();
  });

  it.each([
    ['the launcher', 'remote'],
    ['the shell wrapper (perl: false)', 'plain'],
  ])(
    'through %s: a paused job prints nothing, outlives its timeout while paused, and finishes after resume',
    async (_, host) => {
      const id = await dropJob(env, 'default', { type: 'counter', host }, `${host}-counter`);
      const out = path.join(jobDir(env.spool, 'default', 'running', id), 'stdout.log');
      await waitFor(() => size(out) >= 4 || undefined, 15_000, 'the job to print');
      const executor = daemon.hosts.executorFor(host);
      expect(await executor?.pause?.(id)).toBe(true);
      await new Promise((r) => setTimeout(r, 500));
      const atPause = size(out);
      await new Promise((r) => setTimeout(r, 5_500));
      expect(size(out), 'output while paused').toBe(atPause);
      expect(await executor?.resume?.(id)).toBe(true);
      const { state, dir } = await finished(env, id);
      expect(state).toBe('done');
      expect(log(dir, 'stdout.log').trim().split('\n').at(-1)).toBe('12');
    },
  );

  it('a job type’s open-files limit applies on the host (set by its launcher)', async () => {
    const id = await dropJob(env, 'default', { type: 'files', host: 'remote' }, 'remote-files');
    const { state, dir } = await finished(env, id);
    expect(state).toBe('done');
    expect(log(dir, 'stdout.log')).toBe('23\n');
  });
});
