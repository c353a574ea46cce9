import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

import Docker from 'dockerode';

export const DOCKERD = '/usr/sbin/dockerd';
export const BUSYBOX = '/bin/busybox';

/** A private Docker engine for one test file (TESTING.md, "Docker"). */
export interface Dockerd {
  /** The engine's socket, for `unix_socket:` in a controller file. */
  socket: string;
  dir: string;
  docker: Docker;
  /** A busybox-static image (`ENV PATH=/bin`), imported offline. */
  image: string;
  /** The docker CLI's arguments that reach this engine: `docker ...cli, 'ps'`. */
  cli: string[];
  /** `docker exec CONTAINER /bin/sh -c script`: its stdout (throws on a non-zero exit). */
  sh(container: string, script: string): string;
  /** A container made outside batchd: no labels, `sleep` under docker-init, not started. */
  plainContainer(
    name: string,
    options?: { labels?: Record<string, string>; hostname?: string },
  ): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts dockerd with everything of its own under a temp folder (socket, data-root, exec-root,
 * pidfile, containerd namespace), vfs storage and no networking of its own (no iptables, no
 * bridge: containers use `none` or `host`), and imports a busybox image into it.
 */
export async function startDockerd(): Promise<Dockerd> {
  // A missing engine fails the Docker tests instead of skipping them: the test command installs it.
  for (const bin of [DOCKERD, BUSYBOX])
    if (!existsSync(bin))
      throw new Error(`${bin} is not installed: apt-get install docker.io busybox-static`);
  // Short: a unix socket path has at most 107 bytes.
  const dir = mkdtempSync('/tmp/batchd-dockerd-');
  const socket = path.join(dir, 'docker.sock');
  const execRoot = path.join(dir, 'exec');
  const namespace = `batchd-test-${randomBytes(4).toString('hex')}`;
  const child = spawn(
    DOCKERD,
    [
      '--data-root',
      path.join(dir, 'data'),
      '--exec-root',
      execRoot,
      '--pidfile',
      path.join(dir, 'dockerd.pid'),
      '-H',
      `unix://${socket}`,
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
      '--storage-driver=vfs',
      '--containerd-namespace',
      namespace,
      '--containerd-plugins-namespace',
      `${namespace}-plugins`,
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  child.once('error', () => undefined);
  const logLines: string[] = [];
  child.stderr?.on('data', (d: Buffer) => logLines.push(d.toString()));
  const docker = new Docker({ socketPath: socket });
  const stop = async (): Promise<void> => {
    await stopEngine(child);
    // dockerd may leave its network namespace mounted under its exec-root.
    for (const mount of [path.join(execRoot, 'netns', 'default'), path.join(execRoot, 'netns')]) {
      try {
        execFileSync('umount', [mount], { stdio: 'ignore' });
      } catch {
        // not mounted
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForPing(docker, child, () => logLines.join(''));
    const image = 'batchd-busybox:test';
    importBusybox(dir, socket, image);
    const cli = ['-H', `unix://${socket}`];
    return {
      socket,
      dir,
      docker,
      image,
      cli,
      sh: (container, script) =>
        execFileSync('docker', [...cli, 'exec', container, '/bin/sh', '-c', script], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      plainContainer: async (name, options = {}) => {
        await docker.createContainer({
          name,
          Image: image,
          Hostname: options.hostname,
          Cmd: ['sleep', 'inf'],
          Labels: options.labels ?? {},
          HostConfig: { Init: true, NetworkMode: 'none' },
        });
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function waitForPing(docker: Docker, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await docker.ping();
      return;
    } catch {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`dockerd exited at start: ${log()}`);
      if (Date.now() > deadline) throw new Error(`dockerd did not answer _ping: ${log()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** TERM (dockerd stops its containers and its containerd), KILL if it hangs. */
async function stopEngine(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
  }, 20_000);
  await exited;
  clearTimeout(timer);
}

/** A rootfs of busybox-static and its applet links, imported as `image` (no pulls: no network). */
function importBusybox(dir: string, socket: string, image: string): void {
  const rootfs = path.join(dir, 'rootfs');
  for (const sub of ['bin', 'tmp', 'etc', 'root']) mkdirSync(path.join(rootfs, sub), { recursive: true });
  copyFileSync(BUSYBOX, path.join(rootfs, 'bin', 'busybox'));
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n');
  for (const applet of applets) {
    if (applet === '' || applet === 'busybox') continue;
    symlinkSync('busybox', path.join(rootfs, 'bin', applet));
  }
  const tar = path.join(dir, 'rootfs.tar');
  execFileSync('tar', ['-C', rootfs, '-cf', tar, '.']);
  execFileSync('docker', ['-H', `unix://${socket}`, 'import', '-c', 'ENV PATH=/bin', tar, image], {
    stdio: 'ignore',
  });
  rmSync(rootfs, { recursive: true, force: true });
  rmSync(tar, { force: true });
}
