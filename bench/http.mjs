#!/usr/bin/env node
// The HTTP API under load, authentication ON: durable submissions/s and status reads/s with p50/p99,
// measured by wrk against a daemon on loopback (targets in shared/docs/TARGETS.md: >= 2,000 durable
// submissions/s, >= 10,000 reads/s, p99 <= 10 ms).
//
//   npm run build && node bench/http.mjs [--seconds 10] [--connections 16] [--threads 2] [--fsync false] [--json FILE]
//
// Standalone; bench/run.mjs may import `measureHttp`. Needs wrk (bench/setup.sh installs it).
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
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { DAEMON_MAIN as MAIN } from './lib/batchd.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const USER = 'bench';
const PASSWORD = 'bench-password-not-secret';

/**
 * Start a daemon (basic + token auth, storage.fsync true, a disabled queue so submissions are only
 * accepted, not run), then run wrk: submissions and reads, each with Basic and with Bearer auth.
 */
export async function measureHttp({ seconds = 10, connections = 16, threads = 2, fsync = true } = {}) {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build first`);
  if (spawnSync('wrk', ['--version']).error !== undefined)
    throw new Error('wrk is not installed (bench/setup.sh installs it)');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'batchd-bench-http-'));
  const etc = path.join(dir, 'etc');
  const spool = path.join(dir, 'spool');
  mkdirSync(etc);
  mkdirSync(path.join(spool, 'bench'), { recursive: true });
  writeFileSync(path.join(spool, 'bench', 'queue.yaml'), 'enabled: false\n');
  writeFileSync(
    path.join(etc, 'batchd.yaml'),
    [
      `spool: ${spool}`,
      'default_queue: bench',
      'manager: { enabled: true, host: 127.0.0.1, port: 0, auth: { basic: true, token: true } }',
      `storage: { fsync: ${fsync} }`,
      'logging: { level: warn, format: json }',
      '',
    ].join('\n'),
  );
  const { UserStore } = await import(
    pathToFileURL(path.join(ROOT, 'dist', 'daemon', 'auth', 'store.js')).href
  );
  await UserStore.forConfigDir(etc).addUser(USER, PASSWORD, { superuser: true });

  const urlFile = path.join(dir, 'url');
  const daemon = spawn(process.execPath, [MAIN, '--config', etc, '--api-url-file', urlFile], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    const base = await waitFor(() => existsSync(urlFile) && readFileSync(urlFile, 'utf8').trim(), 20_000);
    const basic = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
    const tokenRes = await fetch(`${base}/token`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/json' },
      body: '{"ttl": "1h"}',
    });
    const bearer = `Bearer ${(await tokenRes.json()).token}`;
    const first = await fetch(`${base}/queue/bench`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/json' },
      body: '{"command": "true"}',
    });
    const id = (await first.json()).jobs[0];

    const results = {};
    const floor = fsyncFloor(dir, 300);
    const queuedBefore = countQueued(spool);
    for (const [name, auth] of [
      ['basic', basic],
      ['token', bearer],
    ]) {
      const script = path.join(dir, `post-${name}.lua`);
      writeFileSync(
        script,
        `wrk.method = "POST"\nwrk.body = '{"command": "true"}'\nwrk.headers["Content-Type"] = "application/json"\nwrk.headers["Authorization"] = "${auth}"\n`,
      );
      results[`submit-${name}`] = wrk(`${base}/queue/bench`, {
        seconds,
        connections,
        threads,
        extra: ['-s', script],
      });
    }
    const accepted = countQueued(spool) - queuedBefore;
    const answered =
      results['submit-basic'].requests +
      results['submit-token'].requests -
      results['submit-basic'].non2xx -
      results['submit-token'].non2xx;
    for (const [name, auth] of [
      ['basic', basic],
      ['token', bearer],
    ]) {
      results[`read-${name}`] = wrk(`${base}/job/${id}`, {
        seconds,
        connections,
        threads,
        extra: ['-H', `Authorization: ${auth}`],
      });
    }
    return {
      machine: `${os.cpus().length} cores, load average ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')} at the end`,
      settings: { seconds, connections, threads, fsync, auth: 'basic + token' },
      // The same durable writes without Node's HTTP stack or the daemon, measured in this run: the disk's ceiling now.
      floor: {
        label: 'bare mkdir + 2 flushed files + rename, 4 fsyncs (what acceptance does)',
        perSecond: floor,
      },
      results,
      // Every 2xx answer to a submission is a job folder in queued/ (wrk stops counting with requests
      // still in flight, so there may be up to one more folder per connection).
      check: {
        answered201: answered,
        jobFolders: accepted,
        ok: accepted >= answered && accepted <= answered + 2 * connections,
      },
    };
  } finally {
    daemon.kill('SIGTERM');
    await new Promise((resolve) => daemon.once('exit', resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}

function fsyncFloor(root, n) {
  const q = path.join(root, 'floor');
  mkdirSync(q);
  const fsyncPath = (p) => {
    const fd = openSync(p, 'r');
    fsyncSync(fd);
    closeSync(fd);
  };
  const started = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const staging = path.join(root, `.s${i}`);
    mkdirSync(staging);
    writeFileSync(path.join(staging, 'job.yaml'), '{"command": "true"}\n', { flush: true });
    writeFileSync(path.join(staging, 'state.yaml'), '{"state": "queued"}\n', { flush: true });
    fsyncPath(staging);
    renameSync(staging, path.join(q, String(i)));
    fsyncPath(q);
  }
  return n / (Number(process.hrtime.bigint() - started) / 1e9);
}

function wrk(url, { seconds, connections, threads, extra }) {
  const out = spawnSync(
    'wrk',
    [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency', ...extra, url],
    { encoding: 'utf8', timeout: (seconds + 30) * 1000 },
  );
  const text = out.stdout ?? '';
  const perSecond = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1]);
  if (!Number.isFinite(perSecond)) throw new Error(`wrk printed no rate: ${text}${out.stderr ?? ''}`);
  return {
    perSecond,
    requests: Number(/(\d+) requests in/.exec(text)?.[1] ?? 0),
    non2xx: Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0),
    p50ms: toMs(/\s50%\s+([\d.]+\w+)/.exec(text)?.[1]),
    p99ms: toMs(/\s99%\s+([\d.]+\w+)/.exec(text)?.[1]),
  };
}

function toMs(value) {
  const m = /^([\d.]+)(us|ms|s)$/.exec(value ?? '');
  if (m === null) return Number.NaN;
  return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
}

function countQueued(spool) {
  return readdirSync(path.join(spool, 'bench', 'queued')).length;
}

async function waitFor(check, ms) {
  const until = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > until) throw new Error('the daemon did not start its API in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const opt = (name, fallback) => {
    const i = args.indexOf(`--${name}`);
    return i < 0 ? fallback : args[i + 1];
  };
  const report = await measureHttp({
    seconds: Number(opt('seconds', 10)),
    connections: Number(opt('connections', 16)),
    threads: Number(opt('threads', 2)),
    fsync: opt('fsync', 'true') !== 'false',
  });
  const rows = Object.entries(report.results).map(
    ([name, r]) =>
      `${name.padEnd(14)} ${r.perSecond.toFixed(0).padStart(8)}/s   p50 ${r.p50ms.toFixed(2).padStart(6)} ms   p99 ${r.p99ms.toFixed(2).padStart(6)} ms   non-2xx ${r.non2xx}`,
  );
  console.log(
    `batchd HTTP API, auth on, ${report.settings.fsync ? 'durable (fsync)' : 'NOT durable (fsync off)'} acceptance; ${report.settings.threads} wrk threads, ${report.settings.connections} connections, ${report.settings.seconds} s each; ${report.machine}`,
  );
  console.log(
    `${'floor (fsync)'.padEnd(14)} ${report.floor.perSecond.toFixed(0).padStart(8)}/s   ${report.floor.label}`,
  );
  console.log(rows.join('\n'));
  console.log(
    `acknowledged submissions ${report.check.answered201}, job folders ${report.check.jobFolders}: ${report.check.ok ? 'all there' : 'MISMATCH'}`,
  );
  const json = opt('json', undefined);
  if (json !== undefined) writeFileSync(json, JSON.stringify(report, null, 2));
}
