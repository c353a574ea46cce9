// nq: no daemon; each job is a process that waits for the locks of all earlier jobs in $NQDIR.
// One NQDIR is one strictly serial queue, so nq runs 1 job at a time here.
import { mkdirSync } from 'node:fs';
import path from 'node:path';

import { runOk, TAG_VAR } from '../lib/proc.mjs';
import { requireBinaries } from './common.mjs';

export const nq = {
  name: 'nq',
  label: 'nq (serial: one queue dir)',
  async start(ctx) {
    requireBinaries('nq');
    const dir = path.join(ctx.root, 'nq');
    let round = 0;
    const env = { ...process.env, [TAG_VAR]: `${ctx.tag}-nq` };
    const session = {
      env,
      prefix: [],
      prepareTrue: ':',
      submitTrue: 'nq -q true',
      prepareShell: ':',
      submitShell: 'nq -q sh -c "$JOB"',
      // A fresh queue folder per round: `nq -w` then waits for exactly this round's jobs.
      newRound: async () => {
        round += 1;
        env.NQDIR = path.join(dir, `round${round}`);
        mkdirSync(env.NQDIR, { recursive: true });
      },
      waitAllDone: async (_n, timeoutMs) => {
        await runOk('nq', ['-w'], { env, timeoutMs });
      },
      stop: async () => undefined,
    };
    await session.newRound();
    await runOk('nq', ['-q', 'true'], { env });
    await session.waitAllDone(1, 10_000);
    return session;
  },
};
