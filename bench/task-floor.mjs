#!/usr/bin/env node
// The least any daemon on this spool could take for the task suite (N × `true`, two at a time),
// beside `xargs -P2` running the same, in one run (rounds interleave the three):
//   - xargs:  `seq N | xargs -P2 -n1 /bin/true`;
//   - spool:  the spool's own file work per job, alone and one job after another: the job's folder
//             made in .staging/ with its job.yaml and state.yaml and renamed into queued/; state.yaml
//             written again (temp file + rename) and the folder renamed into running/; the same into
//             done/ (with --fsync, every file and folder fsynced as storage.fsync does);
//   - floor:  one Node process doing that work around each job, which batchd's job launcher
//             (launcher.pl of the build, over its pipe) starts, two at a time: no lock, no log line,
//             no cgroup, no index, no events. What a daemon with this spool and this launcher cannot
//             do without.
//
//   npm run build && node bench/task-floor.mjs [--jobs 10000] [--rounds 1] [--fsync] [--build DIR]
//       [--cgroup DIR] [--lazy] [--path] [--launcher native|perl] [--keep]
import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '1' },
    fsync: { type: 'boolean', default: false },
    build: { type: 'string', default: REPO },
    // What batchd's runs add, one at a time, to see what each costs: a cgroup v1 freezer group
    // per job (made, joined, removed), `lazy` output pipes, the program found on PATH.
    cgroup: { type: 'string' },
    lazy: { type: 'boolean', default: false },
    path: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    // Which of the build's launchers runs the jobs: `native` (launcher.c, vfork) or `perl`.
    launcher: { type: 'string', default: 'perl' },
  },
});
const N = Number(values.jobs);
const ROUNDS = Number(values.rounds);
const DURABLE = values.fsync;
if (!['native', 'perl'].includes(values.launcher)) throw new Error('--launcher: native or perl');
const LAUNCHER = path.join(
  values.build,
  'dist',
  'daemon',
  'executors',
  values.launcher === 'native' ? 'batchd-launcher' : 'launcher.pl',
);
// The launcher's wire format: daemon/launcher/wire.ts, or in builds before it moved there, executors/.
const WIRE = [
  path.join(values.build, 'dist', 'daemon', 'launcher', 'wire.js'),
  path.join(values.build, 'dist', 'daemon', 'executors', 'launcher-wire.js'),
].find((file) => existsSync(file));
if (WIRE === undefined) throw new Error(`${values.build}: no build of the launcher's wire format in dist/`);
const { encodeRequest, EventReader } = await import(pathToFileURL(WIRE).href);

const work = mkdtempSync(path.join(os.tmpdir(), 'batchd-task-floor-'));

function fsyncPath(p) {
  const fd = openSync(p, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function writeFile(file, text) {
  if (!DURABLE) return writeFileSync(file, text);
  const fd = openSync(file, 'w');
  try {
    writeFileSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A spool of one queue, and the per-job file work of its protocol. */
function spoolAt(root) {
  const dirs = {};
  for (const name of ['staging', 'queued', 'running', 'done']) {
    dirs[name] = path.join(root, name);
    mkdirSync(dirs[name], { recursive: true });
  }
  const state = (id, to) =>
    JSON.stringify(
      { id, queue: 'default', state: to, type: 'bench-true', attempts: 1, history: [] },
      null,
      1,
    );
  const rewrite = (dir, id, to) => {
    const tmp = path.join(dir, '.state.yaml.tmp');
    writeFile(tmp, state(id, to));
    renameSync(tmp, path.join(dir, 'state.yaml'));
    if (DURABLE) fsyncPath(dir);
  };
  const move = (id, from, to) => {
    renameSync(path.join(dirs[from], id), path.join(dirs[to], id));
    if (DURABLE) {
      fsyncPath(dirs[from]);
      fsyncPath(dirs[to]);
    }
  };
  return {
    dir: (state, id) => path.join(dirs[state], id),
    make(id) {
      const dir = path.join(dirs.staging, id);
      mkdirSync(dir);
      writeFile(path.join(dir, 'job.yaml'), JSON.stringify({ id, type: 'bench-true', params: { n: 1 } }));
      writeFile(path.join(dir, 'state.yaml'), state(id, 'queued'));
      if (DURABLE) fsyncPath(dir);
      move(id, 'staging', 'queued');
    },
    claim(id) {
      rewrite(path.join(dirs.queued, id), id, 'running');
      move(id, 'queued', 'running');
    },
    finish(id) {
      rewrite(path.join(dirs.running, id), id, 'done');
      move(id, 'running', 'done');
    },
  };
}

function xargs() {
  const t0 = performance.now();
  const r = spawnSync('bash', ['-c', `seq ${N} | xargs -P2 -n1 /bin/true`], { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`xargs: exit ${r.status}`);
  return performance.now() - t0;
}

function spoolAlone(root) {
  const spool = spoolAt(root);
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const id = `job-${i}`;
    spool.make(id);
    spool.claim(id);
    spool.finish(id);
  }
  return performance.now() - t0;
}

async function floor(root) {
  const spool = spoolAt(root);
  const launcher =
    values.launcher === 'native'
      ? spawn(LAUNCHER, [], { stdio: ['pipe', 'pipe', 'inherit'] })
      : spawn('perl', [LAUNCHER], { stdio: ['pipe', 'pipe', 'inherit'] });
  const reader = new EventReader();
  const ids = new Map();
  const groups = new Map();
  let next = 0;
  let done = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await new Promise((resolve, reject) => {
    const start = () => {
      const key = next++;
      const id = `job-${key}`;
      spool.make(id);
      spool.claim(id);
      ids.set(key, id);
      const dir = spool.dir('running', id);
      let join;
      if (values.cgroup !== undefined) {
        const group = path.join(values.cgroup, `floor-${process.pid}-${key}`);
        mkdirSync(group);
        groups.set(key, group);
        join = [path.join(group, 'cgroup.procs')];
      }
      launcher.stdin.write(
        encodeRequest({
          op: 'spawn',
          key,
          file: values.path ? 'true' : '/bin/true',
          args: [],
          cwd: dir,
          env: { BATCHD_JOB_ID: id },
          stdout: values.lazy ? path.join(dir, 'stdout.log') : '/dev/null',
          stderr: values.lazy ? path.join(dir, 'stderr.log') : '/dev/null',
          options: values.lazy ? ['lazy'] : undefined,
          join,
        }),
      );
    };
    launcher.on('error', reject);
    launcher.stdout.on('data', (chunk) => {
      for (const event of reader.push(chunk)) {
        if (event.op !== 'exit') continue;
        if (event.code !== 0) return reject(new Error(`job ${event.key}: ${event.error ?? event.code}`));
        if (groups.has(event.key)) rmdirSync(groups.get(event.key));
        groups.delete(event.key);
        spool.finish(ids.get(event.key));
        ids.delete(event.key);
        if (++done === N) return resolve();
        if (next < N) start();
      }
    });
    start();
    start();
  });
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  floorCpuMs.push((cpu.user + cpu.system) / 1000 / N);
  // How often the launcher went to sleep a job: each wake-up is a trip through the scheduler.
  const status = readFileSync(`/proc/${launcher.pid}/status`, 'utf8');
  launcherWakes.push(Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1]) / N);
  launcher.stdin.end();
  return ms;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const s = (ms) => `${(ms / 1000).toFixed(2)} s`;
const runs = { xargs: [], spool: [], floor: [] };
const floorCpuMs = [];
const launcherWakes = [];
try {
  for (let round = 1; round <= ROUNDS; round++) {
    runs.xargs.push(xargs());
    runs.spool.push(spoolAlone(path.join(work, `spool-${round}`)));
    runs.floor.push(await floor(path.join(work, `floor-${round}`)));
    console.error(
      `round ${round}: xargs ${s(runs.xargs.at(-1))}, spool work alone ${s(runs.spool.at(-1))}, floor ${s(runs.floor.at(-1))}`,
    );
  }
} finally {
  if (values.keep) console.error(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
const [x, sp, fl] = [median(runs.xargs), median(runs.spool), median(runs.floor)];
console.log(
  `${N} × true, ${ROUNDS} round(s), fsync ${DURABLE ? 'on' : 'off'}, load ${os.loadavg()[0].toFixed(1)}: ` +
    `xargs -P2 ${s(x)}; the spool's file work alone ${s(sp)} (${((sp / N) * 1000).toFixed(0)} µs a job); ` +
    `floor (that work around each job, run by the ${values.launcher} launcher, two at a time) ${s(fl)} = ${(fl / x).toFixed(2)} × xargs; ` +
    `the floor process's CPU ${median(floorCpuMs).toFixed(2)} ms a job, ` +
    `the launcher's sleeps ${median(launcherWakes).toFixed(2)} a job` +
    (values.cgroup === undefined && !values.lazy && !values.path
      ? ''
      : ` (with ${[values.cgroup && 'cgroups', values.lazy && 'lazy pipes', values.path && 'PATH lookup'].filter(Boolean).join(', ')})`),
);
