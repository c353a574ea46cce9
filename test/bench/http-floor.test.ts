// The submission floors (bench/lib/http-floor.mjs) bound what the README says about the HTTP
// targets, so they must do the work they claim: refuse a bad token, and for every 201 leave a whole
// job folder in queued/ and a journal line. Run here as real processes on loopback.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { afterAll, describe, expect, it } from 'vitest';

const FLOOR = path.join(import.meta.dirname, '..', '..', 'bench', 'lib', 'http-floor.mjs');
const root = mkdtempSync(path.join(os.tmpdir(), 'batchd-floor-'));
const children: ChildProcess[] = [];

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  rmSync(root, { recursive: true, force: true });
});

/** A job folder of the daemon's shape, the template the floor copies. */
function templateJob(): string {
  const id = '20261122T000000.000Z-tmplte';
  const dir = path.join(root, 'template', id);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'job.yaml'), `id: ${id}\ntype: command\nparams:\n  command: "true"\n`);
  writeFileSync(path.join(dir, 'state.yaml'), `id: ${id}\nattempts: 0\nhistory: []\n`);
  return dir;
}

async function start(kind: string, spool: string): Promise<string> {
  const child = spawn(process.execPath, [FLOOR, kind, 'tok-1', templateJob(), spool], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`http-floor ${kind} exited with ${code}`)));
    child.stdout?.setEncoding('utf8').once('data', (line: string) => resolve(Number(line.trim())));
  });
  return `http://127.0.0.1:${port}/queue/default`;
}

const post = (url: string, token: string, n: number): Promise<Response> =>
  fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ command: `echo ${n}` }),
  });

describe.each(['submit-node', 'submit-deferred'])('the %s floor', (kind) => {
  it('answers 201 only with the token, and leaves a whole folder and a journal line per job', async () => {
    const spool = path.join(root, kind);
    const url = await start(kind, spool);
    const refused = await post(url, 'wrong', 0);
    expect(refused.status).toBe(401);
    // More at once than the deferred floor lets lag behind (64), so some wait their turn.
    const answers = await Promise.all(Array.from({ length: 100 }, (_, n) => post(url, 'tok-1', n)));
    expect(answers.map((r) => r.status)).toEqual(Array.from({ length: 100 }, () => 201));
    const ids = await Promise.all(answers.map(async (r) => ((await r.json()) as { jobs: string[] }).jobs[0]));
    expect(new Set(ids).size).toBe(100);
    // The deferred floor makes folders after its answers: wait for them (bounded).
    const queued = path.join(spool, 'queued');
    for (let i = 0; i < 200 && readdirSync(queued).length < 100; i++) await sleep(25);
    // Exactly the answered jobs: the refused request left nothing.
    expect(readdirSync(queued).sort()).toEqual([...(ids as string[])].sort());
    for (const [n, id] of (ids as string[]).entries()) {
      const dir = path.join(queued, id);
      expect(readdirSync(dir).sort()).toEqual(['drop.json', 'job.yaml', 'state.yaml']);
      expect(readFileSync(path.join(dir, 'job.yaml'), 'utf8')).toContain(`id: ${id}\n`);
      expect(JSON.parse(readFileSync(path.join(dir, 'drop.json'), 'utf8'))).toEqual({ command: `echo ${n}` });
    }
    expect(readdirSync(path.join(spool, 'staging'))).toEqual([]);
    const lines = readFileSync(path.join(spool, 'journal.jsonl'), 'utf8').trim().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { id: string }).id).sort()).toEqual(
      [...(ids as string[])].sort(),
    );
  });
});
