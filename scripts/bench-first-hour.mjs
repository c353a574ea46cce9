#!/usr/bin/env node
/**
 * The first-hour measures of docs/performance.md, each beside its peer or floor in the same run:
 *   1. `batch --help` and `batch enqueue` against `node -e 0` (goal ≤ 1.3×);
 *   2. 1,000 × `true` by one bulk `batch enqueue --each`, until all done, against a `tsp` loop of the
 *      same 1,000 (goal ≤ 1.0×);
 *   3. a warm `npm start` to "ready" against `node dist/daemon/batchd.cjs` to "ready" (goal ≤ 1.5×).
 * The runs alternate within each round, and the report gives medians: the machine is shared and noisy.
 *
 *   npm run build && node scripts/bench-first-hour.mjs [--rounds 5] [--jobs 1000]
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const root = join(import.meta.dirname, '..');
const CLI = join(root, 'dist/daemon/cli/main.js');
const DAEMON = join(root, 'dist/daemon/batchd.cjs');
const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '5' }, jobs: { type: 'string', default: '1000' } },
});
const rounds = Number(values.rounds);
const jobs = Number(values.jobs);
const work = mkdtempSync(join(tmpdir(), 'batchd-first-hour-'));

const median = (xs) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const now = () => performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function timed(command, args, env = process.env) {
  const start = now();
  const run = spawnSync(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  if (run.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${run.status}: ${run.stderr}`);
  return now() - start;
}

/** A config folder for a daemon of our own on a free port, 2 workers, JSON logs. */
function makeConfig(name) {
  const dir = join(work, name);
  mkdirSync(join(dir, 'etc/jobtypes'), { recursive: true });
  writeFileSync(
    join(dir, 'etc/batchd.yaml'),
    `spool: ${join(dir, 'spool')}\nmanager: {host: 127.0.0.1, port: 0}\ndispatcher: {workers: 2}\nlogging: {format: json, level: info}\n`,
  );
  return dir;
}

/** Start a daemon (any command line) and resolve once it logs "batchd ready" and its API URL. */
function startDaemon(command, args, cwd) {
  const child = spawn(command, args, { cwd, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  const started = now();
  return new Promise((resolve, reject) => {
    let buffer = '';
    let readyMs;
    child.stderr.on('data', (chunk) => {
      buffer += chunk.toString();
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.includes('batchd ready')) readyMs = now() - started;
        const url = /"url":"([^"]+)"/.exec(line)?.[1];
        if (url !== undefined && readyMs !== undefined) resolve({ child, readyMs, url });
      }
    });
    child.on('exit', (code) => reject(new Error(`${command} exited ${code} before it was ready`)));
  });
}

async function stopDaemon(daemon) {
  const exited = new Promise((resolve) => daemon.child.once('exit', resolve));
  process.kill(-daemon.child.pid, 'SIGTERM'); // the group: npm, its shell and the daemon
  await exited;
}

async function startupRatios(url) {
  const env = { ...process.env, BATCH_MANAGER_URL: url };
  const node = [];
  const help = [];
  const enqueue = [];
  for (let i = 0; i < rounds * 4; i++) {
    node.push(timed(process.execPath, ['-e', '0']));
    help.push(timed(process.execPath, [CLI, '--help']));
    enqueue.push(timed(process.execPath, [CLI, 'enqueue', '--', 'true'], env));
  }
  return { node: median(node), help: median(help), enqueue: median(enqueue) };
}

async function waitUntilDone(url, queue, task) {
  for (;;) {
    const status = await (await fetch(`${url}/queue/${queue}/task/${task}`)).json();
    if (status.resolved === true) return status;
    await sleep(20);
  }
}

async function bulkRound(url, round) {
  const list = join(work, `lines-${round}.txt`);
  writeFileSync(list, 'true\n'.repeat(jobs));
  const start = now();
  execFileSync(process.execPath, [CLI, 'enqueue', '--each', list, '--task', `bulk${round}`], {
    env: { ...process.env, BATCH_MANAGER_URL: url },
    stdio: 'ignore',
  });
  await waitUntilDone(url, 'default', `bulk${round}`);
  return now() - start;
}

function tspRound(round) {
  const env = {
    ...process.env,
    TS_SOCKET: join(work, `tsp-${round}.socket`),
    TS_MAXFINISHED: String(jobs + 10),
  };
  execFileSync('tsp', ['-S', '2'], { env });
  const start = now();
  execFileSync(
    'bash',
    ['-c', `for i in $(seq ${jobs}); do tsp true >/dev/null; done; tsp -w >/dev/null 2>&1 || true`],
    { env },
  );
  // `tsp -w` waits for the last job only: wait until none is queued or running.
  while (/running|queued/.test(execFileSync('tsp', ['-l'], { env }).toString())) spawnSync('sleep', ['0.02']);
  const ms = now() - start;
  execFileSync('tsp', ['-K'], { env });
  return ms;
}

async function main() {
  const dir = makeConfig('daemon');
  const daemon = await startDaemon(process.execPath, [DAEMON, '--config', join(dir, 'etc')], root);
  const report = [];
  try {
    const startup = await startupRatios(daemon.url);
    report.push(['`batch --help`', startup.help, '`node -e 0`', startup.node, 1.3]);
    report.push(['`batch enqueue -- true`', startup.enqueue, '`node -e 0`', startup.node, 1.3]);
    const bulk = [];
    const tsp = [];
    for (let round = 0; round < rounds; round++) {
      bulk.push(await bulkRound(daemon.url, round));
      tsp.push(tspRound(round));
    }
    report.push([
      `${jobs} × true, one \`batch enqueue --each\`, until all done`,
      median(bulk),
      `a \`tsp\` loop of the same, 2 slots`,
      median(tsp),
      1.0,
    ]);
  } finally {
    await stopDaemon(daemon);
  }
  // A warm start: the build is current before the first timed `npm start`.
  execFileSync(process.execPath, [join(root, 'scripts/build-if-stale.mjs')], { stdio: 'inherit' });
  const npmStart = [];
  const bare = [];
  for (let round = 0; round < rounds; round++) {
    const a = makeConfig(`npm-${round}`);
    const viaNpm = await startDaemon('npm', ['start', '--silent', '--', '--config', join(a, 'etc')], root);
    npmStart.push(viaNpm.readyMs);
    await stopDaemon(viaNpm);
    const b = makeConfig(`bare-${round}`);
    const direct = await startDaemon(process.execPath, [DAEMON, '--config', join(b, 'etc')], root);
    bare.push(direct.readyMs);
    await stopDaemon(direct);
  }
  report.push([
    'warm `npm start` to "batchd ready"',
    median(npmStart),
    '`node dist/daemon/batchd.cjs` to ready',
    median(bare),
    1.5,
  ]);
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  process.stdout.write(`${new Date().toISOString()}, ${rounds} rounds, load ${load}\n\n`);
  process.stdout.write(
    '| figure | median | beside it (same run) | median | ratio | goal |\n|---|---|---|---|---|---|\n',
  );
  for (const [what, value, peer, peerValue, goal] of report) {
    const ratio = value / peerValue;
    process.stdout.write(
      `| ${what} | ${value.toFixed(0)} ms | ${peer} | ${peerValue.toFixed(0)} ms | ${ratio.toFixed(2)} × | ≤ ${goal} × ${ratio <= goal ? '(met)' : '(not met)'} |\n`,
    );
  }
}

main()
  .catch((error) => {
    process.stderr.write(`bench-first-hour: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  })
  .finally(() => rmSync(work, { recursive: true, force: true }));
