// The floor: what it costs this machine to start the same processes with no scheduler at all.
import { TAG_VAR } from '../lib/proc.mjs';

/** A session whose "submit" runs the job straight from the submitting shell. */
export const floor = {
  name: 'floor',
  label: 'bare spawn (no scheduler)',
  async start(ctx) {
    return {
      env: { ...process.env, [TAG_VAR]: `${ctx.tag}-floor` },
      prefix: [],
      prepareTrue: ':',
      submitTrue: '/bin/true',
      prepareShell: ':',
      // In the background, as a scheduler would: the loop measures when the job's process starts.
      submitShell: 'sh -c "$JOB" &',
      newRound: async () => undefined,
      waitAllDone: async () => undefined,
      stop: async () => undefined,
    };
  },
};

/** The throughput floors: xargs -P2 (2 at a time, the reference) and a plain shell loop. */
export function floorScripts(n) {
  return {
    'floor-xargs': `seq ${n} | xargs -P2 -n1 /bin/true`,
    'floor-loop': `for ((i = 0; i < ${n}; i++)); do /bin/true; done`,
  };
}
