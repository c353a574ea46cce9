import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { drop, jobDir, jobsIn, makeEnv, type TestEnv, waitFor } from '../helpers/env.ts';

const modeOf = (p: string): number => statSync(p).mode & 0o777;

/** Every file and folder under `dir` with its mode. */
function modesUnder(dir: string): { path: string; mode: number; folder: boolean }[] {
  const out: { path: string; mode: number; folder: boolean }[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    out.push({ path: p, mode: modeOf(p), folder: entry.isDirectory() });
    if (entry.isDirectory()) out.push(...modesUnder(p));
  }
  return out;
}

/**
 * Job data is private to the daemon's user and group: the folders and files the daemon writes and
 * the outputs its jobs write, whatever umask the daemon was started with.
 */
describe('file modes of job data', () => {
  let env: TestEnv | undefined;
  let daemon: DaemonProcess | undefined;
  afterEach(async () => {
    await daemon?.stop();
    env?.cleanup();
  });

  it("is run with a permissive umask, so the modes below are the daemon's doing", () => {
    expect(process.umask() & 0o077).not.toBe(0o077);
  });

  const runJob = async (config: Record<string, unknown>): Promise<string> => {
    env = makeEnv({ config, queues: { work: {} } });
    // Started with the test runner's umask (022, as from a shell or a unit file that sets none).
    daemon = await startDaemon(env.etc, env.spool);
    drop(env.spool, 'work', 'command: echo out > "$BATCHD_JOB_DIR/output.txt"; echo to-log\n', 'writes.yaml');
    const id = await waitFor(() => jobsIn(env?.spool ?? '', 'work', 'done')[0], 20_000, 'the job to finish');
    return jobDir(env.spool, 'work', 'done', id);
  };

  it('makes job folders 0750 and files 0640 by default, outputs of the job included', async () => {
    const dir = await runJob({});
    expect(modeOf(dir)).toBe(0o750);
    const entries = modesUnder(path.join(env?.spool ?? '', 'work'));
    expect(entries.filter((e) => e.folder && e.mode !== 0o750)).toEqual([]);
    // The user's own files (the drop kept as drop.yaml, queue.yaml) keep their modes: the 0750
    // folders around them keep others out.
    const written = entries.filter((e) => !e.folder && !/\/(drop\.yaml|queue\.yaml)$/.test(e.path));
    expect(written.length).toBeGreaterThan(3);
    expect(written.filter((e) => e.mode & 0o007)).toEqual([]);
    expect(modeOf(path.join(dir, 'state.yaml'))).toBe(0o640);
    expect(modeOf(path.join(dir, 'stdout.log'))).toBe(0o640);
  });

  it('takes another mode from storage.mode', async () => {
    const dir = await runJob({ storage: { mode: '0700' } });
    expect(modeOf(dir)).toBe(0o700);
    expect(modeOf(path.join(dir, 'state.yaml'))).toBe(0o600);
    expect(modeOf(path.join(dir, 'stdout.log'))).toBe(0o600);
  });
});
