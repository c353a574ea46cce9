// Command-line options of `npm run bench` (bench/run.mjs).
import { parseArgs } from 'node:util';

export const USAGE = `usage: npm run bench -- [options]
  --quick            small N and one round: a smoke run (figures are not comparable to a full run)
  --rounds N         rounds per measurement (default 3; --quick: 1)
  --only a,b,...     only these suites and/or peers
                     suites: throughput, latency, acceptance, task, deep, processes, http
                     peers:  batchd, tsp, nq, batch, at, slurm (the floors always run)
  --profile          run batchd under node --cpu-prof in the task suite and summarise where time goes
  --accept-only      task suite: only the 100,000-job task's acceptance (no 10,000-job run)
  --keep             keep the run's temporary folder (spools, scripts, logs)
  --no-setup         do not run bench/setup.sh (apt install of the peers)
  -h, --help`;

export const SUITES = ['throughput', 'latency', 'acceptance', 'task', 'deep', 'processes', 'http'];
export const PEERS = ['batchd', 'tsp', 'nq', 'batch', 'at', 'slurm'];

export function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      only: { type: 'string' },
      profile: { type: 'boolean', default: false },
      'accept-only': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      'no-setup': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  const rounds = values.rounds === undefined ? (values.quick ? 1 : 3) : Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 50)
    throw new Error(`--rounds: expected a whole number 1..50, got ${values.rounds}`);
  const only =
    values.only === undefined
      ? []
      : values.only
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
  for (const name of only) {
    if (!SUITES.includes(name) && !PEERS.includes(name))
      throw new Error(
        `--only: unknown name "${name}" (suites: ${SUITES.join(', ')}; peers: ${PEERS.join(', ')})`,
      );
  }
  const onlySuites = only.filter((n) => SUITES.includes(n));
  const onlyPeers = only.filter((n) => PEERS.includes(n));
  return {
    quick: values.quick,
    rounds,
    profile: values.profile,
    acceptOnly: values['accept-only'],
    keep: values.keep,
    setup: !values['no-setup'],
    help: values.help,
    only,
    suites: onlySuites.length > 0 ? onlySuites : SUITES,
    // batchd is always measured: every comparison is about it.
    peers: onlyPeers.length > 0 ? [...new Set(['batchd', ...onlyPeers])] : PEERS,
  };
}
