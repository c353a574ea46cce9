// What the figures came from: the machine, its load, and the versions of everything compared.
import { readFileSync, statSync } from 'node:fs';
import os from 'node:os';

import { DAEMON_MAIN, REPO } from './batchd.mjs';
import { run } from './proc.mjs';

async function version(file, args, pattern) {
  try {
    const out = await run(file, args, { timeoutMs: 5000 });
    const text = `${out.stdout}\n${out.stderr}`;
    return pattern.exec(text)?.[1] ?? text.trim().split('\n')[0];
  } catch {
    return undefined;
  }
}

async function debVersion(pkg) {
  try {
    const out = await run('dpkg-query', ['-W', '-f=${Version}', pkg], { timeoutMs: 5000 });
    return out.code === 0 ? out.stdout.trim() : undefined;
  } catch {
    return undefined;
  }
}

function osName() {
  try {
    return /^PRETTY_NAME="?([^"\n]+)/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

function fsOf(dir) {
  try {
    const mounts = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' '));
    let best;
    for (const m of mounts)
      if (m[1] !== undefined && dir.startsWith(m[1]) && (best === undefined || m[1].length > best[1].length))
        best = m;
    return best === undefined ? undefined : `${best[2]} on ${best[0]} (${best[1]})`;
  } catch {
    return undefined;
  }
}

export async function describeMachine(root) {
  const cpus = os.cpus();
  return {
    cpu: `${cpus.length} × ${cpus[0]?.model ?? 'unknown CPU'}`,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: osName() ?? `${os.type()} ${os.release()}`,
    kernel: os.release(),
    filesystem: fsOf(root),
    node: process.version,
    loadavgAtStart: os.loadavg().map((l) => Number(l.toFixed(2))),
    versions: {
      bash: await version('bash', ['--version'], /version (\S+)/),
      'task-spooler': await debVersion('task-spooler'),
      nq: await debVersion('nq'),
      at: await debVersion('at'),
      slurm: await debVersion('slurmctld'),
      wrk: await debVersion('wrk'),
    },
  };
}

/** Which code was measured: the commit, whether the tree differed from it, and when dist/ was built. */
export async function describeBuild() {
  const git = async (...args) => {
    try {
      const out = await run('git', ['-C', REPO, ...args], { timeoutMs: 10_000 });
      return out.code === 0 ? out.stdout.trim() : undefined;
    } catch {
      return undefined;
    }
  };
  const status = await git('status', '--porcelain', '--untracked-files=no');
  let builtAt;
  try {
    builtAt = statSync(DAEMON_MAIN).mtime.toISOString();
  } catch {
    builtAt = undefined;
  }
  return {
    commit: (await git('rev-parse', '--short', 'HEAD')) ?? 'unknown',
    changedFiles: status === undefined ? undefined : status.split('\n').filter(Boolean).length,
    distBuiltAt: builtAt,
  };
}
