import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { jobDir, jobsIn, makeEnv, type TestEnv, waitFor } from '../helpers/env.ts';
import { entriesOf, sleep } from '../helpers/spool-checks.ts';

const STABLE_S = 0.6;

/**
 * A drop written in place (not renamed in) is only taken once complete: the daemon may not run
 * the prefix it happens to see while the writer pauses, even when that prefix is a valid job.
 */
describe('a job file written in place slowly', () => {
  let env: TestEnv;
  let daemon: DaemonProcess;
  let incoming: string;

  beforeAll(async () => {
    env = makeEnv({ queues: { default: null }, config: { dispatcher: { stable_time: STABLE_S } } });
    incoming = path.join(env.spool, 'default', 'incoming');
    daemon = await startDaemon(env.etc, env.spool);
  });
  afterAll(async () => {
    await daemon.stop();
    env.cleanup();
  });

  /** Write `chunks` into incoming/<name> through one open file, pausing between writes. */
  async function writeSlowly(name: string, chunks: string[], pauseMs: number): Promise<void> {
    const fd = openSync(path.join(incoming, name), 'w');
    try {
      for (const [i, chunk] of chunks.entries()) {
        if (i > 0) await sleep(pauseMs);
        writeSync(fd, chunk);
      }
    } finally {
      closeSync(fd);
    }
  }

  async function onlyDoneJobWithSlug(slug: string): Promise<string> {
    const ids = await waitFor(() => {
      const done = jobsIn(env.spool, 'default', 'done').filter((id) => id.endsWith(`-${slug}`));
      return done.length > 0 ? done : undefined;
    });
    // Long enough for a second, duplicate acceptance to show up if there were one.
    await sleep(STABLE_S * 1000 + 300);
    const all = ['queued', 'running', 'done', 'failed']
      .flatMap((s) => jobsIn(env.spool, 'default', s))
      .filter((id) => id.endsWith(`-${slug}`));
    expect(all).toEqual(ids);
    expect(ids).toHaveLength(1);
    return ids[0] ?? '';
  }

  it('whose every prefix is a valid job runs the whole file, once', async () => {
    // Each prefix ending at a chunk boundary is itself a valid job: only stability tells them apart.
    const chunks = ['command: echo part1', '; echo part2', '; echo part3\n'];
    await writeSlowly('valid-prefixes.yaml', chunks, 250);
    const id = await onlyDoneJobWithSlug('valid-prefixes');
    const dir = jobDir(env.spool, 'default', 'done', id);
    expect(readFileSync(path.join(dir, 'stdout.log'), 'utf8')).toBe('part1\npart2\npart3\n');
    expect(readFileSync(path.join(dir, 'drop.yaml'), 'utf8')).toBe(chunks.join(''));
  });

  it('whose prefixes are invalid is not rejected while the writer pauses', async () => {
    // An unterminated quote, then a key without a value: YAML errors at every pause.
    const chunks = ['notes: "unterminated', ' string"\ncom', 'mand: echo whole file\n'];
    await writeSlowly('invalid-prefixes.yaml', chunks, 250);
    const id = await onlyDoneJobWithSlug('invalid-prefixes');
    expect(readFileSync(path.join(jobDir(env.spool, 'default', 'done', id), 'stdout.log'), 'utf8')).toBe(
      'whole file\n',
    );
    expect(entriesOf(env.spool, 'default', 'rejected')).toEqual([]);
  });

  it('larger than one write (over 4 KiB) runs complete', async () => {
    const notes = 'n'.repeat(5000);
    const chunks = [`notes: "${notes}"\ncommand: echo big-a`, ' '.repeat(2000), '; echo big-b\n'];
    await writeSlowly('large-slow.yaml', chunks, 250);
    const id = await onlyDoneJobWithSlug('large-slow');
    expect(readFileSync(path.join(jobDir(env.spool, 'default', 'done', id), 'stdout.log'), 'utf8')).toBe(
      'big-a\nbig-b\n',
    );
  });
});
