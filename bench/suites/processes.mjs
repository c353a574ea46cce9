// Processes while 1,000 jobs wait: every slot is taken by a blocker (`sleep`), then 1,000 `true`
// jobs are submitted behind it; the tool's processes are counted (all processes carrying its tag,
// i.e. everything it started) with their summed memory. Fresh sessions, so the queues are its own.
import path from 'node:path';

import { BatchdDaemon } from '../lib/batchd.mjs';
import { commandsOf, killTagged, memoryOf, run, runOk, TAG_VAR, taggedPids, waitFor } from '../lib/proc.mjs';
import { runScript, throughputLoop, writeScript } from '../lib/scripts.mjs';

const PEERS = ['tsp', 'nq', 'at', 'slurm'];

export async function processes(ctx, pool) {
  const n = ctx.opts.quick ? 100 : 1000;
  const sub = { ...ctx, root: path.join(ctx.root, 'procs'), tag: `${ctx.tag}p` };
  const rows = [];
  rows.push(await measure(ctx, 'batchd', 'batchd (2 workers busy)', () => batchdWaiting(sub, n)));
  for (const peer of pool.selected(PEERS)) {
    rows.push(
      await measure(ctx, peer.name, peer.label, async () => {
        // Slurm is costly to start and its pending jobs are no processes: reuse the run's session.
        const got = peer.name === 'slurm' ? await pool.get(peer) : await startFresh(peer, sub);
        if (got.unavailable !== undefined) return { unavailable: got.unavailable };
        return peerWaiting(sub, got.session, peer.name, n, peer.name !== 'slurm');
      }),
    );
  }
  return { n, rows };
}

async function measure(ctx, name, label, fn) {
  ctx.log(`processes: ${name}`);
  try {
    const r = await fn();
    if (r.total !== undefined) ctx.log(`  ${name}: ${r.total} processes (${JSON.stringify(r.commands)})`);
    return { name, label, ...r };
  } catch (error) {
    ctx.log(`  ${name}: failed: ${error.message}`);
    return { name, label, error: error.message };
  }
}

async function startFresh(peer, sub) {
  try {
    return { session: await peer.start(sub) };
  } catch (error) {
    return { unavailable: error.message };
  }
}

function census(tag) {
  const pids = taggedPids(tag);
  const commands = commandsOf(pids);
  let rssMiB = 0;
  for (const pid of pids) {
    try {
      rssMiB += memoryOf(pid).rssMiB;
    } catch {
      // exited meanwhile
    }
  }
  const running = commands.sleep ?? 0;
  return {
    total: pids.length,
    scheduler: pids.length - running,
    runningJobs: running,
    commands,
    rssMiB: Math.round(rssMiB),
  };
}

async function batchdWaiting(sub, n) {
  const tag = `${sub.tag}-batchd`;
  const daemon = new BatchdDaemon({
    dir: path.join(sub.root, 'batchd'),
    tag,
    config: { dispatcher: { grace_time: 1, kill_grace: 1 } },
  });
  await daemon.start();
  try {
    daemon.drop('block1.yaml', "command: 'sleep 600'\n");
    daemon.drop('block2.yaml', "command: 'sleep 600'\n");
    await waitFor(() => daemon.count('running') === 2, { timeoutMs: 30_000, what: 'two blockers running' });
    const session = { prefix: [], env: { ...process.env, IN: daemon.incoming() } };
    const loop = `for ((i = 1; i <= N; i++)); do\n  printf "command: 'true'\\n" > "$IN/.w$i.tmp"\n  mv "$IN/.w$i.tmp" "$IN/w$i.yaml"\ndone`;
    await runScript(session, writeScript(sub, 'procs-batchd', loop), { N: String(n) });
    await waitFor(() => daemon.count('queued') >= n, { timeoutMs: 60_000, what: `${n} queued jobs` });
    return { ...census(tag), waiting: daemon.count('queued') };
  } finally {
    await daemon.stop();
    await killTagged(tag);
  }
}

/** Blockers in every slot, then n `true`s behind them; counted, then everything removed again. */
async function peerWaiting(sub, session, name, n, fresh) {
  // The session's own tag: at's atd is shared with the rest of the run, so its tag is the run's.
  const tag = session.env[TAG_VAR];
  const exec = (line) => {
    const argv = [...session.prefix, 'bash', '-c', line];
    return runOk(argv[0], argv.slice(1), { env: session.env });
  };
  let refused = 0;
  try {
    switch (name) {
      case 'tsp': {
        await exec('tsp sleep 600 >/dev/null; tsp sleep 600 >/dev/null');
        // tsp holds one connection per queued job and caps them (1,000 here): -B makes a refused
        // submission exit instead of waiting for a free connection, and the loop counts them.
        const out = await runScript(
          session,
          writeScript(
            sub,
            'procs-tsp',
            'refused=0\nfor ((i = 1; i <= N; i++)); do tsp -B true >/dev/null || refused=$((refused + 1)); done\necho "refused=$refused"',
          ),
          { N: String(n) },
        );
        refused = Number(/refused=(\d+)/.exec(out.stderr)?.[1] ?? 0);
        break;
      }
      case 'nq':
        await exec('nq -q sleep 600');
        await runScript(session, writeScript(sub, `procs-${name}`, throughputLoop(session)), {
          N: String(n),
          ROUND: 'p',
        });
        break;
      case 'at':
        // at jobs wait as files until their time: queue them an hour ahead.
        await runScript(
          session,
          writeScript(
            sub,
            'procs-at',
            'for ((i = 1; i <= N; i++)); do echo true | at now + 1 hour 2>/dev/null; done',
          ),
          { N: String(n) },
        );
        break;
      case 'slurm':
        await runScript(
          session,
          writeScript(
            sub,
            'procs-slurm',
            'for ((i = 1; i <= N; i++)); do sbatch -Q -o /dev/null --begin=now+1hour --wrap=true >/dev/null; done',
          ),
          { N: String(n) },
        );
        break;
      default:
        throw new Error(`no waiting-jobs recipe for ${name}`);
    }
    // Let detached clients settle into waiting.
    await new Promise((r) => setTimeout(r, 500));
    const counted = census(tag);
    if (refused > 0)
      counted.note = `${refused} of ${n} submissions refused: queue full (tsp's connection cap)`;
    return counted;
  } finally {
    if (name === 'at') {
      const q = await run('atq', [], { env: session.env });
      const ids = q.stdout
        .split('\n')
        .map((l) => l.split(/\s+/)[0])
        .filter((id) => /^\d+$/.test(id));
      if (ids.length > 0) await run('atrm', ids, { env: session.env });
    }
    if (name === 'slurm') await exec('scancel --user root || true').catch(() => undefined);
    if (fresh) {
      await session.stop().catch(() => undefined);
      // Never for at: its atd serves the whole run.
      if (name !== 'at') await killTagged(tag);
    }
  }
}
