import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const SSHD = '/usr/sbin/sshd';

/** A private OpenSSH server on loopback, started and stopped by a test (TESTING.md, "SSH"). */
export interface Sshd {
  port: number;
  dir: string;
  /** The server's host key as a `known_hosts` line for 127.0.0.1 on this port. */
  knownHostsLine: string;
  /** A known_hosts file holding `knownHostsLine`. */
  knownHosts: string;
  /** The SHA256 fingerprint of the host key, as `ssh-keygen -l` prints it. */
  fingerprint: string;
  /** A client key the server accepts, and one it does not. */
  clientKey: string;
  strangerKey: string;
  pid(): number | undefined;
  /** Stop the server and every session it serves (kill -9), as if the machine went away. */
  kill(): void;
  /** Start it again on the same port with the same keys. */
  restart(): Promise<void>;
  /** Stop it (and its sessions), keeping its keys for a restart. */
  halt(): Promise<void>;
  stop(): Promise<void>;
}

export interface SshdOptions {
  maxSessions?: number;
  /** Reuse another server's client keys (so one host file's key works on both). */
  keysFrom?: Sshd;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function keygen(file: string): void {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'batchd-test', '-f', file], {
    stdio: 'ignore',
  });
}

export async function startSshd(options: SshdOptions = {}): Promise<Sshd> {
  // A missing sshd fails the SSH tests instead of skipping them: the test command installs it.
  if (!existsSync(SSHD))
    throw new Error(`${SSHD} is not installed: run scripts/test.sh, which installs openssh-server`);
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = mkdtempSync(path.join(tmpdir(), 'batchd-sshd-'));
  const hostKey = path.join(dir, 'host_ed25519');
  keygen(hostKey);
  let clientKey: string;
  let strangerKey: string;
  if (options.keysFrom !== undefined) {
    clientKey = options.keysFrom.clientKey;
    strangerKey = options.keysFrom.strangerKey;
  } else {
    clientKey = path.join(dir, 'client_ed25519');
    strangerKey = path.join(dir, 'stranger_ed25519');
    keygen(clientKey);
    keygen(strangerKey);
  }
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
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'Subsystem sftp internal-sftp',
      `MaxSessions ${options.maxSessions ?? 50}`,
      'MaxStartups 200:30:400',
      // root's .bashrc runs a slow init on every exec (TESTING.md).
      'SetEnv SHLVL=1',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  const hostPub = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/);
  const knownHostsLine = `[127.0.0.1]:${port} ${hostPub[0]} ${hostPub[1]}`;
  const knownHosts = path.join(dir, 'known_hosts');
  writeFileSync(knownHosts, knownHostsLine + '\n');
  const fingerprint =
    execFileSync('ssh-keygen', ['-l', '-f', `${hostKey}.pub`], { encoding: 'utf8' }).split(/\s+/)[1] ?? '';

  let child: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    child = spawn(SSHD, ['-D', '-f', config, '-E', path.join(dir, 'sshd.log')], { stdio: 'ignore' });
    const started = child;
    started.once('error', () => undefined);
    await waitForBanner(
      port,
      () => started.exitCode !== null || started.signalCode !== null,
      path.join(dir, 'sshd.log'),
    );
  };
  await launch();

  const killTree = (): void => {
    const pid = child?.pid;
    if (pid === undefined || child?.exitCode !== null || child?.signalCode !== null) return;
    // sshd forks one process per connection (and one per session under it): all of them go.
    for (const p of [pid, ...descendants(pid).filter((d) => isSshd(d))]) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
  };
  const waitExit = async (): Promise<void> => {
    const c = child;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => c.once('exit', () => resolve()));
  };

  return {
    port,
    dir,
    knownHostsLine,
    knownHosts,
    fingerprint,
    clientKey,
    strangerKey,
    pid: () => child?.pid,
    kill: killTree,
    restart: async () => {
      killTree();
      await waitExit();
      await launch();
    },
    halt: async () => {
      killTree();
      await waitExit();
    },
    stop: async () => {
      killTree();
      await waitExit();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitForBanner(port: number, died: () => boolean, log: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const banner = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      let got = '';
      socket.setTimeout(1000, () => socket.destroy());
      socket.on('data', (d: Buffer) => {
        got += d.toString();
        socket.destroy();
      });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(got));
    });
    if (banner.startsWith('SSH-2.0')) return;
    const logText = existsSync(log) ? readFileSync(log, 'utf8') : '';
    if (died()) throw new Error(`sshd exited at start: ${logText}`);
    if (Date.now() > deadline) throw new Error(`sshd did not answer on port ${port}: ${logText}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Every process below `pid`, from /proc. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // The command name may hold spaces and parentheses: the ppid follows the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

function isSshd(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim().startsWith('sshd');
  } catch {
    return false;
  }
}

/** Processes whose command line contains `marker` (to find a remote job's processes). */
export function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmdline.includes(marker)) found.push(Number(entry));
    } catch {
      // gone
    }
  }
  return found;
}
