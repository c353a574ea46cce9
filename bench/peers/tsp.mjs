// task-spooler: a per-user server on a unix socket; every queued job is a live client process.
import { mkdirSync } from 'node:fs';
import path from 'node:path';

import { run, runOk, TAG_VAR, waitFor } from '../lib/proc.mjs';
import { requireBinaries, Unavailable } from './common.mjs';

export const tsp = {
  name: 'tsp',
  label: 'task-spooler (tsp, 2 slots)',
  async start(ctx) {
    requireBinaries('tsp');
    const dir = path.join(ctx.root, 'tsp');
    mkdirSync(path.join(dir, 'out'), { recursive: true });
    const env = {
      ...process.env,
      [TAG_VAR]: `${ctx.tag}-tsp`,
      TS_SOCKET: path.join(dir, 'socket'),
      // Job output goes to files here, as batchd keeps each job's stdout/stderr.
      TMPDIR: path.join(dir, 'out'),
      TS_SLOTS: '2',
      TS_MAXFINISHED: '200000',
      // Each queued job holds a connection; lift the default cap of 1,000 for the deep queue.
      TS_MAXCONN: '5000',
    };
    const tspCmd = (...args) => run('tsp', args, { env, timeoutMs: 30_000 });
    const started = await tspCmd('-S', '2');
    if (started.code !== 0) throw new Unavailable(`tsp -S 2 failed: ${started.stderr.trim()}`);
    const finished = async () =>
      (await tspCmd('-l')).stdout.split('\n').filter((l) => /^\d+\s+finished\s/.test(l)).length;
    const session = {
      env,
      prefix: [],
      prepareTrue: ':',
      submitTrue: 'tsp true >/dev/null',
      prepareShell: ':',
      submitShell: 'tsp sh -c "$JOB" >/dev/null',
      newRound: async () => {
        await runOk('tsp', ['-C'], { env });
      },
      waitAllDone: async (n, timeoutMs) => {
        await waitFor(async () => (await finished()) >= n, { everyMs: 20, timeoutMs, what: `${n} tsp jobs` });
      },
      stop: async () => {
        await tspCmd('-K');
      },
    };
    await session.newRound();
    await runOk('tsp', ['true'], { env });
    await session.waitAllDone(1, 10_000);
    return session;
  },
};
