// Slurm, single node, HTC-tuned with 32 slots (the configuration reference/peers.md §4.2 measured at
// 37–40 jobs/s), in a private network namespace: slurmctld and slurmd listen on every interface, so
// they only ever see the namespace's loopback and a veth pair that exists inside it alone
// (Slurm's address lookup fails with loopback alone; docs/TESTING.md "Slurm").
import { spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { run, runOk, stopPid, TAG_VAR, waitFor } from '../lib/proc.mjs';
import { requireBinaries, Unavailable } from './common.mjs';

const MUNGE_KEY = '/etc/munge/munge.key';

export const slurm = {
  name: 'slurm',
  label: 'Slurm 1 node, HTC-tuned, 32 slots',
  async start(ctx) {
    requireBinaries(
      'slurmctld',
      'slurmd',
      'sbatch',
      'squeue',
      'sinfo',
      'munged',
      'unshare',
      'nsenter',
      'ip',
      'setpriv',
    );
    if (process.getuid?.() !== 0)
      throw new Unavailable('needs root (network namespace, munged as user munge)');
    if (!existsSync(MUNGE_KEY)) throw new Unavailable(`${MUNGE_KEY} is missing (the munge package makes it)`);
    const uid = Number((await runOk('id', ['-u', 'munge'])).stdout.trim());
    const gid = Number((await runOk('id', ['-g', 'munge'])).stdout.trim());
    const dir = path.join(ctx.root, 'slurm');
    const mungeDir = path.join(dir, 'munge');
    for (const d of ['state', 'spool', 'log', 'jobs']) mkdirSync(path.join(dir, d), { recursive: true });
    mkdirSync(mungeDir, { recursive: true });
    // munged runs as munge: its socket folder must be its own, writable by it alone, and
    // searchable by everyone (the clients).
    chmodSync(ctx.root, 0o755);
    chmodSync(dir, 0o755);
    chownSync(mungeDir, uid, gid);
    chmodSync(mungeDir, 0o755);
    const children = [];
    const ns = path.join(dir, 'netns');
    const stopAll = async () => {
      for (const child of children.reverse()) await stopPid(child.pid, 5000);
      if (existsSync(ns)) await run('umount', [ns]);
    };
    try {
      return await boot(ctx, { dir, mungeDir, ns, children, stopAll });
    } catch (error) {
      await stopAll();
      throw error instanceof Unavailable ? error : new Unavailable(error.message);
    }
  },
};

async function boot(ctx, { dir, mungeDir, ns, children, stopAll }) {
  const tagEnv = { ...process.env, [TAG_VAR]: `${ctx.tag}-slurm` };
  const inNs = ['nsenter', `--net=${ns}`];
  const nsRun = (args) => runOk(inNs[0], [...inNs.slice(1), ...args], { env: tagEnv });

  writeFileSync(ns, '');
  const made = await run('unshare', [`--net=${ns}`, 'true']);
  if (made.code !== 0) throw new Unavailable(`cannot make a network namespace: ${made.stderr.trim()}`);
  await nsRun(['ip', 'link', 'set', 'lo', 'up']);
  await nsRun(['ip', 'link', 'add', 'bench0', 'type', 'veth', 'peer', 'name', 'bench1']);
  await nsRun(['ip', 'addr', 'add', '10.213.0.1/24', 'dev', 'bench0']);
  await nsRun(['ip', 'link', 'set', 'bench0', 'up']);
  await nsRun(['ip', 'link', 'set', 'bench1', 'up']);

  const socket = path.join(mungeDir, 'munge.socket');
  const munged = spawnService(
    children,
    path.join(dir, 'log', 'munged.out'),
    'setpriv',
    [
      '--reuid=munge',
      '--regid=munge',
      '--clear-groups',
      'munged',
      '--foreground',
      `--socket=${socket}`,
      `--pid-file=${path.join(mungeDir, 'munged.pid')}`,
      `--log-file=${path.join(mungeDir, 'munged.log')}`,
      `--seed-file=${path.join(mungeDir, 'munged.seed')}`,
      `--key-file=${MUNGE_KEY}`,
    ],
    tagEnv,
  );
  await waitFor(() => exited(munged) ?? existsSync(socket), {
    everyMs: 20,
    timeoutMs: 10_000,
    what: 'munged socket',
  });
  if (exited(munged)) throw new Unavailable(`munged exited: ${tail(path.join(dir, 'log', 'munged.out'))}`);

  const host = os.hostname();
  const conf = path.join(dir, 'slurm.conf');
  writeFileSync(
    conf,
    [
      'ClusterName=bench',
      `SlurmctldHost=${host}(127.0.0.1)`,
      'SlurmUser=root',
      'SlurmdUser=root',
      'AuthType=auth/munge',
      'CredType=cred/munge',
      `AuthInfo=socket=${socket}`,
      `StateSaveLocation=${path.join(dir, 'state')}`,
      `SlurmdSpoolDir=${path.join(dir, 'spool')}`,
      `SlurmctldPidFile=${path.join(dir, 'slurmctld.pid')}`,
      `SlurmdPidFile=${path.join(dir, 'slurmd.pid')}`,
      `SlurmctldLogFile=${path.join(dir, 'log', 'slurmctld.log')}`,
      `SlurmdLogFile=${path.join(dir, 'log', 'slurmd.log')}`,
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_CPU',
      'JobAcctGatherType=jobacct_gather/none',
      'AccountingStorageType=accounting_storage/none',
      'JobCompType=jobcomp/none',
      'MpiDefault=none',
      // The high-throughput settings (slurm.schedmd.com/high_throughput.html, peers.md §4.2).
      'SchedulerType=sched/builtin',
      'SchedulerParameters=batch_sched_delay=0',
      'MinJobAge=2',
      'ReturnToService=2',
      'SlurmdParameters=config_overrides',
      `NodeName=${host} NodeAddr=127.0.0.1 CPUs=32 State=UNKNOWN`,
      `PartitionName=bench Nodes=${host} Default=YES MaxTime=INFINITE State=UP`,
      '',
    ].join('\n'),
  );
  const env = { ...tagEnv, SLURM_CONF: conf };
  const ctld = spawnService(
    children,
    path.join(dir, 'log', 'slurmctld.out'),
    inNs[0],
    [...inNs.slice(1), 'slurmctld', '-D', '-i'],
    env,
  );
  const slurmd = spawnService(
    children,
    path.join(dir, 'log', 'slurmd.out'),
    inNs[0],
    [...inNs.slice(1), 'slurmd', '-D', '-N', host],
    env,
  );
  const logs = () =>
    `slurmctld: ${tail(path.join(dir, 'log', 'slurmctld.log'))} / slurmd: ${tail(path.join(dir, 'log', 'slurmd.log'))}`;
  try {
    await waitFor(
      async () => {
        if (exited(ctld) || exited(slurmd)) throw new Unavailable(`a Slurm daemon exited: ${logs()}`);
        const out = await run(inNs[0], [...inNs.slice(1), 'sinfo', '-h', '-o', '%T'], {
          env,
          timeoutMs: 10_000,
        });
        return out.code === 0 && /^idle/m.test(out.stdout);
      },
      { everyMs: 250, timeoutMs: 30_000, what: 'the Slurm node to be idle' },
    );
  } catch (error) {
    throw error instanceof Unavailable ? error : new Unavailable(`${error.message}: ${logs()}`);
  }

  const active = async () => {
    const out = await run(inNs[0], [...inNs.slice(1), 'squeue', '-h', '-t', 'PD,R,CG,CF', '-o', '%i'], {
      env,
      timeoutMs: 10_000,
    });
    if (out.code !== 0) throw new Error(`squeue failed: ${out.stderr.trim()}`);
    return out.stdout.split('\n').filter((l) => l.trim() !== '').length;
  };
  const session = {
    env,
    prefix: inNs,
    prepareTrue: ':',
    submitTrue: 'sbatch -Q -o /dev/null --wrap=true >/dev/null',
    prepareShell: ':',
    submitShell: 'sbatch -Q -o /dev/null --wrap="$JOB" >/dev/null',
    newRound: async () => undefined,
    waitAllDone: async (n, timeoutMs) => {
      await waitFor(async () => (await active()) === 0, { everyMs: 200, timeoutMs, what: `${n} Slurm jobs` });
    },
    stop: stopAll,
  };
  await runOk(inNs[0], [...inNs.slice(1), 'sbatch', '-Q', '-o', '/dev/null', '--wrap=true'], {
    env,
    cwd: path.join(dir, 'jobs'),
  });
  await session.waitAllDone(1, 30_000);
  return session;
}

/** A service in the foreground, its output in `logFile`, stopped by PID in stopAll. */
function spawnService(children, logFile, file, args, env) {
  const out = openSync(logFile, 'a');
  const child = spawn(file, args, { env, stdio: ['ignore', out, out] });
  closeSync(out);
  child.exitInfo = undefined;
  child.on('exit', (code, signal) => (child.exitInfo = { code, signal }));
  child.on('error', (error) => (child.exitInfo = { error: error.message }));
  children.push(child);
  return child;
}

function exited(child) {
  return child.exitInfo !== undefined ? true : undefined;
}

function tail(file) {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-3).join(' | ');
  } catch {
    return '(no log)';
  }
}
