#!/usr/bin/env node
// A floor for the acceptance of a 100,000-job task (docs/performance.md): a bare Node process that
// makes what a task's acceptance keeps per job (its spec and its record, the same fields) and writes
// the same bytes (`specs.jsonl`, one JSON line per job, and the `task.yaml` listing of every id)
// through one 1 MiB buffer; no file read, no check, no rename. Then the same 33 MB written alone.
// Rounds after the first (the code is compiled by then) are printed, CPU time beside wall time.
//
//   node bench/big-task-accept-floor.mjs [--jobs 100000] [--rounds 3]
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { jobs: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '3' } },
});
const n = Number(values.jobs);
const rounds = Number(values.rounds);
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** Write the pieces `each` puts through one buffer, as they are made. */
function writeChunked(file, each) {
  const fd = openSync(file, 'w');
  const buffer = Buffer.allocUnsafe(1 << 20);
  let used = 0;
  each((text) => {
    if (used + text.length * 3 > buffer.length) {
      writeSync(fd, buffer, 0, used);
      used = 0;
    }
    used += buffer.write(text, used);
  });
  writeSync(fd, buffer, 0, used);
  closeSync(fd);
}

function cpuMs(since) {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'batchd-task-floor-'));
let kept;
try {
  for (let round = 0; round < rounds; round++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const at = new Date().toISOString();
    const stamp = at.replace(/[-:]/g, '');
    const source = { via: 'drop', file: 'big.yaml' };
    const after = [];
    const firstOrder = Date.now() * 1000;
    const jobs = new Array(n);
    for (let i = 0; i < n; i++) {
      let random = '';
      for (let k = 0, v = i * 7919; k < 6; k++, v = Math.floor(v / 36)) random += ALPHABET[v % 36];
      const id = `${stamp}-${random}-big`;
      const spec = {
        id,
        queue: 'hold',
        type: 'bench-true',
        params: { n: i + 1 },
        host: undefined,
        priority: 0,
        not_before: undefined,
        after,
        notes: undefined,
        name: undefined,
        task: { name: 'big', index: i, count: n },
        timeout_ms: undefined,
        limits: undefined,
        cluster: undefined,
        submitted_at: at,
        submitted_by: undefined,
        source,
      };
      const state = {
        id,
        queue: 'hold',
        state: 'queued',
        type: 'bench-true',
        host: undefined,
        priority: 0,
        order: firstOrder + i,
        not_before: undefined,
        after,
        task: 'big',
        timeout_ms: undefined,
        submitted_at: at,
        attempts: 0,
        retries: 0,
        results: [],
        history: [{ at, from: null, to: 'queued', reason: 'accepted (drop)' }],
      };
      jobs[i] = { spec, state };
    }
    writeChunked(path.join(dir, 'specs.jsonl'), (put) => {
      for (const job of jobs) put(JSON.stringify({ order: job.state.order, spec: job.spec }) + '\n');
    });
    writeChunked(path.join(dir, 'task.yaml'), (put) => {
      put('{\n "jobs": [\n');
      for (const job of jobs) put(`  ${JSON.stringify(job.spec.id)},\n`);
      put(' ]\n}\n');
    });
    const madeMs = performance.now() - t0;
    const madeCpu = cpuMs(c0);
    kept = jobs; // as the daemon keeps them (the task's folders are made from them)
    const bytes = Buffer.alloc(33_000_000, 'a');
    const t1 = performance.now();
    const c1 = process.cpuUsage();
    const fd = openSync(path.join(dir, 'bytes'), 'w');
    for (let at = 0; at < bytes.length; at += 1 << 20)
      writeSync(fd, bytes, at, Math.min(1 << 20, bytes.length - at));
    closeSync(fd);
    if (round > 0)
      process.stdout.write(
        `round ${round}: ${n} specs and records made and written ${madeMs.toFixed(0)} ms ` +
          `(CPU ${madeCpu.toFixed(0)} ms); 33 MB written alone ${(performance.now() - t1).toFixed(0)} ms ` +
          `(CPU ${cpuMs(c1).toFixed(0)} ms)\n`,
      );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (kept.length !== n) process.exitCode = 1;
