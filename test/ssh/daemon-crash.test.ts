import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { drop, jobsIn, makeEnv, readState, type TestEnv } from '../helpers/env.ts';
import { finished, hostFile, log, waitForNoLeftovers, waitForNoProcess, waitForProcess } from './ssh-env.ts';
import { type Sshd, startSshd } from './sshd.ts';

describe('the daemon going away during a remote job', () => {
  let sshd: Sshd;
  let env: TestEnv;
  let daemon: DaemonProcess | undefined;
  let remote: string;

  beforeAll(async () => {
    sshd = await startSshd();
    env = makeEnv({
      config: { dispatcher: { grace_time: 0.5 } },
      queues: { default: null },
      jobTypes: {
        once: {
          template: ['if [ ! -e "$flag" ]; then touch "$flag"; sleep 335; fi', 'echo second run'],
          params: [{ name: 'flag', type: 'String' }],
          on_fail: { retry: { when: 'now', count: 1 } },
          host_name: 'remote',
        },
        nap: {
          template: 'sleep $seconds',
          params: [{ name: 'seconds', type: 'Integer' }],
          host_name: 'remote',
        },
      },
    });
    remote = path.join(env.root, 'remote');
    env.writeConfig('hosts/remote.yaml', hostFile(sshd, remote));
  });

  afterAll(async () => {
    await daemon?.stop();
    await sshd?.stop();
    env?.cleanup();
  });

  it('stops the remote process with the daemon, and recovery runs the job again as on_fail says', async () => {
    daemon = await startDaemon(env.etc, env.spool);
    drop(env.spool, 'default', { type: 'once', params: { flag: path.join(env.root, 'flag') } }, 'crash.yaml');
    await waitForProcess('sleep 335', 15_000);
    const [jobId = ''] = jobsIn(env.spool, 'default', 'running');
    daemon.kill('SIGKILL');
    await daemon.exited;
    // The connection died with the daemon: the wrapper saw end-of-file and killed the job, so the
    // re-run after recovery cannot overlap a first run that is still going.
    await waitForNoProcess('sleep 335', 5_000);
    daemon = await startDaemon(env.etc, env.spool);
    const { state, record, dir } = await finished(env, jobId, 20_000);
    expect(state).toBe('done');
    expect(record.attempts).toBe(2);
    expect(record.results[0]).toMatchObject({ outcome: 'interrupted' });
    expect(record.results[1]).toMatchObject({ outcome: 'success' });
    expect(log(dir, 'stdout.log')).toBe('second run\n');
    await waitForNoLeftovers(remote);
  });

  it('an orderly stop past the grace time stops the remote process and puts the job back in queued/', async () => {
    await daemon?.stop();
    daemon = await startDaemon(env.etc, env.spool);
    drop(env.spool, 'default', { type: 'nap', params: { seconds: 336 } }, 'stopped.yaml');
    await waitForProcess('sleep 336', 15_000);
    const [jobId = ''] = jobsIn(env.spool, 'default', 'running');
    await daemon.stop();
    daemon = undefined;
    await waitForNoProcess('sleep 336', 5_000);
    expect(jobsIn(env.spool, 'default', 'queued')).toEqual([jobId]);
    const record = readState(env.spool, 'default', 'queued', jobId);
    expect(record.last).toMatchObject({ outcome: 'interrupted', error: 'the daemon shut down' });
    // The launcher went with the connection, and so did the empty folders it kept for reuse.
    await waitForNoLeftovers(remote, true);
  });
});
