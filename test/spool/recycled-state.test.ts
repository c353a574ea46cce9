import { spawn } from 'node:child_process';
import {
  existsSync,
  linkSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { writeFileRecycled } from '../../daemon/spool/atomic.ts';
import { type JobState, readJobState, writeJobState } from '../../daemon/spool/state-file.ts';
import { DAEMON_MAIN } from '../helpers/daemon-process.ts';

/** A state whose fields agree with each other, long or short, so a reader can tell a mix. */
function version(k: number): JobState {
  const history = Array.from({ length: k % 2 === 0 ? 40 : 2 }, (_, i) => ({
    at: new Date(0).toISOString(),
    from: 'queued' as const,
    to: 'running' as const,
    reason: `version ${k} entry ${i}`,
  }));
  return {
    id: 'j',
    queue: 'q',
    state: 'running',
    type: 'command',
    priority: k,
    order: k,
    after: [],
    submitted_at: new Date(0).toISOString(),
    attempts: history.length,
    retries: 0,
    results: [],
    history,
  };
}

describe('state files rewritten without freeing an inode', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('cycles two inodes between state.yaml and its spare, each write whole and exact', () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'batchd-recycled-'));
    const file = path.join(dir, 'state.yaml');
    const inodes = new Set<number>();
    for (let k = 0; k < 12; k++) {
      writeJobState(dir, version(k), false);
      // Long and short versions alternate: the spare is cut to the new length.
      expect(readFileSync(file, 'utf8')).toBe(JSON.stringify(version(k), null, 1) + '\n');
      expect(readJobState(dir)).toEqual(version(k));
      const st = statSync(file);
      expect(st.nlink).toBe(1);
      inodes.add(st.ino);
    }
    expect(inodes.size).toBe(2);
    expect(existsSync(path.join(dir, '.state.yaml.prev'))).toBe(false);
    const spare = statSync(path.join(dir, '.state.yaml.next'));
    expect(spare.nlink).toBe(1);
    expect(inodes.has(spare.ino)).toBe(true);
  });

  it('recovers from the leftovers of an interrupted write', () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'batchd-recycled-'));
    const file = path.join(dir, 'f.yaml');
    writeFileRecycled(file, 'one\n', false);
    // Interrupted after step 2: a second name of the file is left as .prev.
    linkSync(file, path.join(dir, '.f.yaml.prev'));
    writeFileSync(path.join(dir, '.f.yaml.next'), 'a longer stale half-written version\n');
    writeFileRecycled(file, 'two\n', false);
    expect(readFileSync(file, 'utf8')).toBe('two\n');
    expect(readFileSync(path.join(dir, '.f.yaml.next'), 'utf8')).toBe('one\n');
    expect(existsSync(path.join(dir, '.f.yaml.prev'))).toBe(false);
    expect(statSync(file).nlink).toBe(1);
  });

  it('never writes through a symbolic link put in place of its temp file', () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'batchd-recycled-'));
    const victim = path.join(dir, 'victim.txt');
    writeFileSync(victim, 'untouched\n');
    writeJobState(dir, version(1), false);
    rmSync(path.join(dir, '.state.yaml.next'), { force: true });
    symlinkSync(victim, path.join(dir, '.state.yaml.next'));
    writeJobState(dir, version(2), false);
    expect(readFileSync(victim, 'utf8')).toBe('untouched\n');
    expect(readJobState(dir)).toEqual(version(2));
    expect(lstatSync(path.join(dir, '.state.yaml.next')).isSymbolicLink()).toBe(false);
  });

  it('a reader in another process only ever reads whole versions', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'batchd-recycled-'));
    writeJobState(dir, version(0), false);
    const stop = path.join(dir, 'stop');
    const reader = `
      const { existsSync } = await import('node:fs');
      const { readJobState } = await import(${JSON.stringify(path.join(path.dirname(DAEMON_MAIN), 'spool', 'state-file.js'))});
      let reads = 0, mixed = 0, errors = 0;
      while (!existsSync(${JSON.stringify(stop)})) {
        try {
          const s = readJobState(${JSON.stringify(dir)});
          reads++;
          const k = s.order;
          if (s.priority !== k || s.history.length !== (k % 2 === 0 ? 40 : 2) || s.attempts !== s.history.length
              || s.history.some((h) => !h.reason.startsWith('version ' + k + ' '))) mixed++;
        } catch { errors++; }
      }
      console.log(JSON.stringify({ reads, mixed, errors }));`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', reader], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    await new Promise((r) => setTimeout(r, 300));
    for (let k = 1; k <= 3000; k++) {
      writeJobState(dir, version(k), false);
      if (k % 100 === 0) await new Promise((r) => setImmediate(r));
    }
    writeFileSync(stop, '');
    expect(await exited).toBe(0);
    const seen = JSON.parse(out) as { reads: number; mixed: number; errors: number };
    expect(seen.reads).toBeGreaterThan(100);
    expect(seen).toMatchObject({ mixed: 0, errors: 0 });
  });
});
