import path from 'node:path';
import { expect, it } from 'vitest';
import { blockUntil, dropJob, makeDispatchEnv, startInProcess, waitForState, workDir, touch } from '../helpers/dispatch.ts';
import { drop, jobsIn, waitFor } from '../helpers/env.ts';

it('probe starvation', async () => {
  const env = makeDispatchEnv({
    config: { dispatcher: { workers: 2 } },
    jobTypes: { gpu: { template: 'sh -c "$code"', params: [{ name: 'code', type: 'String' }, { name: 'n', type: 'Integer' }], max_jobs: 1 } },
    queues: { default: null },
  });
  const work = workDir(env);
  const daemon = await startInProcess(env);
  const t0 = Date.now();
  drop(env.spool, 'default', { type: 'gpu', params: { code: blockUntil(path.join(work, 'go')), n: { range: '1..1100' } } }, 'many.yaml');
  await waitFor(() => jobsIn(env.spool, 'default', 'queued').length + jobsIn(env.spool, 'default', 'running').length === 1100, 30_000);
  console.log('accepted', Date.now() - t0);
  const id = await dropJob(env, 'default', { command: 'true' }, 'small');
  const ok = await waitForState(env, id, 'done', 4000).then(() => true, () => false);
  console.log('small done?', ok, Date.now() - t0);
  touch(path.join(work, 'go'));
  await daemon.stop();
  env.cleanup();
  expect(ok).toBe(true);
});
