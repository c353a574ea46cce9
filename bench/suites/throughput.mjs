// 1,000 × `true`, one submission per job from a shell loop, 2 at a time where the tool allows:
// time until all are done, beside the bare spawn floor and the peers, all in the same run. The
// tools take turns within each round (the order rotates), so the machine's noise spreads evenly.
import { mkdirSync } from 'node:fs';
import path from 'node:path';

import { DROP_TRUE } from '../peers/batchd.mjs';
import { floorScripts } from '../peers/floor.mjs';
import { rotate } from '../lib/pool.mjs';
import { runOk } from '../lib/proc.mjs';
import { runScript, throughputLoop, writeScript } from '../lib/scripts.mjs';
import { summarize } from '../lib/stats.mjs';

const PEERS = ['batchd', 'tsp', 'nq', 'batch', 'at', 'slurm'];

export async function throughput(ctx, pool) {
  const n = ctx.opts.quick ? 100 : 1000;
  const rounds = ctx.opts.rounds;
  const tools = [];
  for (const [name, body] of Object.entries(floorScripts(n))) {
    tools.push({
      name,
      label:
        name === 'floor-xargs'
          ? 'floor: `xargs -P2` of /bin/true'
          : 'floor: shell loop of /bin/true (serial)',
      file: writeScript(ctx, name, body),
    });
  }
  const peers = pool.selected(PEERS);
  // batchd's submission alone: its loop's printf and `mv` per job into a folder nobody watches. The
  // time a daemon that cost nothing would take is at least this.
  if (peers.some((p) => p.name === 'batchd'))
    tools.push({
      name: 'floor-drop',
      label: 'floor: the drop loop alone (printf + `mv` per job, no daemon)',
      drop: writeScript(ctx, 'floor-drop', throughputLoop(DROP_TRUE)),
    });
  for (const peer of peers) tools.push({ name: peer.name, label: peer.label, peer });
  const rows = new Map(
    tools.map((t) => [t.name, { name: t.name, label: t.label, totalMs: [], submitMs: [], drainMs: [] }]),
  );

  for (let round = 1; round <= rounds; round++) {
    const order = rotate(tools, round - 1);
    ctx.log(`throughput round ${round}/${rounds}: ${order.map((t) => t.name).join(', ')}`);
    for (const tool of order) {
      const row = rows.get(tool.name);
      if (row.unavailable !== undefined) continue;
      try {
        if (tool.file !== undefined) {
          const result = await runOk('bash', [tool.file]);
          row.totalMs.push(result.ms);
          continue;
        }
        if (tool.drop !== undefined) {
          const dir = path.join(ctx.root, 'floor-drop');
          mkdirSync(dir, { recursive: true });
          const session = { prefix: [], env: { ...process.env, IN: dir } };
          const result = await runScript(session, tool.drop, { N: String(n), ROUND: `t${round}` });
          row.totalMs.push(result.ms);
          ctx.log(`  floor-drop: ${(result.ms / 1000).toFixed(2)} s`);
          continue;
        }
        const got = await pool.get(tool.peer);
        if (got.unavailable !== undefined) {
          row.unavailable = got.unavailable;
          continue;
        }
        const session = got.session;
        const file = writeScript(ctx, `throughput-${tool.name}`, throughputLoop(session));
        await session.newRound();
        const t0 = performance.now();
        await runScript(session, file, { N: String(n), ROUND: `t${round}` }, timeoutFor(tool.name, n));
        const submitted = performance.now();
        await session.waitAllDone(n, timeoutFor(tool.name, n));
        const done = performance.now();
        row.totalMs.push(done - t0);
        row.submitMs.push(submitted - t0);
        row.drainMs.push(done - submitted);
        ctx.log(
          `  ${tool.name}: ${((done - t0) / 1000).toFixed(2)} s (submit ${((submitted - t0) / 1000).toFixed(2)} s)`,
        );
      } catch (error) {
        // One failed round (a crash, a timeout) costs that round, not the tool's other rounds.
        (row.failures ??= []).push(`round ${round}: ${error.message}`);
        ctx.log(`  ${tool.name}: failed: ${error.message}`);
      }
    }
  }
  return {
    n,
    rounds,
    rows: [...rows.values()].map((r) => ({
      ...r,
      error: r.totalMs.length === 0 ? r.failures?.[0] : undefined,
      total: summarize(r.totalMs),
      submit: summarize(r.submitMs),
      drain: summarize(r.drainMs),
    })),
  };
}

/** Slurm starts jobs on a scheduler timer: give it minutes, the others one. */
function timeoutFor(name, n) {
  return name === 'slurm' ? Math.max(120_000, n * 600) : Math.max(60_000, n * 200);
}
