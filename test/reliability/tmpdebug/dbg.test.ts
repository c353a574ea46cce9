import { it } from 'vitest';
import { cleanupCrashLoop, crashLoopEnv, runCrashLoop } from '../crash-loop.ts';
it('dbg', async () => {
  const env = crashLoopEnv('retry');
  try { const r = await runCrashLoop(env, { onFail: 'retry', rounds: 20, jobs: 500 }); console.log(r.audit.problems.slice(0, 20)); }
  finally { cleanupCrashLoop(env); }
}, 200_000);
