// batchd as a peer in the side-by-side suites: submissions are file drops from the shell loop
// (write `.name.tmp`, then `mv` it into incoming/), completion is read from the spool.
import path from 'node:path';

import { BatchdDaemon } from '../lib/batchd.mjs';
import { waitFor } from '../lib/proc.mjs';

/**
 * A drop from the shell loop: write `.name.tmp`, then `mv` it into $IN. The throughput suite also
 * times these alone, into a folder nobody watches: what the submission costs with no daemon.
 */
export const DROP_TRUE = {
  prepareTrue: `printf "command: 'true'\\n" > "$IN/.r\${ROUND}j$i.tmp"`,
  submitTrue: `mv "$IN/.r\${ROUND}j$i.tmp" "$IN/r\${ROUND}j$i.yaml"`,
};

export const batchd = {
  name: 'batchd',
  label: 'batchd (file drop, 2 workers)',
  async start(ctx) {
    const daemon = new BatchdDaemon({ dir: path.join(ctx.root, 'batchd-peer'), tag: `${ctx.tag}-batchd` });
    await daemon.start();
    const incoming = daemon.incoming();
    let base = 0;
    const session = {
      daemon,
      env: { ...process.env, IN: incoming },
      prefix: [],
      ...DROP_TRUE,
      // $JOB holds no single quote (the suites' jobs are `date +%s%N > file`).
      prepareShell: `printf "command: '%s'\\n" "$JOB" > "$IN/.r\${ROUND}s$i.tmp"`,
      submitShell: `mv "$IN/.r\${ROUND}s$i.tmp" "$IN/r\${ROUND}s$i.yaml"`,
      newRound: async () => {
        base = daemon.finished();
      },
      waitAllDone: async (n, timeoutMs) => {
        await waitFor(() => daemon.finished() - base >= n, {
          everyMs: 5,
          timeoutMs,
          what: `${n} batchd jobs`,
        });
        const failed = daemon.count('failed');
        if (failed > 0) throw new Error(`${failed} batchd jobs failed: ${daemon.lastProblem()}`);
      },
      stop: () => daemon.stop(),
    };
    // Warm-up: the first job also starts the job launcher process.
    await session.newRound();
    daemon.drop('warmup.yaml', "command: 'true'\n");
    await session.waitAllDone(1, 30_000);
    return session;
  },
};
