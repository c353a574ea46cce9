#!/usr/bin/env node
// `npm run bench`: batchd beside its peers, in one run on one machine; writes
// bench/results/<timestamp>.{md,json} and prints the comparison table.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { DAEMON_MAIN, snapshotBuild } from './lib/batchd.mjs';
import { describeProbe, probeFileSystem } from './lib/fs-probe.mjs';
import { describeBuild, describeMachine } from './lib/machine.mjs';
import { parseOptions, USAGE } from './lib/options.mjs';
import { PeerPool } from './lib/pool.mjs';
import { killTagged } from './lib/proc.mjs';
import { renderMarkdown } from './lib/report.mjs';
import { evaluateTargets } from './lib/targets.mjs';
import { atNow, batch } from './peers/at.mjs';
import { batchd } from './peers/batchd.mjs';
import { floor } from './peers/floor.mjs';
import { nq } from './peers/nq.mjs';
import { slurm } from './peers/slurm.mjs';
import { tsp } from './peers/tsp.mjs';
import { acceptance } from './suites/acceptance.mjs';
import { deepQueue } from './suites/deep-queue.mjs';
import { http } from './suites/http.mjs';
import { latency } from './suites/latency.mjs';
import { processes } from './suites/processes.mjs';
import { task } from './suites/task.mjs';
import { throughput } from './suites/throughput.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));

// The order matters: `processes` fills the peers' queues with waiting jobs, so it goes last.
const SUITES = { throughput, latency, acceptance, task, deep: deepQueue, http, processes };

async function main() {
  let opts;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${error.message}\n${USAGE}\n`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (!existsSync(DAEMON_MAIN)) {
    process.stderr.write(
      `bench: ${DAEMON_MAIN} is missing; run \`npm run build\` first (npm run bench does)\n`,
    );
    return 1;
  }
  if (opts.setup) {
    const setup = spawnSync('bash', [path.join(HERE, 'setup.sh')], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (setup.status !== 0)
      process.stderr.write('bench: setup.sh failed; missing peers will be reported unavailable\n');
  }
  const startedAt = new Date();
  const root = mkdtempSync(path.join(os.tmpdir(), 'batchd-bench-'));
  const tag = `bb${process.pid}x${Math.random().toString(36).slice(2, 8)}`;
  const ctx = {
    opts,
    root,
    tag,
    log: (line) => process.stderr.write(`${line}\n`),
    wants: (peer) => opts.peers.includes(peer) || peer === 'floor',
  };
  const pool = new PeerPool(ctx, [floor, batchd, tsp, nq, batch, atNow, slurm]);
  const cleanup = async () => {
    await pool.closeAll();
    const left = await killTagged(tag);
    if (left > 0) ctx.log(`bench: killed ${left} leftover process(es) of this run`);
    if (!opts.keep) rmSync(root, { recursive: true, force: true });
  };
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    ctx.log('bench: interrupted; stopping what it started');
    cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  snapshotBuild(path.join(root, 'app'));
  const machine = await describeMachine(root);
  machine.build = await describeBuild();
  machine.fsAtStart = probeFileSystem(root);
  ctx.log(`bench: file system: ${describeProbe(machine.fsAtStart)}`);
  ctx.log(`bench: ${machine.cpu}, load ${machine.loadavgAtStart.join(' ')}; work folder ${root}`);
  const results = {};
  try {
    for (const [name, suite] of Object.entries(SUITES)) {
      if (!opts.suites.includes(name)) continue;
      ctx.log(`== ${name}`);
      const t0 = performance.now();
      try {
        results[name] = await suite(ctx, pool);
      } catch (error) {
        results[name] = { error: error.message };
        ctx.log(`${name}: failed: ${error.stack ?? error.message}`);
      }
      results[name].seconds = Number(((performance.now() - t0) / 1000).toFixed(1));
    }
    machine.fsAtEnd = probeFileSystem(root);
  } finally {
    await cleanup();
  }
  machine.loadavgAtEnd = os.loadavg().map((l) => Number(l.toFixed(2)));

  const report = {
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    startedAt: startedAt.toISOString(),
    seconds: Number(((Date.now() - startedAt.getTime()) / 1000).toFixed(1)),
    options: opts,
    machine,
    results,
  };
  report.targets = evaluateTargets(results);
  const stamp = startedAt
    .toISOString()
    .replace(/[:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const outDir = path.join(HERE, 'results');
  mkdirSync(outDir, { recursive: true });
  const markdown = renderMarkdown(report);
  writeFileSync(path.join(outDir, `${stamp}.json`), JSON.stringify(report, null, 1) + '\n');
  writeFileSync(path.join(outDir, `${stamp}.md`), markdown);
  process.stdout.write(`${markdown}\nWritten: bench/results/${stamp}.md and .json\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`bench: ${error.stack ?? error.message}\n`);
    process.exit(1);
  },
);
