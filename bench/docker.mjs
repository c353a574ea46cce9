#!/usr/bin/env node
// Docker hosts: (a) start on demand — from a job's drop into incoming/ on a stopped container's
// host to its process starting inside the container, beside a bare `docker start` + `docker exec`
// of the same container through the API; (b) jobs/s through Docker exec on a warm container,
// beside the same number of execs of the same command issued directly with the same parallelism.
// Starts its own dockerd (vfs, no networking of its own; TESTING.md "Docker") and its own daemon
// from dist/ (run `npm run build` first); both are stopped by PID at the end.
//
//   node bench/docker.mjs [--rounds 5] [--jobs 200] [--workers 4] [--keep]
import { execFileSync, spawn } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import Docker from 'dockerode';

import { DAEMON_MAIN } from './lib/batchd.mjs';

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at < 0 ? fallback : Number(process.argv[at + 1]);
}
const ROUNDS = option('rounds', 5);
const JOBS = option('jobs', 200);
const WORKERS = option('workers', 4);
const KEEP = process.argv.includes('--keep');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (line) => process.stderr.write(`${line}\n`);
/** Wall-clock microseconds (the container shares this machine's clock). */
const nowUs = () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e3));
/** busybox's date has no %N: /bin/stamp in the image prints the microsecond clock from adjtimex. */
const STAMP = `#!/bin/sh\nadjtimex | awk '/tv_sec/{s=$2} /tv_usec/{u=$2} END{printf "%d%06d\\n", s, u}'\n`;

async function waitUntil(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(20_000)]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** A private engine and a busybox-static image imported offline. */
async function startEngine(dir) {
  const socket = path.join(dir, 'docker.sock');
  const ns = `batchd-bench-${process.pid}`;
  const child = spawn(
    'dockerd',
    [
      ...['--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec')],
      ...['--pidfile', path.join(dir, 'dockerd.pid'), '-H', `unix://${socket}`],
      ...['--iptables=false', '--ip6tables=false', '--bridge=none', '--storage-driver=vfs'],
      ...[
        '--containerd-namespace',
        ns,
        '--containerd-plugins-namespace',
        `${ns}-plugins`,
        '--log-level',
        'warn',
      ],
    ],
    { stdio: 'ignore' },
  );
  const docker = new Docker({ socketPath: socket });
  await waitUntil(
    () =>
      docker.ping().then(
        () => true,
        () => child.exitCode !== null,
      ),
    30_000,
    'dockerd',
  );
  if (child.exitCode !== null) throw new Error('dockerd exited at start');
  const rootfs = path.join(dir, 'rootfs');
  for (const sub of ['bin', 'tmp', 'etc']) mkdirSync(path.join(rootfs, sub), { recursive: true });
  copyFileSync('/bin/busybox', path.join(rootfs, 'bin', 'busybox'));
  for (const applet of execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n'))
    if (applet !== '' && applet !== 'busybox') symlinkSync('busybox', path.join(rootfs, 'bin', applet));
  writeFileSync(path.join(rootfs, 'bin', 'stamp'), STAMP, { mode: 0o755 });
  execFileSync('tar', ['-C', rootfs, '-cf', path.join(dir, 'rootfs.tar'), '.']);
  execFileSync(
    'docker',
    [
      '-H',
      `unix://${socket}`,
      'import',
      '-c',
      'ENV PATH=/bin',
      path.join(dir, 'rootfs.tar'),
      'bench-busybox:1',
    ],
    { stdio: 'ignore' },
  );
  const container = async (name) => {
    await docker.createContainer({
      name,
      Image: 'bench-busybox:1',
      Cmd: ['sleep', 'inf'],
      HostConfig: { Init: true, NetworkMode: 'none' },
    });
    return docker.getContainer(name);
  };
  return { child, docker, socket, container, execRoot: path.join(dir, 'exec') };
}

/** One exec through the API, to its end: its stdout. */
async function exec(docker, container, cmd) {
  const e = await container.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await e.start({ hijack: true, stdin: false });
  let out = '';
  const sink = { write: (d) => ((out += d.toString()), true), end: () => undefined };
  docker.modem.demuxStream(stream, sink, { write: () => true, end: () => undefined });
  await new Promise((resolve) => stream.on('end', resolve));
  return out;
}

async function startDaemon(dir, socket) {
  const etc = path.join(dir, 'etc');
  const spool = path.join(dir, 'spool');
  for (const sub of ['jobtypes', 'hosts', 'controllers']) mkdirSync(path.join(etc, sub), { recursive: true });
  const settings = {
    spool,
    manager: { enabled: false },
    logging: { level: 'info', format: 'json', target: 'stderr' },
    dispatcher: { workers: WORKERS },
  };
  writeFileSync(path.join(etc, 'batchd.yaml'), JSON.stringify(settings));
  writeFileSync(
    path.join(etc, 'controllers', 'd.yaml'),
    JSON.stringify({ driver: 'docker', unix_socket: socket, stop_timeout: 2 }),
  );
  writeFileSync(path.join(etc, 'jobtypes', 'stamp.yaml'), 'template: stamp\n');
  writeFileSync(
    path.join(etc, 'jobtypes', 'bench-true.yaml'),
    'template: "true"\nparams:\n  - name: n\n    type: Integer\n    default: 0\n',
  );
  const host = { controller: 'd', startup_time: 0, work_directory: '/tmp/batchd' };
  // Stopped after one idle second: each round finds it stopped.
  writeFileSync(
    path.join(etc, 'hosts', 'cold.yaml'),
    JSON.stringify({ ...host, controller_id: 'bench-cold', shutdown_timeout: 1 }),
  );
  writeFileSync(
    path.join(etc, 'hosts', 'warm.yaml'),
    JSON.stringify({ ...host, controller_id: 'bench-warm', shutdown_timeout: 3600 }),
  );
  for (const queue of ['cold', 'warm']) {
    mkdirSync(path.join(spool, queue, 'incoming'), { recursive: true });
    writeFileSync(path.join(spool, queue, 'queue.yaml'), `host_name: ${queue}\n`);
  }
  const child = spawn(process.execPath, [DAEMON_MAIN, '--config', etc, '--spool', spool], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let output = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (output = (output + d).slice(-50_000)));
  await waitUntil(() => output.includes('batchd ready') || child.exitCode !== null, 60_000, 'batchd ready');
  if (child.exitCode !== null) throw new Error(`batchd exited: ${output}`);
  return { child, spool, output: () => output };
}

/** Job folders in a state folder (sharded by date). */
function jobDirs(spool, queue, state) {
  const dir = path.join(spool, queue, state);
  let shards;
  try {
    shards = readdirSync(dir);
  } catch {
    return [];
  }
  return shards.flatMap((s) => {
    try {
      return readdirSync(path.join(dir, s)).map((j) => path.join(dir, s, j));
    } catch {
      return [];
    }
  });
}
const count = (spool, queue, state) => {
  let total = 0;
  try {
    for (const shard of readdirSync(path.join(spool, queue, state)))
      total += statSync(path.join(spool, queue, state, shard)).nlink - 2;
  } catch {
    // none yet
  }
  return total;
};

function drop(spool, queue, name, content) {
  const tmp = path.join(spool, queue, 'incoming', `.${name}.tmp`);
  writeFileSync(tmp, content);
  renameSync(tmp, path.join(spool, queue, 'incoming', `${name}.yaml`));
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const range = (xs) => `${Math.min(...xs).toFixed(0)}..${Math.max(...xs).toFixed(0)}`;

/** Run `n` tasks with at most `parallel` at once. */
async function pool(n, parallel, task) {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < n) await task(next++);
    }),
  );
}

async function main() {
  const dir = mkdtempSync('/tmp/batchd-bench-docker-');
  let engine;
  let daemon;
  try {
    engine = await startEngine(dir);
    const cold = await engine.container('bench-cold');
    const warm = await engine.container('bench-warm');
    daemon = await startDaemon(dir, engine.socket);
    const running = async () => (await cold.inspect()).State.Running;

    // (a) start on demand, the two sides taking turns; round 0 warms up and is not counted.
    const bare = [];
    const viaBatchd = [];
    for (let r = 0; r <= ROUNDS; r++) {
      await waitUntil(async () => !(await running()), 30_000, 'bench-cold stopped');
      let t0 = nowUs();
      await cold.start();
      const started = BigInt((await exec(engine.docker, cold, ['stamp'])).trim());
      if (r > 0) bare.push(Number(started - t0) / 1e3);
      await cold.stop({ t: 2 });

      const before = count(daemon.spool, 'cold', 'done');
      t0 = nowUs();
      drop(daemon.spool, 'cold', `stamp-${r}`, 'type: stamp\n');
      await waitUntil(
        () => count(daemon.spool, 'cold', 'done') > before || count(daemon.spool, 'cold', 'failed') > 0,
        60_000,
        'stamp job',
      );
      if (count(daemon.spool, 'cold', 'failed') > 0)
        throw new Error(`a stamp job failed:\n${daemon.output()}`);
      const job = jobDirs(daemon.spool, 'cold', 'done').find((d) => d.endsWith(`-stamp-${r}`));
      const stamp = BigInt(readFileSync(path.join(job, 'stdout.log'), 'utf8').trim());
      if (r > 0) viaBatchd.push(Number(stamp - t0) / 1e3);
      if (r > 0)
        log(
          `round ${r}/${ROUNDS}: bare start+exec ${bare.at(-1).toFixed(0)} ms, batchd ${viaBatchd.at(-1).toFixed(0)} ms`,
        );
    }

    // (b) warm container: a task of JOBS jobs vs JOBS direct execs, WORKERS at a time.
    drop(daemon.spool, 'warm', 'warm-up', 'type: bench-true\n');
    await waitUntil(() => count(daemon.spool, 'warm', 'done') >= 1, 60_000, 'warm-up job');
    await warm.start().catch(() => undefined);
    const direct = [];
    const through = [];
    for (let r = 1; r <= ROUNDS; r++) {
      let t = performance.now();
      await pool(JOBS, WORKERS, () => exec(engine.docker, warm, ['/bin/sh', '-c', 'true']));
      direct.push(performance.now() - t);
      const before = count(daemon.spool, 'warm', 'done');
      t = performance.now();
      drop(daemon.spool, 'warm', `task-${r}`, `type: bench-true\nparams:\n  n: {range: "1..${JOBS}"}\n`);
      await waitUntil(
        () =>
          count(daemon.spool, 'warm', 'done') - before >= JOBS || count(daemon.spool, 'warm', 'failed') > 0,
        600_000,
        `${JOBS} jobs`,
      );
      if (count(daemon.spool, 'warm', 'failed') > 0) throw new Error('warm jobs failed');
      through.push(performance.now() - t);
      log(
        `round ${r}/${ROUNDS}: ${JOBS} direct execs ${(direct.at(-1) / 1000).toFixed(2)} s, ${JOBS} jobs ${(through.at(-1) / 1000).toFixed(2)} s`,
      );
    }

    const a = median(viaBatchd) / median(bare);
    const rate = (ms) => (JOBS * 1000) / ms;
    const b = rate(median(through)) / rate(median(direct));
    process.stdout.write(
      `\nDocker hosts, ${ROUNDS} rounds; ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)}\n`,
    );
    process.stdout.write(`| | median | min..max |\n|---|---|---|\n`);
    process.stdout.write(`| bare start + exec (API) | ${median(bare).toFixed(0)} ms | ${range(bare)} ms |\n`);
    process.stdout.write(
      `| job accepted → process started (batchd) | ${median(viaBatchd).toFixed(0)} ms | ${range(viaBatchd)} ms |\n`,
    );
    process.stdout.write(
      `| ${JOBS} direct execs, ${WORKERS} at a time | ${rate(median(direct)).toFixed(1)} execs/s | ${range(direct.map(rate))} |\n`,
    );
    process.stdout.write(
      `| ${JOBS} jobs through batchd, ${WORKERS} workers | ${rate(median(through)).toFixed(1)} jobs/s | ${range(through.map(rate))} |\n`,
    );
    process.stdout.write(
      `start on demand: ${a.toFixed(2)}× bare (goal ≤ 1.2×: ${a <= 1.2 ? 'met' : 'NOT met'}); warm jobs/s: ${b.toFixed(2)}× direct (goal ≥ 0.8×: ${b >= 0.8 ? 'met' : 'NOT met'})\n`,
    );
  } finally {
    if (daemon !== undefined) await stopChild(daemon.child);
    if (engine !== undefined) {
      await stopChild(engine.child);
      try {
        execFileSync('umount', [path.join(engine.execRoot, 'netns', 'default')], { stdio: 'ignore' });
      } catch {
        // not mounted
      }
    }
    if (!KEEP) rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`bench/docker: ${error.stack ?? error}\n`);
    process.exit(1);
  },
);
