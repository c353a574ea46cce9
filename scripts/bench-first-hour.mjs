#!/usr/bin/env node
/**
 * The first-hour measures of docs/performance.md, each beside its peer or floor in the same run:
 *   1. `batch --help` and `batch enqueue` against `node -e 0` (goal ≤ 1.3×);
 *   2. 1,000 × `true` by one bulk `batch enqueue --each`, until all done, against a `tsp` loop of the
 *      same 1,000 (goal ≤ 1.0×);
 *   3. a warm `npm start` to "ready" against `node dist/daemon/batchd.cjs` to "ready" (goal ≤ 1.5×).
 * The runs alternate within each round, and the report gives medians: the machine is shared and noisy.
 *
 *   npm run build && node scripts/bench-first-hour.mjs [--rounds 5] [--jobs 1000] [--only startup,bulk,start]
 *     [--cli FILE] [--before DIR]
 *
 * Start-up is reported as wall time and as CPU time (user + system of the process, steadier on a
 * busy machine), beside the floor of Node loading the zod that `batch` bundles and nothing else.
 * `--before DIR`: another build of batchd (e.g. `git worktree add /tmp/before HEAD`, linked
 * node_modules, `npm run build` there) whose `batch` runs in the same rounds, against the same daemon.
 *
 * Everything runs from a copy of the sources and the build, taken once at the start: in a tree being
 * edited, a source newer than the build would make `npm start` cold (it rebuilds), and a `tsc` run
 * leaves `batch`'s one-file build older than the modules (it then loads the modules). `batch` is the
 * package's `bin` entry (or --cli FILE, relative to the project), beside the modules' main.js.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';

const root = join(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    jobs: { type: 'string', default: '1000' },
    only: { type: 'string', default: 'startup,bulk,start' },
    cli: { type: 'string' },
    before: { type: 'string' },
  },
});
const parts = new Set(values.only.split(','));
const work = mkdtempSync(join(tmpdir(), 'batchd-first-hour-'));
const tree = frozenTree();
const binEntry = values.cli ?? JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).bin.batch;
const CLI = join(tree, binEntry);
const MODULES = join(tree, 'dist/daemon/cli/main.js');
const DAEMON = join(tree, 'dist/daemon/batchd.cjs');
const rounds = Number(values.rounds);
const jobs = Number(values.jobs);
const median = (xs) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const now = () => performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Clock ticks per second of /proc's times (USER_HZ). */
const TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/**
 * User + system CPU time of this process's finished children, in ms: the kernel sums each child's
 * exact time as it is reaped, so the difference around one run is that run's time (to one tick).
 */
function childrenCpuMs() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the name: state is field 3, so cutime and cstime (fields 16 and 17) are at 13 and 14.
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / TICKS;
}

/** One run's wall time in ms; `cpu`, when given, gets its CPU time. */
function timed(command, args, env = process.env, cpu = undefined) {
  const cpuBefore = childrenCpuMs();
  const start = now();
  const run = spawnSync(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const wall = now() - start;
  if (run.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${run.status}: ${run.stderr}`);
  cpu?.push(childrenCpuMs() - cpuBefore);
  return wall;
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

/**
 * The floors of a verb that checks answers with zod: Node loading the zod that `batch` bundles (the
 * same esbuild settings, zod without its locales, V8's code cache made by one run), nothing else;
 * and that, then one `POST /queue/default` of `{args: ["true"]}` with node:http, its id printed.
 */
async function zodFloors() {
  const { bundleSettings } = await import(join(tree, 'scripts/bundle-cli.mjs'));
  const esbuild = await import('esbuild');
  const entry = join(tree, 'zod-floor-entry.mjs');
  const bundle = join(tree, 'zod-floor.bundle.cjs');
  const cache = join(tree, 'zod-floor.bundle.cache');
  const loader = join(tree, 'zod-floor.cjs');
  writeFileSync(entry, "import { z } from 'zod';\nglobalThis.batchZod = z;\n");
  await esbuild.build(bundleSettings(entry, bundle));
  // batch.cjs's way of running its bundle, without the rest of batch.cjs.
  writeFileSync(
    loader,
    `const fs = require('node:fs');
const write = process.env.WRITE_CODE_CACHE === '1';
const script = new (require('node:vm').Script)(fs.readFileSync(${JSON.stringify(bundle)}, 'latin1'), {
  filename: ${JSON.stringify(bundle)},
  cachedData: write ? undefined : fs.readFileSync(${JSON.stringify(cache)}),
});
if (write) process.once('exit', () => fs.writeFileSync(${JSON.stringify(cache)}, script.createCachedData()));
script.runInThisContext()({}, require, { exports: {} }, ${JSON.stringify(bundle)}, __dirname);
`,
  );
  timed(process.execPath, [loader], { ...process.env, WRITE_CODE_CACHE: '1' });
  const post = join(tree, 'zod-floor-post.cjs');
  writeFileSync(
    post,
    `require(${JSON.stringify(loader)});
const body = JSON.stringify({ args: ['true'] });
require('node:http')
  .request(process.env.BATCH_MANAGER_URL + '/queue/default', { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
    let text = '';
    res.on('data', (chunk) => (text += chunk));
    res.on('end', () => process.stdout.write(JSON.parse(text).jobs[0] + '\\n'));
  })
  .end(body);
`,
  );
  return { loader, post };
}

/**
 * Medians (wall and CPU time) of `node -e 0`, of the zod floor, and of `--help` and
 * `enqueue -- true` by each of the `clis` given, all in turn in each round.
 */
async function startupRatios(url, clis) {
  const env = { ...process.env, BATCH_MANAGER_URL: url };
  const floors = await zodFloors();
  const sample = () => ({ wall: [], cpu: [] });
  const node = sample();
  const zod = sample();
  const zodPost = sample();
  const runs = clis.map(() => ({ help: sample(), enqueue: sample() }));
  const run = (into, args, runEnv = process.env) =>
    into.wall.push(timed(process.execPath, args, runEnv, into.cpu));
  for (let i = 0; i < rounds * 4; i++) {
    run(node, ['-e', '0']);
    run(zod, [floors.loader]);
    run(zodPost, [floors.post], env);
    clis.forEach((cli, c) => {
      run(runs[c].help, [cli, '--help']);
      run(runs[c].enqueue, [cli, 'enqueue', '--', 'true'], env);
    });
  }
  const medians = (s) => ({ wall: median(s.wall), cpu: median(s.cpu) });
  return {
    node: medians(node),
    zod: medians(zod),
    zodPost: medians(zodPost),
    clis: runs.map((r) => ({ help: medians(r.help), enqueue: medians(r.enqueue) })),
  };
}

/**
 * Wait as \`tsp -w\` does, for the last job, then until the task is resolved: one job's state is a
 * few \`stat\`s, while a task's status lists every state folder and reads its manifest, work that
 * polling it every 20 ms through a whole run would add to the daemon's (tsp is not polled meanwhile).
 */
/** A GET's JSON, tried again when the connection fails (a kept-alive socket the server closed). */
async function getJson(url) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await (await fetch(url)).json();
    } catch (error) {
      if (attempt === 5) throw error;
      await sleep(50);
    }
  }
}

async function waitUntilDone(url, queue, task, lastJob) {
  for (;;) {
    const job = await getJson(`${url}/job/${lastJob}`);
    if (job.status !== 'queued' && job.status !== 'running') break;
    await sleep(20);
  }
  for (;;) {
    const status = await getJson(`${url}/queue/${queue}/task/${task}`);
    if (status.resolved === true) return status;
    await sleep(20);
  }
}

async function bulkRound(url, round) {
  const list = join(work, `lines-${round}.txt`);
  writeFileSync(list, 'true\n'.repeat(jobs));
  const start = now();
  const ids = execFileSync(process.execPath, [CLI, 'enqueue', '--each', list, '--task', `bulk${round}`], {
    env: { ...process.env, BATCH_MANAGER_URL: url },
    stdio: ['ignore', 'pipe', 'ignore'],
  })
    .toString()
    .trim()
    .split('\n');
  const accepted = now() - start;
  await waitUntilDone(url, 'default', `bulk${round}`, ids[ids.length - 1]);
  return { ms: now() - start, accepted };
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

/**
 * A copy of what `npm start` reads (sources, build, scripts, package.json), its build marked current,
 * with the project's node_modules linked in.
 */
function frozenTree() {
  const tree = join(work, 'tree');
  for (const entry of ['daemon', 'plugins', 'dist', 'scripts', 'package.json', 'tsconfig.json', 'etc'])
    cpSync(join(root, entry), join(tree, entry), { recursive: true });
  symlinkSync(join(root, 'node_modules'), join(tree, 'node_modules'));
  // The build's last step, again: the copy's main.js may be newer than its bundle (see above).
  execFileSync(process.execPath, [join(tree, 'scripts/bundle-cli.mjs')], { stdio: 'inherit' });
  const built = new Date(Date.now() + 1000);
  utimesSync(join(tree, 'dist/daemon/executors/launcher.pl'), built, built);
  return tree;
}

async function npmStartRatio() {
  const npmStart = [];
  const bare = [];
  for (let round = 0; round < rounds; round++) {
    const a = makeConfig(`npm-${round}`);
    const viaNpm = await startDaemon('npm', ['start', '--silent', '--', '--config', join(a, 'etc')], tree);
    npmStart.push(viaNpm.readyMs);
    await stopDaemon(viaNpm);
    const b = makeConfig(`bare-${round}`);
    const direct = await startDaemon(
      process.execPath,
      [join(tree, 'dist/daemon/batchd.cjs'), '--config', join(b, 'etc')],
      tree,
    );
    bare.push(direct.readyMs);
    await stopDaemon(direct);
  }
  return { npmStart: median(npmStart), bare: median(bare) };
}

async function main() {
  const report = [];
  const notes = [];
  if (parts.has('startup') || parts.has('bulk')) {
    const dir = makeConfig('daemon');
    const daemon = await startDaemon(process.execPath, [DAEMON, '--config', join(dir, 'etc')], tree);
    try {
      if (parts.has('startup')) {
        const clis = CLI === MODULES ? [CLI] : [CLI, MODULES];
        const labels = clis.map((cli) => `\`node ${relative(tree, cli)}\``);
        if (values.before !== undefined) {
          clis.push(join(values.before, binEntry));
          labels.push(`\`node ${binEntry}\` of ${values.before} (before)`);
        }
        const startup = await startupRatios(daemon.url, clis);
        const { node } = startup;
        report.push([
          'floor: `node` loading the zod `batch` bundles (one-file build with code cache), nothing else',
          startup.zod,
          '`node -e 0`',
          node,
          1.3,
        ]);
        report.push([
          'floor: the same, then one `POST` with `node:http` (what any verb checking its answer with zod does)',
          startup.zodPost,
          '`node -e 0`',
          node,
          1.3,
        ]);
        clis.forEach((_, c) => {
          const { help, enqueue } = startup.clis[c];
          report.push([`\`batch --help\` (${labels[c]})`, help, '`node -e 0`', node, 1.3]);
          report.push([`\`batch enqueue -- true\` (${labels[c]})`, enqueue, '`node -e 0`', node, 1.3]);
        });
      }
      if (parts.has('bulk')) {
        const bulk = [];
        const bulkAccepted = [];
        const tsp = [];
        for (let round = 0; round < rounds; round++) {
          const { ms, accepted } = await bulkRound(daemon.url, round);
          bulk.push(ms);
          bulkAccepted.push(accepted);
          tsp.push(tspRound(round));
        }
        report.push([
          `${jobs} × true, one \`batch enqueue --each\`, until all done`,
          { wall: median(bulk) },
          `a \`tsp\` loop of the same, 2 slots`,
          { wall: median(tsp) },
          1.0,
        ]);
        notes.push(
          `bulk: \`batch enqueue --each\` itself (start, one request, the task accepted) took ${median(bulkAccepted).toFixed(0)} ms of it (median); rounds ${bulk.map((ms) => ms.toFixed(0)).join(', ')} ms against tsp ${tsp.map((ms) => ms.toFixed(0)).join(', ')} ms`,
        );
      }
    } finally {
      await stopDaemon(daemon);
    }
  }
  if (parts.has('start')) {
    const { npmStart, bare } = await npmStartRatio();
    report.push([
      'warm `npm start` to "batchd ready"',
      { wall: npmStart },
      '`node dist/daemon/batchd.cjs` to ready',
      { wall: bare },
      1.5,
    ]);
  }
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  process.stdout.write(`${new Date().toISOString()}, ${rounds} rounds, load ${load}\n\n`);
  // Wall time, and CPU time where it was measured (the start-up rows).
  process.stdout.write(
    '| figure | median (CPU) | beside it (same run) | median (CPU) | ratio | ratio in CPU time | goal |\n|---|---|---|---|---|---|---|\n',
  );
  const ms = (t) => `${t.wall.toFixed(0)} ms${t.cpu === undefined ? '' : ` (${t.cpu.toFixed(0)} ms)`}`;
  for (const [what, value, peer, peerValue, goal] of report) {
    const ratio = value.wall / peerValue.wall;
    const cpuRatio = value.cpu === undefined ? undefined : value.cpu / peerValue.cpu;
    const met = (cpuRatio ?? ratio) <= goal && ratio <= goal ? '(met)' : '(not met)';
    process.stdout.write(
      `| ${what} | ${ms(value)} | ${peer} | ${ms(peerValue)} | ${ratio.toFixed(2)} × | ${cpuRatio === undefined ? '—' : `${cpuRatio.toFixed(2)} ×`} | ≤ ${goal} × ${met} |\n`,
    );
  }
  if (notes.length > 0) process.stdout.write(`\n${notes.map((n) => `- ${n}`).join('\n')}\n`);
}

main()
  .catch((error) => {
    const cause = error instanceof Error && error.cause !== undefined ? ` (${String(error.cause)})` : '';
    process.stderr.write(
      `bench-first-hour: ${error instanceof Error ? error.message : String(error)}${cause}\n`,
    );
    process.exitCode = 1;
  })
  .finally(() => rmSync(work, { recursive: true, force: true }));
