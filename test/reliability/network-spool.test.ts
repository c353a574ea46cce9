import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { jobDir, jobsIn, makeEnv, type TestEnv, waitFor } from '../helpers/env.ts';
import { type Sshd, startSshd } from '../ssh/sshd.ts';
import { audit, clip, snapshot, summary } from './audit.ts';
import {
  killMarked,
  ledgerJobType,
  markedProcesses,
  readLedger,
  Submissions,
  waitUntilFinished,
} from './harness.ts';

const QUEUE = 'default';
const MACHINES = 3;
const JOBS = 60;
/** Seconds without a refresh before another machine's claim counts as dead. */
const LOCK_STALE = 5;

/** One "machine": its own host name, and its own network mount of the spool. */
interface Machine {
  name: string;
  mount: string;
  sshfs: ChildProcess;
  daemon?: DaemonProcess;
}

/**
 * Dispatchers on different machines sharing one spool over a network file system
 * (docs/scaling-out.md): the spool lives on a file server (an sshd on loopback, serving it over
 * SFTP), and each machine mounts it with its own sshfs, its own caches and its own host name (a
 * UTS namespace), so a dead machine's claims are judged by the age of their locks alone, as
 * across real machines, not by looking for its process.
 */
describe('dispatchers on three machines sharing a spool over sshfs', () => {
  let env: TestEnv;
  let server: Sshd;
  const machines: Machine[] = [];

  beforeAll(async () => {
    env = makeEnv({
      queues: { [QUEUE]: null },
      config: {
        dispatcher: { workers: 2, poll_timeout: 0.5, lock_stale: LOCK_STALE, grace_time: 2 },
        storage: { fsync: true },
      },
    });
    env.writeConfig('jobtypes/ledger.yaml', ledgerJobType(path.join(env.root, 'ledger'), 'retry'));
    server = await startSshd();
    for (let i = 1; i <= MACHINES; i++) machines.push(await mountSpool(env, server, `m${i}`));
  }, 60_000);

  afterAll(async () => {
    for (const m of machines) m.daemon?.kill('SIGKILL');
    await Promise.all(machines.flatMap((m) => (m.daemon === undefined ? [] : [m.daemon.exited])));
    killMarked(env.root);
    for (const m of machines) unmount(m);
    await server?.stop();
    env?.cleanup();
  });

  it('one machine dies mid-run: the others finish its jobs once its claims go stale, and every job ends in one folder', async () => {
    for (const m of machines)
      m.daemon = await startDaemon(env.etc, m.mount, {
        readyTimeoutMs: 60_000,
        env: { BATCHD_TEST_MARK: env.root, DISPATCHER: m.name },
        wrapper: ['unshare', '--uts', '--', '/bin/sh', '-c', 'hostname "$0" && exec "$@"', m.name],
      });
    // Users drop jobs on the file server's side, as on any machine that mounts the spool.
    const submissions = new Submissions();
    for (let n = 0; n < JOBS; n++) submissions.drop(env.spool, QUEUE, 0.3 + (n % 4) * 0.2);

    const victim = machines[1] as Machine;
    const victimDaemon = victim.daemon as DaemonProcess;
    await waitFor(() => heldBy(env, victim.name).length > 0, 60_000, 'the victim to run jobs', 50);
    // Frozen first, so what it holds is read before the others may take it over.
    victimDaemon.kill('SIGSTOP');
    const held = heldBy(env, victim.name);
    // The machine goes away: its daemon (and with it its launcher's jobs) and its mount.
    victimDaemon.kill('SIGKILL');
    await victimDaemon.exited;
    unmount(victim);
    expect(held.length).toBeGreaterThan(0);

    const unfinished = await waitUntilFinished(env.spool, [QUEUE], JOBS, 120_000);
    const survivors = machines.filter((m) => m !== victim);
    await Promise.all(survivors.flatMap((m) => (m.daemon === undefined ? [] : [m.daemon.stop()])));
    await waitFor(() => markedProcesses(env.root).length === 0, 10_000, 'every daemon and job gone');

    const ledger = readLedger(path.join(env.root, 'ledger'));
    const snap = snapshot(env.spool);
    const result = audit(snap, { submitted: submissions.expected, ledger, onFail: 'retry' });
    if (unfinished !== undefined) result.problems.unshift(unfinished);
    console.log(
      `${MACHINES} machines on sshfs, ${victim.name} died holding ${held.length} jobs: ${summary(result.stats)}`,
    );
    expect(clip(result.problems)).toEqual([]);
    expect(result.stats.done).toBe(JOBS);
    // Only what the dead machine held ran again, and it ran to its end on another machine.
    expect(result.stats.reran).toBeLessThanOrEqual(held.length);
    for (const id of held) {
      const state = JSON.parse(
        readFileSync(path.join(jobDir(env.spool, QUEUE, 'done', id), 'state.yaml'), 'utf8'),
      ) as { results: { outcome: string }[]; history: { reason: string }[] };
      expect(state.results.map((r) => r.outcome)).toContain('interrupted');
      expect(state.history.map((h) => h.reason).join('\n')).toMatch(/recovered/);
      const ends = (ledger.get(id) ?? []).filter((l) => l.event === 'end');
      expect(ends.map((l) => l.dispatcher)).not.toContain(victim.name);
      expect(ends.length).toBe(1);
    }
    // Each survivor ran jobs, and none of them ran on the dead machine's name after its death.
    const runs = new Set([...ledger.values()].flat().map((l) => l.dispatcher));
    for (const m of survivors) expect(runs).toContain(m.name);
  }, 240_000);
});

/** Mount the spool at a folder of this machine's with sshfs (in the foreground: its pid is ours). */
async function mountSpool(env: TestEnv, server: Sshd, name: string): Promise<Machine> {
  const mount = path.join(env.root, 'machines', name, 'spool');
  mkdirSync(mount, { recursive: true });
  const options = [
    `IdentityFile=${server.clientKey}`,
    `UserKnownHostsFile=${server.knownHosts}`,
    'StrictHostKeyChecking=yes',
    'BatchMode=yes',
    // No cache of sshfs's own: what one machine wrote, the next read on another sees.
    'cache=no',
  ];
  const sshfs = spawn(
    'sshfs',
    ['-f', '-p', String(server.port), '-o', options.join(','), `root@127.0.0.1:${env.spool}`, mount],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let errors = '';
  sshfs.stderr?.on('data', (d: Buffer) => (errors += d.toString()));
  await waitFor(
    () => {
      if (sshfs.exitCode !== null) throw new Error(`sshfs for ${name} exited: ${errors}`);
      return readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${mount} `);
    },
    20_000,
    `the spool mounted for ${name}`,
  );
  return { name, mount, sshfs };
}

/** The machine's mount goes, as when it dies; idempotent. */
function unmount(machine: Machine): void {
  if (machine.sshfs.exitCode === null && machine.sshfs.signalCode === null) machine.sshfs.kill('SIGKILL');
  try {
    execFileSync('fusermount3', ['-u', '-z', machine.mount], { stdio: 'ignore' });
  } catch {
    // not mounted any more
  }
}

/** Jobs in running/ claimed from the machine with this host name. */
function heldBy(env: TestEnv, hostname: string): string[] {
  return jobsIn(env.spool, QUEUE, 'running').filter((id) => {
    try {
      const file = path.join(jobDir(env.spool, QUEUE, 'running', id), 'state.yaml');
      const state = JSON.parse(readFileSync(file, 'utf8')) as { running?: { owner?: { hostname?: string } } };
      return state.running?.owner?.hostname === hostname;
    } catch {
      return false;
    }
  });
}
