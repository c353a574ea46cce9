import { spawnSync } from 'node:child_process';
import {
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';

import { newJobId } from '../../daemon/jobs/id.ts';
import { SpoolLayout } from '../../daemon/spool/layout.ts';
import { JobLocks, LockFiles } from '../../daemon/spool/lock.ts';
import { SparePool } from '../../daemon/spool/spares.ts';
import { HOST_TAG } from '../../daemon/spool/owner.ts';

const STALE_MS = 2_000;
/** Job ids as the daemon makes them, by a short name. */
const ids = new Map<string, string>();
const idOf = (name: string): string => ids.get(name) ?? ids.set(name, newJobId(name)).get(name) ?? name;

describe('claim locks made from a pool of spare files', () => {
  let root = '';
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const setUp = (): { layout: SpoolLayout; locks: () => JobLocks } => {
    root = mkdtempSync(path.join(os.tmpdir(), 'batchd-locks-'));
    const layout = new SpoolLayout(root);
    return {
      layout,
      locks: () => new JobLocks(layout, STALE_MS, pino({ level: 'silent' }), () => undefined),
    };
  };
  const pools = (): string[] =>
    readdirSync(path.join(root, '.locks')).filter((n) => n.startsWith('.spares-'));

  it('takes and releases locks without creating a file after the first', async () => {
    const { layout, locks } = setUp();
    const mine = locks();
    const inodes = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const id = idOf(`job-${i % 3}`);
      const release = await mine.acquire(id);
      expect(release).toBeDefined();
      const lock = statSync(layout.lockPath(id));
      expect(lock.isFile()).toBe(true);
      expect(lock.nlink).toBe(2);
      expect(Date.now() - lock.mtimeMs).toBeLessThan(STALE_MS);
      inodes.add(lock.ino);
      expect(await mine.isHeld(id)).toBe(true);
      await release?.();
      expect(existsSync(layout.lockPath(id))).toBe(false);
    }
    expect(inodes.size).toBe(1);
    const [pool] = pools();
    expect(readdirSync(path.join(root, '.locks', pool ?? ''))).toEqual(['0']);
    // An orderly stop removes the pool, but not while a lock is held.
    const held = await mine.acquire(idOf('held'));
    mine.close();
    expect(pools()).toEqual([pool]);
    await held?.();
    mine.close();
    expect(readdirSync(path.join(root, '.locks'))).toEqual([]);
  });

  it('stamps a new lock once (no second utimes for the precision probe), and its refreshes still stamp it', async () => {
    const { layout } = setUp();
    let lost = 0;
    const mine = new JobLocks(layout, STALE_MS, pino({ level: 'silent' }), () => (lost += 1));
    const id = idOf('stamped');
    const before = Date.now();
    const release = await mine.acquire(id);
    const after = Date.now();
    // proper-lockfile's probe would have set the next whole second + 5 ms: always ahead of now.
    // (A Date's milliseconds pass through seconds as a double: 208 may come back as 207.999.)
    const taken = Math.round(statSync(layout.lockPath(id)).mtimeMs);
    expect(taken).toBeGreaterThanOrEqual(before);
    expect(taken).toBeLessThanOrEqual(after);
    // Refreshed every second (proper-lockfile's shortest interval): the mtime moves on, and the
    // lock is not taken for lost.
    await new Promise((resolve) => setTimeout(resolve, 1_300));
    expect(statSync(layout.lockPath(id)).mtimeMs).toBeGreaterThan(taken);
    expect(lost).toBe(0);
    await release?.();
    expect(existsSync(layout.lockPath(id))).toBe(false);
  });

  it('keeps a held lock from another dispatcher until it is released', async () => {
    const { locks } = setUp();
    const [a, b] = [locks(), locks()];
    const releaseA = await a.acquire(idOf('shared'));
    expect(releaseA).toBeDefined();
    expect(await b.acquire(idOf('shared'))).toBeUndefined();
    await releaseA?.();
    const releaseB = await b.acquire(idOf('shared'));
    expect(releaseB).toBeDefined();
    expect(await a.acquire(idOf('shared'))).toBeUndefined();
    await releaseB?.();
    // Two spares in use at once, one in each pool.
    expect(pools()).toHaveLength(2);
  });

  it('takes over a stale lock, a lock folder of an earlier version included', async () => {
    const { layout, locks } = setUp();
    const mine = locks();
    const old = new Date(Date.now() - 10 * STALE_MS);
    mkdirSync(layout.lockPath(idOf('from-a-folder')));
    utimesSync(layout.lockPath(idOf('from-a-folder')), old, old);
    writeFileSync(layout.lockPath(idOf('from-a-file')), '');
    utimesSync(layout.lockPath(idOf('from-a-file')), old, old);
    for (const id of [idOf('from-a-folder'), idOf('from-a-file')]) {
      expect(await mine.isHeld(id)).toBe(false);
      const release = await mine.acquire(id);
      expect(release).toBeDefined();
      expect(statSync(layout.lockPath(id)).isFile()).toBe(true);
      await release?.();
      expect(existsSync(layout.lockPath(id))).toBe(false);
    }
  });

  it('takes new spares when its pool was removed under it', async () => {
    const { layout, locks } = setUp();
    const mine = locks();
    const first = await mine.acquire(idOf('before'));
    await first?.();
    rmSync(path.join(root, '.locks', pools()[0] ?? ''), { recursive: true });
    const release = await mine.acquire(idOf('after'));
    expect(release).toBeDefined();
    expect(statSync(layout.lockPath(idOf('after'))).nlink).toBe(2);
    await release?.();
  });

  it('makes lock folders where the file system has no hard links', () => {
    const { layout } = setUp();
    mkdirSync(path.join(root, '.locks'));
    let links = 0;
    const files = new LockFiles(new SparePool(path.join(root, '.locks', '.spares-test')), () => {
      links += 1;
      throw Object.assign(new Error('link: operation not supported'), { code: 'ENOTSUP' });
    });
    for (const name of ['one', 'two']) {
      const lock = layout.lockPath(idOf(name));
      files.mkdirSync(lock);
      expect(statSync(lock).isDirectory()).toBe(true);
      expect(() => files.mkdirSync(lock)).toThrow(/EEXIST/);
      files.rmdirSync(lock);
      expect(existsSync(lock)).toBe(false);
    }
    expect(links).toBe(1);
  });

  it('removes the pool of a dispatcher that died on this machine, and only that', () => {
    const { locks } = setUp();
    const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
    const deadPool = path.join(root, '.locks', `.spares-${HOST_TAG}-${dead.stdout.trim()}-aaaaaa`);
    const livePool = path.join(root, '.locks', `.spares-${HOST_TAG}-${process.pid}-bbbbbb`);
    for (const pool of [deadPool, livePool]) {
      mkdirSync(pool, { recursive: true });
      writeFileSync(path.join(pool, '0'), '');
    }
    locks();
    expect(existsSync(deadPool)).toBe(false);
    expect(existsSync(path.join(livePool, '0'))).toBe(true);
  });

  it('breaks a dead owner’s lock once: a second dispatcher recovering the same job leaves the first one’s lock alone', async () => {
    const { layout, locks } = setUp();
    const id = idOf('orphan');
    // The dead owner's lock: a second name of a spare in its pool, as its lock.ts made it.
    const pid = Number(spawnSync('true').pid);
    const owner = { hostname: os.hostname(), boot_id: 'b', pid };
    const first = locks();
    const second = locks();
    const deadPool = path.join(root, '.locks', `.spares-${HOST_TAG}-${pid}-cccccc`);
    mkdirSync(deadPool, { recursive: true });
    writeFileSync(path.join(deadPool, '0'), '');
    linkSync(path.join(deadPool, '0'), layout.lockPath(id));
    expect(await first.acquire(id)).toBeUndefined(); // fresh: held, as far as anyone can tell

    first.breakDead(id, owner);
    const release = await first.acquire(id);
    expect(release).toBeDefined();
    const held = statSync(layout.lockPath(id)).ino;
    // The second read the same dead claim a moment before, and breaks what it takes for its lock.
    second.breakDead(id, owner);
    expect(statSync(layout.lockPath(id)).ino).toBe(held);
    expect(await second.acquire(id)).toBeUndefined();
    expect(readdirSync(path.join(root, '.locks')).filter((n) => n.includes('.breaking-'))).toEqual([]);
    await release?.();
    expect(existsSync(layout.lockPath(id))).toBe(false);

    // A dispatcher that starts on this machine removes the dead owner's pool: its lock has one name left.
    linkSync(path.join(deadPool, '0'), layout.lockPath(id));
    locks();
    expect(existsSync(deadPool)).toBe(false);
    second.breakDead(id, owner);
    expect(existsSync(layout.lockPath(id))).toBe(false);
  });
});
