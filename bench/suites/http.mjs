// HTTP submission and status rates with wrk (reference/peers.md §7: `wrk -t2 -c16 -d10s`), with
// authentication on as TARGETS.md asks: a user with a scrypt-hashed password, and a bearer token
// issued by POST /token that every request carries. Submissions are durable (storage.fsync: true).
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { freePort, probeApi } from '../lib/api.mjs';
import { BatchdDaemon, REPO } from '../lib/batchd.mjs';
import { run } from '../lib/proc.mjs';
import { summarize } from '../lib/stats.mjs';

const USER = 'bench';
const PASSWORD = 'bench-password-not-secret';

export async function http(ctx) {
  const port = await freePort();
  const daemon = new BatchdDaemon({
    dir: path.join(ctx.root, 'http'),
    tag: `${ctx.tag}-http`,
    config: {
      manager: { enabled: true, host: '127.0.0.1', port, auth: { basic: true, token: true } },
      storage: { fsync: true },
    },
    queues: { default: 'enabled: false\n' },
  });
  const { UserStore } = await import(
    pathToFileURL(path.join(REPO, 'dist', 'daemon', 'auth', 'store.js')).href
  );
  await UserStore.forConfigDir(daemon.etc).addUser(USER, PASSWORD, { superuser: true });
  await daemon.start();
  try {
    const api = await probeApi(port, 3000);
    if (api.doc === undefined) return { unavailable: `the HTTP API is not built yet (${api.why})` };
    if (!existsSync('/usr/bin/wrk'))
      return { unavailable: 'wrk is not installed (bench/setup.sh installs it from apt)' };
    const paths = api.doc.paths ?? {};
    const submitPath = Object.keys(paths).find(
      (p) => /^\/queue\/\{[^}]+\}$/.test(p) && paths[p].post !== undefined,
    );
    const statusPath = Object.keys(paths).find(
      (p) => /^\/job\/\{[^}]+\}$/.test(p) && paths[p].get !== undefined,
    );
    if (submitPath === undefined || statusPath === undefined) {
      return { unavailable: 'the HTTP API has no POST /queue/{q} or GET /job/{id} yet' };
    }
    const base = `http://127.0.0.1:${port}`;
    const basic = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
    const issued = await fetch(`${base}/token`, {
      method: 'POST',
      headers: { Authorization: basic, 'Content-Type': 'application/json' },
      body: '{"ttl": "1h"}',
    });
    const token = (await issued.json().catch(() => ({}))).token;
    if (!issued.ok || typeof token !== 'string')
      return { error: `POST /token: HTTP ${issued.status}: no token to measure with` };
    const bearer = `Bearer ${token}`;
    const submitUrl = `${base}${submitPath.replace(/\{[^}]+\}/, 'default')}`;
    const first = await fetch(submitUrl, {
      method: 'POST',
      headers: { Authorization: bearer, 'Content-Type': 'application/json' },
      body: '{"command": "true"}',
    });
    const body = await first.json().catch(() => ({}));
    const id = body.jobs?.[0];
    if (!first.ok || id === undefined)
      return { error: `POST ${submitPath}: HTTP ${first.status} ${JSON.stringify(body).slice(0, 200)}` };
    const seconds = ctx.opts.quick ? 3 : 10;
    const postScript = path.join(ctx.root, 'http', 'post.lua');
    writeFileSync(
      postScript,
      `wrk.method = "POST"\nwrk.body = '{"command": "true"}'\nwrk.headers["Content-Type"] = "application/json"\nwrk.headers["Authorization"] = "${bearer}"\n`,
    );
    const statusUrl = `${base}${statusPath.replace(/\{[^}]+\}/, id)}`;
    // The read floors answer the job's own JSON (as the daemon sends it) and stat its state file.
    const bodyFile = path.join(ctx.root, 'http', 'job.json');
    writeFileSync(bodyFile, await (await fetch(statusUrl, { headers: { Authorization: bearer } })).text());
    const stateFile = path.join(daemon.spool, 'default', 'queued', '{id}', 'state.yaml');
    const floorKinds = [
      [['node'], 'floor: a bare Node `http` server, one small JSON answer'],
      [['hono'], "floor: one Hono route on @hono/node-server (the API's framework), same answer"],
      [
        ['read', token, stateFile, bodyFile],
        'floor: the least an authenticated read does, on Hono: hash the token and look it up, stat the job, answer its JSON from memory',
      ],
      [['read-node', token, stateFile, bodyFile], 'floor: the same least work on a bare Node `http` server'],
    ];
    // The submission floor makes its job folders in a spool of its own, one per round.
    const jobDir = path.join(daemon.spool, 'default', 'queued', id);
    const submitFloor = (kind, round) => [
      kind,
      token,
      jobDir,
      path.join(ctx.root, 'http', `${kind}-spool-${round}`),
    ];
    const submitKinds = [
      [
        'submit-node',
        "floor: the least a durable submission does, on a bare Node `http` server: check the token, make the job's folder (staged, renamed into queued/), one journal append and fdatasync per batch, answer",
      ],
      [
        'submit-deferred',
        "floor: the same work in the other order a journal allows: journal append and fdatasync, answer, then make the job's folder through the thread pool (at most 64 folders behind)",
      ],
    ];
    // Every measurement once per round, in turn, so that the daemon and its floors see the same
    // machine; the report takes each one's median.
    const perRound = {
      submissions: [],
      status: [],
      submitFloors: submitKinds.map(() => []),
      floors: floorKinds.map(() => []),
    };
    const readArgs = ['-H', `Authorization: ${bearer}`];
    for (let round = 0; round < ctx.opts.rounds; round++) {
      perRound.submissions.push(await wrk(submitUrl, seconds, ['-s', postScript]));
      for (const [i, [kind]] of submitKinds.entries())
        perRound.submitFloors[i].push(
          await floor(submitFloor(kind, round), seconds, '/queue/default', ['-s', postScript]),
        );
      perRound.status.push(await wrk(statusUrl, seconds, readArgs));
      for (const [i, [args]] of floorKinds.entries())
        perRound.floors[i].push(await floor(args, seconds, `/job/${id}`, readArgs));
    }
    const floors = [
      ...floorKinds.map(([args, label], i) => ({ kind: args[0], label, ...medianOf(perRound.floors[i]) })),
      ...submitKinds.map(([kind, label], i) => ({ kind, label, ...medianOf(perRound.submitFloors[i]) })),
    ];
    return {
      note: 'Durable acceptance (storage.fsync: true), authentication on (every request carries a bearer token), 2 wrk threads, 16 connections. The first two floors answer GET with a fixed body, no authentication, no spool: what this machine allows before batchd does anything. The next two do only what no authenticated status read can skip, on Hono and without it; the last two, only what no durable submission into this spool layout can skip, in the two orders a journal allows.',
      rounds: ctx.opts.rounds,
      submissions: { label: `POST ${submitPath} (a job as JSON)`, ...medianOf(perRound.submissions) },
      status: { label: `GET ${statusPath}`, ...medianOf(perRound.status) },
      floors,
    };
  } finally {
    await daemon.stop();
  }
}

/** wrk on `urlPath` of bench/lib/http-floor.mjs, started and stopped here (by its PID). */
async function floor(args, seconds, urlPath, wrkArgs) {
  const kind = args[0];
  const child = spawn(process.execPath, [path.join(REPO, 'bench', 'lib', 'http-floor.mjs'), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const port = await new Promise((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`http-floor ${kind} exited with ${code}`)));
      child.stdout.setEncoding('utf8').once('data', (line) => resolve(Number(line.trim())));
    });
    return await wrk(`http://127.0.0.1:${port}${urlPath}`, seconds, wrkArgs);
  } catch (error) {
    return { error: String(error) };
  } finally {
    child.removeAllListeners('exit');
    child.kill('SIGTERM');
  }
}

async function wrk(url, seconds, extra) {
  const out = await run('wrk', ['-t2', '-c16', `-d${seconds}s`, '--latency', ...extra, url], {
    timeoutMs: (seconds + 30) * 1000,
  });
  const text = out.stdout;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1]);
  const p50 = toMs(/\s50%\s+([\d.]+\w+)/.exec(text)?.[1]);
  const p99 = toMs(/\s99%\s+([\d.]+\w+)/.exec(text)?.[1]);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
  if (!Number.isFinite(rps))
    throw new Error(`wrk printed no rate: ${text.trim().split('\n').slice(-3).join(' | ')}`);
  return { perSecond: rps, p50ms: p50, p99ms: p99, non2xx };
}

/** The median of each figure over the rounds, the rate's spread, and every non-2xx answer. */
function medianOf(results) {
  const failed = results.find((r) => r.error !== undefined);
  if (failed !== undefined) return failed;
  const rates = summarize(results.map((r) => r.perSecond));
  return {
    perSecond: rates.median,
    min: rates.min,
    max: rates.max,
    p50ms: summarize(results.map((r) => r.p50ms)).median,
    p99ms: summarize(results.map((r) => r.p99ms)).median,
    non2xx: results.reduce((sum, r) => sum + r.non2xx, 0),
  };
}

function toMs(value) {
  if (value === undefined) return Number.NaN;
  const m = /^([\d.]+)(us|ms|s)$/.exec(value);
  if (m === null) return Number.NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
}
