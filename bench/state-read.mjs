// Reads 10,000 job records (state.yaml) as start-up does, and prints the time per record.
// Usage: node bench/state-read.mjs [records, default 10000] [dist folder…, default dist]
// Several builds (a copy of dist from before a change, and dist) are run in turns in one process.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const n = Number(process.argv[2] ?? 10_000);
const builds = process.argv.length > 3 ? process.argv.slice(3) : ['dist'];
const readers = [];
for (const dist of builds) {
  const url = pathToFileURL(path.join(path.resolve(dist), 'daemon/spool/state-file.js')).href;
  readers.push({ dist, read: (await import(url)).readJobState });
}

const root = mkdtempSync(path.join(os.tmpdir(), 'batchd-state-read-'));
const at = '2026-12-07T04:00:00.000Z';
const owner = { hostname: 'h', boot_id: 'b', pid: 1 };
const dirs = [];
for (let i = 0; i < n; i++) {
  const id = `20261207T040000.${String(i % 1000).padStart(3, '0')}Z-${String(i).padStart(6, '0')}`;
  const dir = path.join(root, id);
  mkdirSync(dir);
  const finished = i % 4 === 3;
  const result = {
    attempt: 1,
    outcome: 'exit-code',
    exit_code: 1,
    signal: null,
    host: 'localhost',
    started_at: at,
    ended_at: at,
    duration_ms: 5,
  };
  const record = {
    id,
    queue: 'q',
    state: finished ? 'failed' : 'queued',
    type: 'command',
    priority: 0,
    order: i,
    after: [],
    submitted_at: at,
    attempts: finished ? 1 : 0,
    retries: 0,
    ...(finished ? { last: result } : {}),
    results: finished ? [result] : [],
    history: [
      { at, from: null, to: 'queued', queue: 'q', reason: 'submitted' },
      ...(finished
        ? [
            { at, from: 'queued', to: 'running', reason: 'started' },
            { at, from: 'running', to: 'failed', reason: 'exit code 1' },
          ]
        : []),
    ],
  };
  void owner;
  writeFileSync(path.join(dir, 'state.yaml'), JSON.stringify(record, null, 1) + '\n');
  dirs.push(dir);
}
// Files written more than a second ago are read in one pass (state-file.ts, readWhole).
await new Promise((resolve) => setTimeout(resolve, 1100));
const run = (read, locked) => {
  const start = process.hrtime.bigint();
  for (const dir of dirs) read(dir, { locked });
  return Number(process.hrtime.bigint() - start) / 1e6;
};
for (const locked of [false, true]) {
  const times = readers.map(() => []);
  for (const { read } of readers) run(read, locked); // warm up
  for (let round = 0; round < 5; round++) readers.forEach(({ read }, i) => times[i].push(run(read, locked)));
  readers.forEach(({ dist }, i) => {
    const median = times[i].sort((a, b) => a - b)[2];
    const each = ((median * 1000) / n).toFixed(1);
    console.log(
      `${dist} ${locked ? 'locked  ' : 'unlocked'} ${n} records: median ${median.toFixed(1)} ms (${each} µs each)`,
    );
  });
}
rmSync(root, { recursive: true, force: true });
