// What every peer session offers the suites. A peer that cannot start throws Unavailable; the
// report then says "unavailable: <why>" instead of leaving the peer out.
//
// A peer module exports {name, label, start(ctx)}; start resolves with a session:
// - env: environment for the submit scripts (holds the process tag)
// - prefix: argv prefix that runs a submit script where the peer lives (e.g. nsenter)
// - prepareTrue / submitTrue: bash lines that submit one `true`; `$i` and `$ROUND` are set
// - prepareShell / submitShell: the same for the shell code in `$JOB`; only submitShell is timed
// - waitAllDone(n, timeoutMs): resolves once the n jobs of this round have finished
// - newRound(): forget the finished jobs of earlier rounds
// - stop()
import { existsSync } from 'node:fs';

export class Unavailable extends Error {}

/** Throw Unavailable unless every binary is installed. */
export function requireBinaries(...names) {
  for (const name of names) {
    const found = ['/usr/bin', '/usr/sbin', '/bin', '/sbin', '/usr/local/bin'].some((d) =>
      existsSync(`${d}/${name}`),
    );
    if (!found) throw new Unavailable(`${name} is not installed (bench/setup.sh installs it from apt)`);
  }
}
