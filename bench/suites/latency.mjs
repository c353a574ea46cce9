// Submit → process start on an idle scheduler, the peers' way (reference/peers.md §4.2): each job
// writes `date +%s%N` into a file; latency = that stamp − the time right before the submit command.
// For batchd the submit command is the `mv` of a finished file into incoming/, and the daemon's own
// share is the stamp − the time the `mv` returned (the file visible in incoming/).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { rotate } from '../lib/pool.mjs';
import { runOk } from '../lib/proc.mjs';
import { latencyLoop, runScript, writeScript } from '../lib/scripts.mjs';
import { percentiles, summarize } from '../lib/stats.mjs';

const PEERS = ['floor', 'batchd', 'tsp', 'nq', 'batch', 'at', 'slurm'];

export async function latency(ctx, pool) {
  const rounds = ctx.opts.rounds;
  const perRound = ctx.opts.quick ? 10 : Math.ceil(100 / rounds);
  // Slurm starts jobs on a 1 s timer: a few samples say all there is to say.
  const slurmPerRound = ctx.opts.quick ? 2 : Math.ceil(10 / rounds);
  const dir = path.join(ctx.root, 'latency');
  const fifo = path.join(dir, 'idle.fifo');
  mkdirSync(dir, { recursive: true });
  await runOk('mkfifo', [fifo]);
  const rows = [];
  const peers = pool.selected(PEERS);
  const samples = new Map(peers.map((p) => [p.name, { all: [], own: [], submit: [], p50s: [] }]));
  const state = new Map();

  for (let round = 1; round <= rounds; round++) {
    ctx.log(`latency round ${round}/${rounds}`);
    for (const peer of rotate(peers, round - 1)) {
      if (state.get(peer.name)?.unavailable !== undefined) continue;
      const got = await pool.get(peer);
      if (got.unavailable !== undefined) {
        state.set(peer.name, { unavailable: got.unavailable });
        continue;
      }
      const session = got.session;
      const stamps = path.join(dir, peer.name);
      mkdirSync(stamps, { recursive: true });
      const times = path.join(dir, `${peer.name}-r${round}.times`);
      writeFileSync(times, '');
      const n = peer.name === 'slurm' ? slurmPerRound : perRound;
      try {
        await session.newRound();
        const file = writeScript(ctx, `latency-${peer.name}`, latencyLoop(session));
        await runScript(session, file, {
          N: String(n),
          ROUND: String(round),
          STAMPS: stamps,
          TIMES: times,
          FIFO: fifo,
          GAP: peer.name === 'slurm' ? '0.05' : '0.03',
          WAIT_S: peer.name === 'slurm' ? '30' : '10',
        });
        await session.waitAllDone(n, 60_000);
        const got2 = collect(times, stamps, round);
        const s = samples.get(peer.name);
        s.all.push(...got2.total);
        s.own.push(...got2.own);
        s.submit.push(...got2.submit);
        s.p50s.push(percentiles(got2.total).p50);
        ctx.log(`  ${peer.name}: p50 ${percentiles(got2.total).p50.toFixed(2)} ms over ${got2.total.length}`);
      } catch (error) {
        const failures = state.get(peer.name)?.failures ?? [];
        failures.push(`round ${round}: ${error.message}`);
        state.set(peer.name, { failures });
        ctx.log(`  ${peer.name}: failed: ${error.message}`);
      }
    }
  }
  for (const peer of peers) {
    const s = samples.get(peer.name);
    const row = { name: peer.name, label: peer.label, ...state.get(peer.name) };
    if (s.all.length === 0 && row.failures !== undefined) row.error = row.failures[0];
    if (s.all.length > 0) {
      row.total = percentiles(s.all);
      row.roundP50 = summarize(s.p50s);
      if (peer.name === 'batchd') {
        row.own = percentiles(s.own);
        // The `mv` alone (t0 → t1): a daemon that cost nothing would still be this plus the stamp.
        row.submit = percentiles(s.submit);
      }
      if (peer.name === 'floor')
        row.note = 'the job started straight from the loop (`sh -c … &`): the cost of the stamp itself';
    }
    rows.push(row);
  }
  // The stamp is taken by `date` under `sh -c`, so the raw share includes starting those two; the
  // floor's p50 (the same job forked straight from the loop) is that cost, which leaves the daemon's.
  const b = rows.find((r) => r.name === 'batchd');
  const f = rows.find((r) => r.name === 'floor');
  if (b?.own !== undefined && f?.total !== undefined) b.ownNetP50 = b.own.p50 - f.total.p50;
  return { perRound, slurmPerRound, rounds, rows };
}

/**
 * Latencies in ms: from t0 (before submit) and from t1 (after submit returned) to the stamp, and
 * the submit command's own time (t0 → t1).
 */
function collect(timesFile, stampsDir, round) {
  const total = [];
  const own = [];
  const submit = [];
  for (const line of readFileSync(timesFile, 'utf8').split('\n')) {
    const [i, t0, t1] = line.trim().split(' ');
    if (i === undefined || t1 === undefined) continue;
    const stamp = BigInt(readFileSync(path.join(stampsDir, `r${round}-${i}`), 'utf8').trim());
    total.push(nsDiffMs(stamp, epochToNs(t0)));
    own.push(nsDiffMs(stamp, epochToNs(t1)));
    submit.push(nsDiffMs(epochToNs(t1), epochToNs(t0)));
  }
  return { total, own, submit };
}

/** bash's $EPOCHREALTIME ("1795257094.589123") in nanoseconds, exactly. */
function epochToNs(text) {
  const [sec, frac = '0'] = text.split(/[.,]/);
  return BigInt(sec) * 1_000_000_000n + BigInt(frac.padEnd(9, '0').slice(0, 9));
}

function nsDiffMs(a, b) {
  return Number(a - b) / 1e6;
}
