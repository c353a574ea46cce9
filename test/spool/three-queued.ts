import { startDaemon } from '../helpers/daemon-process.ts';
import { drop, jobsIn, makeEnv, type TestEnv, waitFor } from '../helpers/env.ts';

/**
 * A spool with three queued jobs of a type that echoes, in a disabled queue, accepted by a daemon
 * that has stopped again: the start of the tests that hand-edit a record, then start a daemon on it.
 */
export async function spoolWithThreeQueued(): Promise<TestEnv> {
  const env = makeEnv({
    jobTypes: { mark: { template: 'echo ran' } },
    queues: { default: { enabled: false } },
  });
  try {
    const daemon = await startDaemon(env.etc, env.spool);
    try {
      for (const name of ['a', 'b', 'c']) drop(env.spool, 'default', { type: 'mark' }, `${name}.yaml`);
      await waitFor(() => jobsIn(env.spool, 'default', 'queued').length === 3, 20_000, 'three queued jobs');
    } finally {
      await daemon.stop();
    }
  } catch (error) {
    env.cleanup();
    throw error;
  }
  return env;
}
