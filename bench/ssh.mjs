#!/usr/bin/env node
// SSH throughput: N trivial jobs (`true`) on a loopback SSH host beside the same jobs run locally,
// in one run, the two taking turns each round. Starts its own sshd (127.0.0.1 only) and its own
// daemon from dist/ (run `npm run build` first); both are stopped by PID at the end.
//
//   node bench/ssh.mjs [--jobs 1000] [--rounds 3] [--workers 8] [--sessions 8] [--keep] [--cpu-prof DIR]
import { execFileSync, spawn } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { DAEMON_MAIN } from './lib/batchd.mjs';
import { describeProbe, probeFileSystem } from './lib/fs-probe.mjs';

const SSHD = '/usr/sbin/sshd';

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at < 0 ? fallback : Number(process.argv[at + 1]);
}
const JOBS = option('jobs', 1000);
const ROUNDS = option('rounds', 3);
const WORKERS = option('workers', 8);
const SESSIONS = option('sessions', 8);
const KEEP = process.argv.includes('--keep');
const PROFILE_DIR = process.argv.includes('--cpu-prof')
  ? process.argv[process.argv.indexOf('--cpu-prof') + 1]
  : undefined;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (line) => process.stderr.write(`${line}\n`);

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitUntil(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A private sshd as TESTING.md describes it (SetEnv SHLVL=1 against root's slow .bashrc). */
async function startSshd(dir) {
  mkdirSync('/run/sshd', { recursive: true });
  const key = (name) => {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, name)]);
    return path.join(dir, name);
  };
  const hostKey = key('host_key');
  const clientKey = key('client_key');
  writeFileSync(path.join(dir, 'authorized_keys'), readFileSync(`${clientKey}.pub`));
  const port = await freePort();
  const config = path.join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      'UsePAM no',
      'StrictModes no',
      'PasswordAuthentication no',
      'PermitRootLogin prohibit-password',
      'Subsystem sftp internal-sftp',
      'MaxSessions 50',
      'MaxStartups 200:30:400',
      'SetEnv SHLVL=1',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  const [type, blob] = readFileSync(`${hostKey}.pub`, 'utf8').split(' ');
  writeFileSync(path.join(dir, 'known_hosts'), `[127.0.0.1]:${port} ${type} ${blob}\n`);
  const child = spawn(SSHD, ['-D', '-f', config, '-E', path.join(dir, 'sshd.log')], { stdio: 'ignore' });
  await sleep(300);
  if (child.exitCode !== null)
    throw new Error(`sshd exited: ${readFileSync(path.join(dir, 'sshd.log'), 'utf8')}`);
  return { child, port, clientKey, knownHosts: path.join(dir, 'known_hosts') };
}

async function startDaemon(dir, sshd) {
  const etc = path.join(dir, 'etc');
  const spool = path.join(dir, 'spool');
  mkdirSync(path.join(etc, 'jobtypes'), { recursive: true });
  mkdirSync(path.join(etc, 'hosts'), { recursive: true });
  const settings = {
    spool,
    manager: { enabled: false },
    logging: { level: 'info', format: 'json', target: 'stderr' },
    dispatcher: { workers: WORKERS },
  };
  writeFileSync(path.join(etc, 'batchd.yaml'), JSON.stringify(settings, null, 1));
  writeFileSync(
    path.join(etc, 'jobtypes', 'bench-true.yaml'),
    'template: "true"\nparams:\n  - name: n\n    type: Integer\n',
  );
  const host = {
    host_name: '127.0.0.1',
    port: sshd.port,
    user_name: os.userInfo().username,
    private_key: sshd.clientKey,
    known_hosts: sshd.knownHosts,
    work_directory: path.join(dir, 'remote'),
    sessions_per_connection: SESSIONS,
  };
  writeFileSync(path.join(etc, 'hosts', 'loop.yaml'), JSON.stringify(host, null, 1));
  for (const [queue, settingsText] of [
    ['local', 'schedule_name: anytime\n'],
    ['remote', 'host_name: loop\n'],
  ]) {
    mkdirSync(path.join(spool, queue, 'incoming'), { recursive: true });
    writeFileSync(path.join(spool, queue, 'queue.yaml'), settingsText);
  }
  const profile =
    PROFILE_DIR === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${path.resolve(PROFILE_DIR)}`];
  const child = spawn(process.execPath, [...profile, DAEMON_MAIN, '--config', etc, '--spool', spool], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let output = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (output = (output + d).slice(-20_000)));
  await waitUntil(() => output.includes('batchd ready') || child.exitCode !== null, 60_000, 'batchd ready');
  if (child.exitCode !== null) throw new Error(`batchd exited: ${output}`);
  return { child, spool, output: () => output };
}

/** Jobs in a finished state folder (sharded by date): subfolders counted from link counts. */
function finished(spool, queue, state) {
  const dir = path.join(spool, queue, state);
  let total = 0;
  let shards;
  try {
    shards = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const shard of shards) total += statSync(path.join(dir, shard)).nlink - 2;
  return total;
}

/** Every process below `pid` (and itself), from /proc. */
function tree(pid) {
  const children = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone
    }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]) ?? []));
  return out;
}

/**
 * CPU seconds used by a process tree, reaped children included: the machine is shared, so the
 * CPU each side spends per job is steadier than wall time.
 */
function cpuSeconds(pid) {
  let ticks = 0;
  for (const p of tree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime, stime, cutime, cstime: fields 14-17 of stat, 12-15 after the command name.
      ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    } catch {
      // gone
    }
  }
  return ticks / 100;
}

/**
 * CPU ticks of a process tree by command name: each process's own time, and the time of children
 * it reaped (short-lived jobs, `rm`) under "<name> (reaped)".
 */
function cpuByCommand(pid) {
  const byName = new Map();
  const add = (name, ticks) => byName.set(name, (byName.get(name) ?? 0) + ticks);
  for (const p of tree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      add(name, Number(f[11]) + Number(f[12]));
      add(`${name} (reaped)`, Number(f[13]) + Number(f[14]));
    } catch {
      // gone
    }
  }
  return byName;
}

/** One task file that expands to JOBS jobs; the time until all of them are done. */
async function round(daemon, queue, n) {
  const before = finished(daemon.spool, queue, 'done');
  const failedBefore = finished(daemon.spool, queue, 'failed');
  const tmp = path.join(daemon.spool, queue, 'incoming', `.task-${n}.tmp`);
  writeFileSync(tmp, `type: bench-true\nparams:\n  n: {range: "1..${JOBS}"}\n`);
  const t0 = process.hrtime.bigint();
  renameSync(tmp, path.join(daemon.spool, queue, 'incoming', `task-${n}.yaml`));
  await waitUntil(
    () =>
      finished(daemon.spool, queue, 'done') +
        finished(daemon.spool, queue, 'failed') -
        before -
        failedBefore >=
      JOBS,
    600_000,
    `${JOBS} ${queue} jobs`,
  );
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const failed = finished(daemon.spool, queue, 'failed') - failedBefore;
  if (failed > 0)
    throw new Error(`${failed} ${queue} jobs failed; see ${path.join(daemon.spool, queue, 'failed')}`);
  return ms;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(10_000)]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

async function main() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'batchd-bench-ssh-'));
  let sshd;
  let daemon;
  try {
    sshd = await startSshd(dir);
    daemon = await startDaemon(dir, sshd);
    // Warm-up: the first connection, bring-up and JIT out of the measured rounds.
    await round(daemon, 'remote', 0).catch((e) => {
      throw new Error(`${e.message}\n${daemon.output()}`);
    });
    const probeAtStart = probeFileSystem(dir);
    const times = { local: [], remote: [] };
    const cpu = { local: { daemon: [], sshd: [] }, remote: { daemon: [], sshd: [] } };
    for (let r = 1; r <= ROUNDS; r++) {
      const order = r % 2 === 1 ? ['local', 'remote'] : ['remote', 'local'];
      for (const queue of order) {
        const before = { daemon: cpuSeconds(daemon.child.pid), sshd: cpuSeconds(sshd.child.pid) };
        const namesBefore = cpuByCommand(sshd.child.pid);
        const ms = await round(daemon, queue, r);
        if (queue === 'remote') {
          // Processes that ended during the round are gone from the tree; what they used shows
          // under their parent's "(reaped)".
          const parts = [...cpuByCommand(sshd.child.pid)]
            .map(([name, ticks]) => [name, ((ticks - (namesBefore.get(name) ?? 0)) * 10) / JOBS])
            .filter(([, ms]) => ms > 0.05)
            .map(([name, ms]) => `${name} ${ms.toFixed(2)}`);
          log(`  host side CPU ms/job by process: ${parts.join(', ')}`);
        }
        times[queue].push(ms);
        cpu[queue].daemon.push(((cpuSeconds(daemon.child.pid) - before.daemon) * 1000) / JOBS);
        cpu[queue].sshd.push(((cpuSeconds(sshd.child.pid) - before.sshd) * 1000) / JOBS);
        log(
          `round ${r}/${ROUNDS}: ${queue} ${JOBS} jobs in ${(ms / 1000).toFixed(2)} s (${Math.round((JOBS * 1000) / ms)} jobs/s)`,
        );
      }
    }
    const probeAtEnd = probeFileSystem(dir);
    const local = median(times.local);
    const remote = median(times.remote);
    const rows = [
      ['', `median of ${ROUNDS}`, 'jobs/s', 'min..max s', 'daemon CPU ms/job', 'sshd side CPU ms/job'],
      [
        'local',
        `${(local / 1000).toFixed(2)} s`,
        Math.round((JOBS * 1000) / local),
        range(times.local),
        cpuMs(cpu.local.daemon),
        '–',
      ],
      [
        'ssh (loopback)',
        `${(remote / 1000).toFixed(2)} s`,
        Math.round((JOBS * 1000) / remote),
        range(times.remote),
        cpuMs(cpu.remote.daemon),
        cpuMs(cpu.remote.sshd),
      ],
    ];
    process.stdout.write(
      `\n${JOBS} × true, ${WORKERS} workers, one task file per round; ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)}\n`,
    );
    process.stdout.write(
      `File system per call in ${dir} (bench/lib/fs-probe.mjs): at start ${describeProbe(probeAtStart)}; at end ${describeProbe(probeAtEnd)}\n`,
    );
    for (const row of rows) process.stdout.write(`| ${row.map(String).join(' | ')} |\n`);
    const rate = (JOBS * 1000) / remote;
    process.stdout.write(
      `ssh / local time: ${(remote / local).toFixed(2)}×; target ≥ 300 jobs/s over SSH: ${rate >= 300 ? 'met' : 'NOT met'}\n`,
    );
    // What the disk alone asks of any spool of folders here, at this run's prices: every job gets
    // a folder and two files (job.yaml, state.yaml) and is moved three times (to queued/, running/,
    // done/). The daemon's other file work and all its CPU come on top.
    const mean = (key) => (probeAtStart[key] + probeAtEnd[key]) / 2;
    const perJobUs = mean('mkdir') + 2 * mean('createFile') + 3 * mean('renameFolder');
    process.stdout.write(
      `the spool's own file work at this run's prices (1 folder and 2 files made, 3 folder moves per job): ${((perJobUs * JOBS) / 1e6).toFixed(2)} s for ${JOBS} jobs, of the ${(JOBS / 300).toFixed(2)} s that 300 jobs/s allows\n`,
    );
  } finally {
    if (daemon !== undefined) await stop(daemon.child);
    if (sshd !== undefined) await stop(sshd.child);
    if (!KEEP) rmSync(dir, { recursive: true, force: true });
    else log(`kept ${dir}`);
  }
}

function cpuMs(values) {
  return median(values).toFixed(2);
}

function range(values) {
  return `${(Math.min(...values) / 1000).toFixed(2)}..${(Math.max(...values) / 1000).toFixed(2)}`;
}

main().catch((error) => {
  process.stderr.write(`bench/ssh: ${error.stack ?? error}\n`);
  process.exit(1);
});
