import { mkdirSync, readdirSync } from 'node:fs';

import type { Daemon } from '../../daemon/daemon.ts';
import { jobDir, readLog, readState, type StateFile, type TestEnv, waitFor } from '../helpers/env.ts';
import { processesWith, type Sshd } from './sshd.ts';

/** A host file for a test sshd: the test's key, its known_hosts, a work folder of the test's own. */
export function hostFile(
  sshd: Sshd,
  remoteRoot: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  mkdirSync(remoteRoot, { recursive: true });
  return {
    host_name: '127.0.0.1',
    port: sshd.port,
    user_name: 'root',
    private_key: sshd.clientKey,
    known_hosts: sshd.knownHosts,
    work_directory: remoteRoot,
    connect_timeout: 5,
    backoff: { initial: 0.5, max: 2 },
    ...extra,
  };
}

export function finished(
  env: TestEnv,
  id: string,
  timeoutMs = 20_000,
  queue = 'default',
): Promise<{ state: string; record: StateFile; dir: string }> {
  return waitFor(
    () => {
      for (const state of ['done', 'failed', 'cancelled']) {
        try {
          return {
            state,
            record: readState(env.spool, queue, state, id),
            dir: jobDir(env.spool, queue, state, id),
          };
        } catch {
          // not there
        }
      }
      return undefined;
    },
    timeoutMs,
    `job ${id} finished`,
  );
}

export function log(dir: string, name: 'stdout.log' | 'stderr.log'): string {
  return readLog(dir, name);
}

/** The empty job folders a host's launcher keeps for its next jobs (until it ends). */
export const SPARE = /^\.batchd-spare-/;

/**
 * Remote job folders left in a host's work folder: with `spares`, the folders its launcher keeps
 * for reuse count too (none may be left once the daemon is gone).
 */
export function leftovers(remoteRoot: string, spares = false): string[] {
  try {
    return readdirSync(remoteRoot).filter((name) => spares || !SPARE.test(name));
  } catch {
    return [];
  }
}

/** Job folders are removed (or, empty, kept aside by the launcher) in batches, shortly after their jobs end. */
export async function waitForNoLeftovers(remoteRoot: string, spares = false): Promise<void> {
  await waitFor(
    () => leftovers(remoteRoot, spares).length === 0,
    5_000,
    `no job folders left in ${remoteRoot}`,
  ).catch(() => {
    throw new Error(`job folders left in ${remoteRoot}: ${leftovers(remoteRoot, spares).join(', ')}`);
  });
}

export async function waitForProcess(marker: string, timeoutMs = 10_000): Promise<number[]> {
  return waitFor(
    () => {
      const pids = processesWith(marker);
      return pids.length > 0 ? pids : undefined;
    },
    timeoutMs,
    `a process with "${marker}"`,
  );
}

export async function waitForNoProcess(marker: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(() => processesWith(marker).length === 0, timeoutMs, `no process with "${marker}" left`);
}

export function hostState(daemon: Daemon, host: string): string {
  return daemon.hosts.states.get(host).state;
}
