// How many drops per second the daemon accepts: 10,000 job files renamed into incoming/ in one
// burst (prepared beforehand on the same file system, so the burst is renames only), timed until
// every one is a job in queued/. The queue is disabled, so nothing runs: acceptance alone. Beside
// it, the floor: a bare tmp→rename submit loop into a folder nobody watches, with and without fsync.
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';

import { BatchdDaemon, subfolders } from '../lib/batchd.mjs';
import { waitFor } from '../lib/proc.mjs';
import { summarize } from '../lib/stats.mjs';

const JOB = "command: 'true'\n";

export async function acceptance(ctx) {
  const n = ctx.opts.quick ? 1000 : 10_000;
  // fsync runs at a few hundred per second on this disk: 2,000 files are a second at the target.
  const nDurable = Math.min(n, 2000);
  const rounds = ctx.opts.rounds;
  const rows = {
    'floor-rename': { label: `floor: tmp→rename loop, no fsync (no daemon), ${n} files`, rate: [] },
    'floor-fsync': {
      label: `floor: tmp→rename loop, file + folder fsync (no daemon), ${nDurable} files`,
      rate: [],
    },
    'floor-spool': {
      label: `floor: the spool's file work per drop, no daemon (mkdir, 2 small files, 2 renames), ${n} drops`,
      rate: [],
    },
    batchd: { label: `batchd accepts (storage.fsync: false), ${n} files`, rate: [], burstRate: [] },
    'batchd-durable': {
      label: `batchd accepts, durable (storage.fsync: true), ${nDurable} files`,
      rate: [],
      burstRate: [],
    },
  };
  for (let round = 1; round <= rounds; round++) {
    ctx.log(`acceptance round ${round}/${rounds}`);
    const dir = path.join(ctx.root, `acceptance-${round}`);
    rows['floor-rename'].rate.push(n / (floorLoop(path.join(dir, 'floor'), n, false) / 1000));
    rows['floor-fsync'].rate.push(
      nDurable / (floorLoop(path.join(dir, 'floor-fsync'), nDurable, true) / 1000),
    );
    rows['floor-spool'].rate.push(n / (spoolWork(path.join(dir, 'floor-spool'), n) / 1000));
    for (const [name, durable] of [
      ['batchd', false],
      ['batchd-durable', true],
    ]) {
      const row = rows[name];
      try {
        const r = await daemonBurst(ctx, path.join(dir, name), durable ? nDurable : n, durable);
        row.rate.push(r.rate);
        row.burstRate.push(r.burstRate);
        ctx.log(`  ${name}: ${Math.round(r.rate)} drops/s accepted (burst ${Math.round(r.burstRate)}/s)`);
      } catch (error) {
        (row.failures ??= []).push(`round ${round}: ${error.message}`);
        ctx.log(`  ${name}: failed: ${error.message}`);
      }
    }
    // Kept until the run's clean-up: deleting ~40,000 inodes here would slow every file creation
    // of the next 30 s (ext4 without a journal; bench/lib/fs-probe.mjs), i.e. the next round.
  }
  return {
    n,
    nDurable,
    rounds,
    rows: Object.entries(rows).map(([name, r]) => ({
      name,
      ...r,
      error: r.rate.length === 0 ? r.failures?.[0] : undefined,
      perSecond: summarize(r.rate),
      burstPerSecond: r.burstRate === undefined ? undefined : summarize(r.burstRate),
    })),
  };
}

/** The submit loop alone: write `.name.tmp`, rename it in; ms for n files. */
function floorLoop(dir, n, durable) {
  mkdirSync(dir, { recursive: true });
  const dirFd = durable ? openSync(dir, 'r') : undefined;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const tmp = path.join(dir, `.j${i}.tmp`);
    if (durable) {
      const fd = openSync(tmp, 'w');
      writeSync(fd, JOB);
      fsyncSync(fd);
      closeSync(fd);
    } else writeFileSync(tmp, JOB);
    renameSync(tmp, path.join(dir, `j${i}.yaml`));
    if (dirFd !== undefined) fsyncSync(dirFd);
  }
  const ms = performance.now() - t0;
  if (dirFd !== undefined) closeSync(dirFd);
  return ms;
}

/**
 * What accepting one drop costs the file system in batchd's spool design, with no daemon: a
 * folder in .staging, job.yaml and state.yaml in it, the drop renamed in, the folder renamed into
 * queued/. The drops are renamed into incoming/ first (not timed), as in the daemon burst.
 */
function spoolWork(dir, n) {
  const incoming = path.join(dir, 'incoming');
  const staging = path.join(dir, '.staging');
  const queued = path.join(dir, 'queued');
  for (const d of [incoming, staging, queued]) mkdirSync(d, { recursive: true });
  for (let i = 0; i < n; i++) writeFileSync(path.join(incoming, `j${i}.yaml`), JOB);
  const spec = JSON.stringify(
    { id: 'x'.repeat(27), queue: 'default', type: 'command', params: { command: 'true' } },
    null,
    1,
  );
  const state = JSON.stringify(
    { id: 'x'.repeat(27), queue: 'default', state: 'queued', history: [] },
    null,
    1,
  );
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const job = path.join(staging, `j${i}`);
    mkdirSync(job);
    writeFileSync(path.join(job, 'job.yaml'), spec);
    writeFileSync(path.join(job, 'state.yaml'), state);
    renameSync(path.join(incoming, `j${i}.yaml`), path.join(job, 'drop.yaml'));
    renameSync(job, path.join(queued, `j${i}`));
  }
  return performance.now() - t0;
}

async function daemonBurst(ctx, dir, n, durable) {
  const daemon = new BatchdDaemon({
    dir,
    tag: `${ctx.tag}-accept`,
    config: { storage: { fsync: durable } },
    queues: { default: 'enabled: false\n' },
  });
  const ready = path.join(dir, 'ready');
  mkdirSync(ready, { recursive: true });
  for (let i = 0; i < n; i++) writeFileSync(path.join(ready, `j${i}.yaml`), JOB);
  await daemon.start();
  try {
    const incoming = daemon.incoming();
    const queued = path.join(daemon.queueDir(), 'queued');
    const t0 = performance.now();
    for (let i = 0; i < n; i++) renameSync(path.join(ready, `j${i}.yaml`), path.join(incoming, `j${i}.yaml`));
    const burstMs = performance.now() - t0;
    // Link counts: O(1) per poll, so the poll does not slow the daemon being measured.
    await waitFor(() => subfolders(queued) >= n, {
      everyMs: 5,
      timeoutMs: 120_000,
      what: `${n} drops in queued/`,
    });
    const ms = performance.now() - t0;
    const left = readdirSync(incoming).filter((f) => !f.startsWith('.')).length;
    const rejected = readdirSync(path.join(daemon.queueDir(), 'rejected')).length;
    if (left > 0 || rejected > 0)
      throw new Error(`${left} drops left in incoming/, ${rejected} files in rejected/`);
    return { rate: n / (ms / 1000), burstRate: n / (burstMs / 1000) };
  } finally {
    await daemon.stop();
  }
}
