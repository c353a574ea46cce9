import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';

import { waitFor } from './env.ts';

const BINARIES = ['/usr/sbin/slurmctld', '/usr/sbin/slurmd', '/usr/sbin/munged', '/usr/bin/sbatch'];
const MUNGE_KEY = '/etc/munge/munge.key';

export interface SlurmResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A private single-node Slurm for one test file (TESTING.md, "Slurm"). */
export interface SlurmCluster {
  dir: string;
  /** `SLURM_CONF` for the clients. */
  conf: string;
  /** The network namespace's file: `nsenter --net=<it>` reaches the controller. */
  netns: string;
  /** What a client command is put after to run in the namespace (`command_prefix`). */
  prefix: string[];
  node: string;
  partition: string;
  /** A Slurm client command in the namespace, wrapped in `timeout`; arguments, no shell. */
  run(command: string, args: readonly string[], input?: string): Promise<SlurmResult>;
  /** The controller's and the node daemon's logs, for a failing test's message. */
  logs(): string;
  stop(): Promise<void>;
}

/**
 * Starts munged, slurmctld and slurmd inside a network namespace of their own (created here and
 * held by a sleeping process), with everything under a temp folder, and waits until the node is
 * idle. The daemons listen on all interfaces: in the namespace those exist for nobody else.
 */
export async function startSlurm(
  /**
   * `gpus`: the node declares that many GPUs (a count without devices, for `--gpus` requests).
   * `proctrack`: pgid by default, which signals a job's processes at once as a site's
   * proctrack/cgroup does (cgroup itself would share /sys/fs/cgroup between test clusters);
   * linuxproc signals them one by one (the plugin advises against it).
   */
  options: { cpus?: number; gpus?: number; proctrack?: 'pgid' | 'linuxproc' } = {},
): Promise<SlurmCluster> {
  for (const bin of BINARIES)
    if (!existsSync(bin))
      throw new Error(`${bin} is not installed: apt-get install slurmctld slurmd slurm-client munge`);
  const dir = mkdtempSync('/tmp/batchd-slurm-');
  // munged (user munge) must pass through it to its own folder.
  chmodSync(dir, 0o755);
  const netns = path.join(dir, 'netns');
  const conf = path.join(dir, 'slurm.conf');
  const children: ChildProcess[] = [];
  const cluster: SlurmCluster = {
    dir,
    conf,
    netns,
    prefix: ['nsenter', `--net=${netns}`],
    node: 'batchd1',
    partition: 'batch',
    run: (command, args, input) =>
      collect(
        spawn('nsenter', [`--net=${netns}`, 'timeout', '-k', '2', '10', command, ...args], {
          env: { ...process.env, SLURM_CONF: conf },
          stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        }),
        input,
      ),
    logs: () =>
      ['slurmctld.log', 'slurmd.log'].map((f) => `--- ${f}\n${tail(path.join(dir, 'log', f))}`).join('\n'),
    stop: () => stopAll(cluster, children),
  };
  try {
    writeFileSync(netns, '');
    children.push(await holdNamespace(netns));
    addVeth(netns);
    children.push(await startMunge(dir));
    for (const sub of ['state', 'spool', 'log']) mkdirSync(path.join(dir, sub));
    writeFileSync(
      conf,
      slurmConf(dir, cluster.node, cluster.partition, options.cpus ?? 16, options.gpus, options.proctrack),
    );
    if (options.gpus !== undefined) fakeGpus(dir, cluster.node, options.gpus);
    const env = { ...process.env, SLURM_CONF: conf };
    for (const argv of [
      ['slurmctld', '-i', '-D'],
      ['slurmd', '-D', '-N', cluster.node],
    ]) {
      const child = spawn('nsenter', [`--net=${netns}`, ...argv], { env, stdio: 'ignore' });
      child.once('error', () => undefined);
      children.push(child);
    }
    await waitForIdle(cluster, children);
    return cluster;
  } catch (error) {
    const logs = cluster.logs();
    await cluster.stop();
    throw new Error(`${(error as Error).message}\n${logs}`, { cause: error });
  }
}

/**
 * GPUs for `--gpus` requests on a machine without any: slurmd counts a GPU per device file in
 * gres.conf (beside slurm.conf), so each is a character device like /dev/null (nothing uses it).
 */
function fakeGpus(dir: string, node: string, count: number): void {
  const devices = path.join(dir, 'gpus');
  mkdirSync(devices);
  for (let i = 0; i < count; i++) execFileSync('mknod', [path.join(devices, `gpu${i}`), 'c', '1', '3']);
  const files = `${path.join(devices, 'gpu')}[0-${count - 1}]`;
  writeFileSync(path.join(dir, 'gres.conf'), `NodeName=${node} Name=gpu File=${files}\n`);
}

function slurmConf(
  dir: string,
  node: string,
  partition: string,
  cpus: number,
  gpus?: number,
  proctrack = 'pgid',
): string {
  const host = hostname().split('.')[0] ?? 'localhost';
  return [
    'ClusterName=batchd',
    `SlurmctldHost=${host}(127.0.0.1)`,
    'SlurmUser=root',
    'AuthType=auth/munge',
    'CredType=cred/munge',
    `AuthInfo=socket=${path.join(dir, 'munge', 'munge.socket')}`,
    `ProctrackType=proctrack/${proctrack}`,
    'TaskPlugin=task/none',
    'SelectType=select/cons_tres',
    'SelectTypeParameters=CR_Core_Memory',
    'DefMemPerCPU=64',
    'JobAcctGatherType=jobacct_gather/none',
    'AccountingStorageType=accounting_storage/none',
    'MpiDefault=none',
    // HTC: schedule at every submission and job end, with no batching delay.
    'SchedulerType=sched/builtin',
    'SchedulerParameters=sched_min_interval=0,batch_sched_delay=0,default_queue_depth=1000,sched_interval=1',
    // Finished jobs stay visible in squeue for 2 s, then Slurm forgets them (no slurmdbd here).
    'MinJobAge=2',
    'KillWait=2',
    'MaxJobCount=100000',
    'ReturnToService=2',
    // The node's declared CPUs count even when the machine has fewer: more jobs run at once.
    'SlurmdParameters=config_overrides',
    `StateSaveLocation=${path.join(dir, 'state')}`,
    `SlurmdSpoolDir=${path.join(dir, 'spool')}`,
    `SlurmctldPidFile=${path.join(dir, 'slurmctld.pid')}`,
    `SlurmdPidFile=${path.join(dir, 'slurmd.pid')}`,
    `SlurmctldLogFile=${path.join(dir, 'log', 'slurmctld.log')}`,
    `SlurmdLogFile=${path.join(dir, 'log', 'slurmd.log')}`,
    ...(gpus === undefined ? [] : ['GresTypes=gpu']),
    `NodeName=${node} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${cpus * 256}${gpus === undefined ? '' : ` Gres=gpu:${gpus}`} State=UNKNOWN`,
    `PartitionName=${partition} Nodes=${node} Default=YES MaxTime=INFINITE State=UP`,
    '',
  ].join('\n');
}

/** `unshare --net=FILE` bind-mounts the new namespace on FILE; the sleeper keeps it busy. */
async function holdNamespace(netns: string): Promise<ChildProcess> {
  const holder = spawn('unshare', [`--net=${netns}`, 'sleep', 'infinity'], { stdio: 'ignore' });
  holder.once('error', () => undefined);
  await waitFor(
    () => {
      if (exited([holder])) throw new Error('unshare --net failed (not root?)');
      try {
        execFileSync('nsenter', [`--net=${netns}`, 'true'], { stdio: 'ignore' });
        return true;
      } catch {
        return false;
      }
    },
    10_000,
    'the network namespace',
    50,
  );
  return holder;
}

/** Slurm's address lookup fails with only a loopback interface: a veth pair, both ends inside. */
function addVeth(netns: string): void {
  for (const args of [
    ['link', 'set', 'lo', 'up'],
    ['link', 'add', 'bd0', 'type', 'veth', 'peer', 'name', 'bd1'],
    ['addr', 'add', '10.254.0.1/24', 'dev', 'bd0'],
    ['link', 'set', 'bd0', 'up'],
    ['link', 'set', 'bd1', 'up'],
  ])
    execFileSync('nsenter', [`--net=${netns}`, 'ip', ...args], { stdio: 'pipe' });
}

async function startMunge(dir: string): Promise<ChildProcess> {
  const uid = Number(execFileSync('id', ['-u', 'munge'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'munge'], { encoding: 'utf8' }).trim());
  const mungeDir = path.join(dir, 'munge');
  mkdirSync(mungeDir);
  chownSync(mungeDir, uid, gid);
  chmodSync(mungeDir, 0o711);
  const file = (name: string): string => path.join(mungeDir, name);
  const munged = spawn(
    '/usr/sbin/munged',
    [
      '--foreground',
      `--socket=${file('munge.socket')}`,
      `--pid-file=${file('munged.pid')}`,
      `--log-file=${file('munged.log')}`,
      `--seed-file=${file('munged.seed')}`,
      `--key-file=${MUNGE_KEY}`,
    ],
    { uid, gid, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  munged.once('error', () => undefined);
  let stderr = '';
  munged.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  await waitFor(
    () => {
      if (exited([munged])) throw new Error(`munged exited: ${stderr}`);
      return existsSync(file('munge.socket'));
    },
    10_000,
    "munged's socket",
    50,
  );
  return munged;
}

async function waitForIdle(cluster: SlurmCluster, children: ChildProcess[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited(children)) throw new Error('a Slurm daemon exited at start');
    const { stdout } = await cluster.run('sinfo', ['-h', '-n', cluster.node, '-o', '%T']);
    if (stdout.trim() === 'idle') return;
    if (Date.now() > deadline) throw new Error(`the Slurm node is not idle: ${stdout.trim()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Jobs first (their slurmstepd outlives slurmd), then the daemons by PID, TERM then KILL; then
 * whatever still runs in the namespace (a job's leftovers), found by its namespace, not by name.
 */
async function stopAll(cluster: SlurmCluster, children: ChildProcess[]): Promise<void> {
  if (existsSync(cluster.conf)) await cluster.run('scancel', ['--user=root']).catch(() => undefined);
  for (const child of [...children].reverse()) await stopChild(child);
  if (existsSync(cluster.netns)) {
    for (const pid of pidsInNamespace(cluster.netns)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    try {
      execFileSync('umount', [cluster.netns], { stdio: 'ignore' });
    } catch {
      // not mounted: unshare failed early
    }
  }
  rmSync(cluster.dir, { recursive: true, force: true });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  // A slurmd that lost its controller may ignore SIGTERM.
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await gone;
  clearTimeout(timer);
}

function pidsInNamespace(netns: string): number[] {
  let ns: { dev: number; ino: number };
  try {
    ns = statSync(netns);
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const { dev, ino } = statSync(`/proc/${entry}/ns/net`);
      if (dev === ns.dev && ino === ns.ino) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

function exited(children: ChildProcess[]): boolean {
  return children.some((c) => c.exitCode !== null || c.signalCode !== null);
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '(none)';
  }
}

function collect(child: ChildProcess, input: string | undefined): Promise<SlurmResult> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin?.end(input);
  });
}
