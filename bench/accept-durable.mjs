#!/usr/bin/env node
// Acceptance throughput, durable (storage.fsync: true) beside non-durable, for one or more builds of
// the daemon compared in the same run (rounds interleave the builds, so machine load hits all alike):
//   - drops: N job files renamed into incoming/ in one burst, timed until all are folders in queued/;
//   - HTTP: wrk POSTs /queue/:q with a bearer token for S seconds, p50/p99 from wrk.
// Beside them, measured in the same run: the disk's sequential fsync floor, and the load average.
//
//   npm run build && node bench/accept-durable.mjs [--build label=DIR ...] [--drops 10000] [--rounds 3]
//       [--seconds 5] [--connections 16] [--no-http] [--no-drops] [--json FILE]
//
// The daemons inherit the environment. A build's dist/daemon/batchd.cjs (the `batchd` command) sizes
// libuv's thread pool to 64 unless UV_THREADPOOL_SIZE is set (durable acceptance issues its fsyncs
// through that pool); a build older than that file runs main.js with libuv's 4 unless the variable is set.
// A build DIR holds dist/ (and resolves packages through the repository's node_modules): snapshot a
// build with `npx tsc -p tsconfig.json --outDir DIR/dist` so others' rebuilds of dist/ do not change
// what is measured. Default: one build, this repository's dist/.
import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const JOB = "command: 'true'\n";
const USER = 'bench';
const PASSWORD = 'bench-password-not-secret';

function parseArgs(argv) {
  const opts = {
    builds: [],
    drops: 10_000,
    rounds: 3,
    seconds: 5,
    connections: 16,
    http: true,
    json: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    if (a === '--build') {
      const v = next();
      const eq = v.indexOf('=');
      opts.builds.push(
        eq < 0
          ? { label: path.basename(v), dir: path.resolve(v) }
          : { label: v.slice(0, eq), dir: path.resolve(v.slice(eq + 1)) },
      );
    } else if (a === '--drops') opts.drops = Number(next());
    else if (a === '--rounds') opts.rounds = Number(next());
    else if (a === '--seconds') opts.seconds = Number(next());
    else if (a === '--connections') opts.connections = Number(next());
    else if (a === '--no-http') opts.http = false;
    else if (a === '--no-drops') opts.drops = 0;
    else if (a === '--json') opts.json = next();
    else throw new Error(`unknown argument ${a}`);
  }
  if (opts.builds.length === 0) opts.builds.push({ label: 'repo', dir: REPO });
  for (const b of opts.builds) {
    // batchd.cjs sizes libuv's thread pool before the daemon loads; builds older than it have main.js only.
    const entry = path.join(b.dir, 'dist', 'daemon', 'batchd.cjs');
    b.main = existsSync(entry) ? entry : path.join(b.dir, 'dist', 'daemon', 'main.js');
    if (!existsSync(b.main)) throw new Error(`${b.main} is missing`);
  }
  return opts;
}

const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');

/** Start a daemon of a build; resolves once it logged `batchd ready`. */
async function startDaemon(build, etc, spool) {
  const child = spawn(process.execPath, [build.main, '--config', etc, '--spool', spool], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (log += d.length + log.length < 200_000 ? d : ''));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const until = Date.now() + 60_000;
  while (!log.includes('batchd ready')) {
    if (child.exitCode !== null) throw new Error(`daemon exited: ${log.slice(-500)}`);
    if (Date.now() > until) throw new Error(`daemon not ready: ${log.slice(-500)}`);
    await sleep(20);
  }
  return {
    log: () => log,
    cpuMs: () => cpuMs(child.pid),
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function writeEtc(dir, settings) {
  const etc = path.join(dir, 'etc');
  const spool = path.join(dir, 'spool');
  mkdirSync(etc, { recursive: true });
  mkdirSync(path.join(spool, 'bench'), { recursive: true });
  writeFileSync(path.join(spool, 'bench', 'queue.yaml'), 'enabled: false\n');
  writeFileSync(
    path.join(etc, 'batchd.yaml'),
    JSON.stringify({
      spool,
      default_queue: 'bench',
      dispatcher: { workers: 2 },
      logging: { level: 'info', format: 'json', target: 'stderr' },
      ...settings,
    }) + '\n',
  );
  return { etc, spool };
}

/** Subfolders from the link count: O(1), so polling does not load the daemon being measured. */
function subfolders(dir) {
  try {
    const st = statSync(dir);
    return st.nlink >= 2 ? st.nlink - 2 : readdirSync(dir).length;
  } catch {
    return 0;
  }
}

/** N drops renamed into incoming/ in one burst; drops accepted per second until all are in queued/. */
async function dropBurst(build, dir, n, durable) {
  const { etc, spool } = writeEtc(dir, { manager: { enabled: false }, storage: { fsync: durable } });
  const ready = path.join(dir, 'ready');
  mkdirSync(ready);
  for (let i = 0; i < n; i++) writeFileSync(path.join(ready, `j${i}.yaml`), JOB);
  const daemon = await startDaemon(build, etc, spool);
  try {
    const incoming = path.join(spool, 'bench', 'incoming');
    const queued = path.join(spool, 'bench', 'queued');
    const cpu0 = daemon.cpuMs();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) renameSync(path.join(ready, `j${i}.yaml`), path.join(incoming, `j${i}.yaml`));
    const until = Date.now() + 300_000;
    while (subfolders(queued) < n) {
      if (Date.now() > until) throw new Error(`only ${subfolders(queued)} of ${n} accepted`);
      await sleep(5);
    }
    const ms = performance.now() - t0;
    const left = readdirSync(incoming).filter((f) => !f.startsWith('.')).length;
    const rejected = readdirSync(path.join(spool, 'bench', 'rejected')).length;
    if (left > 0 || rejected > 0) throw new Error(`${left} drops left in incoming/, ${rejected} rejected`);
    // The daemon's CPU time per drop: what its own code costs, less hostage to the machine's load.
    return { rate: n / (ms / 1000), cpuUsPerDrop: ((daemon.cpuMs() - cpu0) * 1000) / n };
  } finally {
    await daemon.stop();
  }
}

/** Durable submissions over HTTP (bearer token), measured by wrk; every 201 is checked against queued/. */
async function httpSubmit(build, dir, { seconds, connections }, durable) {
  const urlFile = path.join(dir, 'url');
  const { etc, spool } = writeEtc(dir, {
    manager: { enabled: true, host: '127.0.0.1', port: 0, auth: { basic: true, token: true } },
    storage: { fsync: durable },
    logging: { level: 'warn', format: 'json', target: 'stderr' },
  });
  const { UserStore } = await import(
    pathToFileURL(path.join(build.dir, 'dist', 'daemon', 'auth', 'store.js')).href
  );
  await UserStore.forConfigDir(etc).addUser(USER, PASSWORD, { superuser: true });
  const child = spawn(process.execPath, [build.main, '--config', etc, '--api-url-file', urlFile], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const until = Date.now() + 60_000;
    while (!existsSync(urlFile) || readFileSync(urlFile, 'utf8').trim() === '') {
      if (child.exitCode !== null || Date.now() > until) throw new Error('the daemon did not start its API');
      await sleep(50);
    }
    const base = readFileSync(urlFile, 'utf8').trim();
    const basic = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
    const res = await fetch(`${base}/token`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/json' },
      body: '{"ttl": "1h"}',
    });
    const token = (await res.json()).token;
    const script = path.join(dir, 'post.lua');
    writeFileSync(
      script,
      `wrk.method = "POST"\nwrk.body = '{"command": "true"}'\nwrk.headers["Content-Type"] = "application/json"\nwrk.headers["Authorization"] = "Bearer ${token}"\n`,
    );
    const queued = path.join(spool, 'bench', 'queued');
    const before = subfolders(queued);
    const out = spawnSync(
      'wrk',
      ['-t2', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script, `${base}/queue/bench`],
      { encoding: 'utf8', timeout: (seconds + 60) * 1000 },
    );
    const text = out.stdout ?? '';
    const perSecond = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1]);
    if (!Number.isFinite(perSecond)) throw new Error(`wrk printed no rate: ${text}${out.stderr ?? ''}`);
    const requests = Number(/(\d+) requests in/.exec(text)?.[1] ?? 0);
    const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
    const folders = subfolders(queued) - before;
    // wrk stops counting with requests in flight: up to one more folder per connection.
    if (folders < requests - non2xx)
      throw new Error(`${requests - non2xx} answered 201 but ${folders} job folders`);
    return {
      perSecond,
      non2xx,
      p50ms: toMs(/\s50%\s+([\d.]+\w+)/.exec(text)?.[1]),
      p99ms: toMs(/\s99%\s+([\d.]+\w+)/.exec(text)?.[1]),
    };
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
  }
}

function toMs(value) {
  const m = /^([\d.]+)(us|ms|s)$/.exec(value ?? '');
  if (m === null) return Number.NaN;
  return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
}

/** The disk now: sequential write + fsync + rename + folder fsync, per second (no daemon). */
function fsyncFloor(dir, n = 200) {
  mkdirSync(dir);
  const dirFd = openSync(dir, 'r');
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const tmp = path.join(dir, `.j${i}.tmp`);
    const fd = openSync(tmp, 'w');
    writeSync(fd, JOB);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path.join(dir, `j${i}.yaml`));
    fsyncSync(dirFd);
  }
  closeSync(dirFd);
  return n / ((performance.now() - t0) / 1000);
}

/** utime + stime of a process, in ms (Linux). */
function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // USER_HZ is 100 on Linux
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = (s.length - 1) / 2;
  return (s[Math.floor(m)] + s[Math.ceil(m)]) / 2;
};

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.http && spawnSync('wrk', ['--version']).error !== undefined)
    throw new Error('wrk is not installed');
  // Every measurement's spool stays until the end: on ext4 without a journal, deleting a folder of
  // job folders slows every file creation near it for 30 s, and the next measurement would pay it.
  const root = mkdtempSync(path.join(os.tmpdir(), 'batchd-bench-accept-'));
  const results = { floor: [], load: [] };
  const add = (label, key, value) => ((results[label] ??= {})[key] ??= []).push(value);
  console.log(
    `${os.cpus().length} cores; load average at start ${load()}; ${opts.drops} drops, ${opts.rounds} rounds`,
  );
  try {
    for (let round = 1; round <= opts.rounds; round++) {
      const floor = fsyncFloor(path.join(root, `floor-${round}`));
      results.floor.push(floor);
      console.log(`round ${round}: fsync floor ${floor.toFixed(0)}/s (sequential), load ${load()}`);
      // Builds alternate order each round, so neither always goes first.
      const builds = round % 2 === 1 ? opts.builds : [...opts.builds].reverse();
      for (const build of builds) {
        for (const durable of opts.drops > 0 ? [false, true] : []) {
          const dir = mkdtempSync(path.join(root, `${build.label}-`));
          try {
            const { rate, cpuUsPerDrop } = await dropBurst(build, dir, opts.drops, durable);
            add(build.label, durable ? 'dropsDurable' : 'drops', rate);
            add(build.label, durable ? 'cpuDurable' : 'cpu', cpuUsPerDrop);
            console.log(
              `  ${build.label.padEnd(10)} drops ${durable ? 'durable    ' : 'non-durable'} ${rate.toFixed(0).padStart(6)}/s  daemon CPU ${cpuUsPerDrop.toFixed(0).padStart(4)} µs/drop  (load ${load()})`,
            );
          } catch (error) {
            console.log(
              `  ${build.label} drops ${durable ? 'durable' : 'non-durable'}: FAILED ${error.message}`,
            );
          }
        }
        for (const durable of opts.http ? [false, true] : []) {
          const key = durable ? 'httpDurable' : 'http';
          const dir = mkdtempSync(path.join(root, `${build.label}-http-`));
          try {
            const r = await httpSubmit(build, dir, opts, durable);
            add(build.label, key, r.perSecond);
            add(build.label, `${key}P50`, r.p50ms);
            add(build.label, `${key}P99`, r.p99ms);
            console.log(
              `  ${build.label.padEnd(10)} HTTP ${durable ? 'durable    ' : 'non-durable'} ${r.perSecond.toFixed(0).padStart(6)}/s  p50 ${r.p50ms.toFixed(2)} ms  p99 ${r.p99ms.toFixed(2)} ms  non-2xx ${r.non2xx}  (load ${load()})`,
            );
          } catch (error) {
            console.log(
              `  ${build.label} HTTP ${durable ? 'durable' : 'non-durable'}: FAILED ${error.message}`,
            );
          }
        }
      }
      results.load.push(os.loadavg()[0]);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  console.log(
    `\nmedians over ${opts.rounds} rounds (fsync floor ${median(results.floor).toFixed(0)}/s; 1-min load ${results.load.map((l) => l.toFixed(1)).join(', ')}):`,
  );
  for (const build of opts.builds) {
    const r = results[build.label] ?? {};
    const f = (k, d = 0) => median(r[k] ?? []).toFixed(d);
    const lines = [];
    if (opts.drops > 0)
      lines.push(
        `drops ${f('drops').padStart(6)}/s (${f('cpu')} µs CPU)   durable drops ${f('dropsDurable').padStart(6)}/s (${f('cpuDurable')} µs CPU)`,
      );
    if (opts.http)
      lines.push(
        `HTTP ${f('http').padStart(6)}/s p50 ${f('httpP50', 2)} ms p99 ${f('httpP99', 2)} ms` +
          `   HTTP durable ${f('httpDurable').padStart(6)}/s p50 ${f('httpDurableP50', 2)} ms p99 ${f('httpDurableP99', 2)} ms`,
      );
    console.log(lines.map((l, i) => `  ${(i === 0 ? build.label : '').padEnd(10)} ${l}`).join('\n'));
  }
  if (opts.json !== undefined) writeFileSync(opts.json, JSON.stringify({ opts, results }, null, 1));
}

await main();
