// A 10,000-job task (one drop, `params: {n: {range: "1..10000"}}`, a job type whose template is
// `true`) until all are done, against `xargs -P2` running the same 10,000 `true`s directly; when its
// first job started; and how long a 100,000-job task takes to be accepted (into a disabled queue).
// `--accept-only`: that acceptance alone (no 10,000-job run, no xargs), a round in seconds.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

import { BatchdDaemon } from '../lib/batchd.mjs';
import { summarizeProfile } from '../lib/profile.mjs';
import { runOk, waitFor } from '../lib/proc.mjs';
import { summarize } from '../lib/stats.mjs';

export async function task(ctx) {
  const n = ctx.opts.quick ? 1000 : 10_000;
  const acceptOnly = ctx.opts.acceptOnly === true;
  const rounds = ctx.opts.rounds;
  const floorMs = [];
  const totalMs = [];
  const acceptMs = [];
  const firstMs = [];
  const bigAcceptMs = [];
  const failures = [];
  let profile;
  for (let round = 1; round <= rounds; round++) {
    ctx.log(`task round ${round}/${rounds}`);
    if (!acceptOnly) {
      const floor = await runOk('bash', ['-c', `seq ${n} | xargs -P2 -n1 /bin/true`]);
      floorMs.push(floor.ms);
      ctx.log(`  xargs -P2: ${(floor.ms / 1000).toFixed(2)} s`);
    }
    const dir = path.join(ctx.root, `task-${round}`);
    const profDir = path.join(dir, 'cpu-profile');
    const profiling = ctx.opts.profile && round === 1;
    const daemon = new BatchdDaemon({
      dir,
      tag: `${ctx.tag}-task`,
      nodeArgs: profiling ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [],
    });
    try {
      await daemon.start();
      // Start the job launcher first, as a daemon that has run anything already has.
      daemon.drop('warmup.yaml', "command: 'true'\n");
      await waitFor(() => daemon.count('done') >= 1, {
        everyMs: 5,
        timeoutMs: 30_000,
        what: 'the warm-up job',
      });
      if (!acceptOnly) await runTask(ctx, daemon, n, { totalMs, acceptMs, firstMs });
      // A task ten times larger, into a disabled queue: its acceptance alone.
      const big = n * 10;
      daemon.setQueue('hold', 'enabled: false\n');
      await waitFor(() => existsSync(daemon.incoming('hold')), {
        everyMs: 20,
        timeoutMs: 30_000,
        what: 'queue hold',
      });
      // Without the n-job run, a small task accepted first (the acceptance code has run once),
      // and all its folders made: none are being made beside the measured acceptance.
      if (acceptOnly) {
        await acceptTask(daemon, 'warm', 200);
        const mark = path.join(daemon.queueDir('hold'), 'tasks', 'warm', 'made.json');
        await waitFor(() => !existsSync(mark), {
          everyMs: 20,
          timeoutMs: 60_000,
          what: 'the warm-up folders',
        });
      }
      const t1 = performance.now();
      await acceptTask(daemon, 'big', big);
      bigAcceptMs.push(performance.now() - t1);
      ctx.log(`  a ${big}-job task accepted after ${((performance.now() - t1) / 1000).toFixed(3)} s`);
    } catch (e) {
      failures.push(`round ${round}: ${e.message}`);
      ctx.log(`  batchd: failed: ${e.message}`);
    } finally {
      await daemon.stop();
    }
    if (profiling && existsSync(profDir)) {
      const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
      if (file !== undefined) profile = summarizeProfile(path.join(profDir, file));
    }
    // Kept until the run's clean-up: deleting ~40,000 inodes here would slow every file creation
    // of the next 30 s (ext4 without a journal; bench/lib/fs-probe.mjs), i.e. the next round.
  }
  return {
    n,
    rounds,
    floor: { label: '`xargs -P2` of /bin/true', total: summarize(floorMs), totalMs: floorMs },
    batchd: {
      label: 'batchd, one task drop (2 workers)',
      total: summarize(totalMs),
      totalMs,
      accepted: summarize(acceptMs),
      firstStarted: summarize(firstMs),
      bigAccepted: summarize(bigAcceptMs),
      error: totalMs.length === 0 ? failures[0] : undefined,
      failures: failures.length > 0 ? failures : undefined,
    },
    profile,
  };
}

/** Drop an n-job task into the disabled queue `hold` and wait until its manifest is committed. */
async function acceptTask(daemon, name, n) {
  daemon.drop(`${name}.yaml`, `type: bench-true\nparams:\n  n: {range: "1..${n}"}\n`, 'hold');
  // Committed: its manifest folder is renamed into tasks/.
  await waitFor(() => existsSync(path.join(daemon.queueDir('hold'), 'tasks', name)), {
    everyMs: 5,
    timeoutMs: 120_000,
    what: `the ${n}-job task accepted`,
  });
}

/** The n-job task until all its jobs are done: when it was accepted, its first job started, all done. */
async function runTask(ctx, daemon, n, { totalMs, acceptMs, firstMs }) {
  const t0 = performance.now();
  daemon.drop('bench.yaml', `type: bench-true\nparams:\n  n: {range: "1..${n}"}\n`);
  let accepted;
  let first;
  await waitFor(
    () => {
      if (accepted === undefined && daemon.logged(/^task accepted/) !== undefined)
        accepted = performance.now();
      if (first === undefined && daemon.count('running') + daemon.count('done') > 1)
        first = performance.now();
      return daemon.count('done') + daemon.count('failed') >= n + 1;
    },
    { everyMs: 20, timeoutMs: Math.max(120_000, n * 200), what: `${n} task jobs` },
  );
  const ms = performance.now() - t0;
  const failed = daemon.count('failed');
  if (failed > 0) throw new Error(`${failed} task jobs failed: ${daemon.lastProblem()}`);
  totalMs.push(ms);
  if (accepted !== undefined) acceptMs.push(accepted - t0);
  if (first !== undefined) firstMs.push(first - t0);
  ctx.log(
    `  batchd: ${(ms / 1000).toFixed(2)} s (accepted after ${((accepted - t0) / 1000).toFixed(2)} s, ` +
      `first job started after ${((first - t0) / 1000).toFixed(3)} s)`,
  );
}
