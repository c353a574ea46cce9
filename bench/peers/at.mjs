// GNU at: the classic file-spool daemon. The bench runs its own atd in the foreground with the
// batch gates lifted (`-b 0 -l 100`, as measured in reference/peers.md) and stops it by PID.
// at has one spool (/var/spool/cron/atjobs) and one pid file, so it needs them to itself.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

import { pidAlive, runOk, stopPid, TAG_VAR, waitFor } from '../lib/proc.mjs';
import { requireBinaries, Unavailable } from './common.mjs';

const SPOOL = '/var/spool/cron/atjobs';
const PIDFILE = '/run/atd.pid';

/** Jobs in at's spool (queued and running: a running job keeps its `=` link until it ends). */
function jobsInSpool() {
  return readdirSync(SPOOL).filter((n) => !n.startsWith('.')).length;
}

let shared; // one atd serves both the `batch` and the `at now` peers

async function startAtd(ctx) {
  requireBinaries('atd', 'at', 'batch');
  if (shared !== undefined) {
    shared.users += 1;
    return shared;
  }
  if (existsSync(PIDFILE)) {
    const pid = Number(readFileSync(PIDFILE, 'utf8').trim());
    if (pidAlive(pid))
      throw new Unavailable(
        `another atd (pid ${pid}) already serves ${SPOOL}; the bench needs at's single spool to itself`,
      );
  }
  if (!existsSync(SPOOL)) throw new Unavailable(`${SPOOL} does not exist`);
  if (jobsInSpool() > 0) throw new Unavailable(`${SPOOL} already holds jobs that are not the bench's`);
  const env = { ...process.env, [TAG_VAR]: `${ctx.tag}-at` };
  const child = spawn('atd', ['-f', '-b', '0', '-l', '100'], { env, stdio: 'ignore' });
  let exited = false;
  child.on('exit', () => (exited = true));
  await waitFor(
    () => {
      if (exited) throw new Unavailable('atd -f exited at once');
      return existsSync(PIDFILE) && Number(readFileSync(PIDFILE, 'utf8').trim()) === child.pid;
    },
    { everyMs: 10, timeoutMs: 5000, what: 'atd to write its pid file' },
  );
  shared = {
    env,
    users: 1,
    stop: async () => {
      shared.users -= 1;
      if (shared.users > 0) return;
      shared = undefined;
      await stopPid(child.pid);
    },
  };
  return shared;
}

function atPeer(name, label, client) {
  return {
    name,
    label,
    async start(ctx) {
      const atd = await startAtd(ctx);
      const session = {
        env: atd.env,
        prefix: [],
        prepareTrue: ':',
        // at reads the job from stdin and prints "job N at ..." on stderr.
        submitTrue: `echo true | ${client} 2>/dev/null`,
        prepareShell: ':',
        submitShell: `printf '%s\\n' "$JOB" | ${client} 2>/dev/null`,
        newRound: async () => undefined,
        waitAllDone: async (n, timeoutMs) => {
          await waitFor(() => jobsInSpool() === 0, { everyMs: 10, timeoutMs, what: `${n} ${name} jobs` });
        },
        stop: () => atd.stop(),
      };
      try {
        await runOk('sh', ['-c', `echo true | ${client} 2>/dev/null`], { env: atd.env });
        await session.waitAllDone(1, 10_000);
      } catch (error) {
        await atd.stop();
        throw error;
      }
      return session;
    },
  };
}

export const batch = atPeer('batch', '`batch` (atd -b 0 -l 100)', 'batch');
export const atNow = atPeer('at', '`at now` (queue a)', 'at now');
