import { spawnSync } from 'node:child_process';
import {
  type FSWatcher,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  watch,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { newJobId } from '../../daemon/jobs/id.ts';
import type { JobSpec } from '../../daemon/jobs/spec.ts';
import { stageJobs, takeOrigin } from '../../daemon/spool/accept.ts';
import { SpoolLayout } from '../../daemon/spool/layout.ts';
import { HOST_TAG, SELF } from '../../daemon/spool/owner.ts';
import { recordMove } from '../../daemon/spool/transition.ts';
import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { drop, jobsIn, makeEnv, readState, type TestEnv, waitFor } from '../helpers/env.ts';

let env: TestEnv | undefined;
let daemon: DaemonProcess | undefined;
let watcher: FSWatcher | undefined;

afterEach(async () => {
  watcher?.close();
  await daemon?.stop();
  env?.cleanup();
  env = daemon = watcher = undefined;
});

/** The names that appeared in a folder while it was watched. */
function namesSeenIn(dir: string): Set<string> {
  const seen = new Set<string>();
  watcher = watch(dir, (_event, name) => {
    if (typeof name === 'string') seen.add(name);
  });
  return seen;
}

const idOf = (ids: string[], slug: string): string => ids.find((id) => id.endsWith(`-${slug}`)) ?? '';

describe('a job that can start as it arrives', () => {
  it('is committed straight into running/, and one that must wait goes through queued/', async () => {
    env = makeEnv({ queues: { default: null }, config: { dispatcher: { workers: 1 } } });
    daemon = await startDaemon(env.etc, env.spool);
    const seen = namesSeenIn(path.join(env.spool, 'default', 'queued'));

    drop(env.spool, 'default', { command: 'sleep 0.5' }, 'first.yaml');
    await waitFor(() => jobsIn(env?.spool ?? '', 'default', 'running').length === 1 || undefined);
    drop(env.spool, 'default', { command: 'true' }, 'second.yaml'); // the only worker is busy
    const done = await waitFor(() => {
      const ids = jobsIn(env?.spool ?? '', 'default', 'done');
      return ids.length === 2 ? ids : undefined;
    });

    const first = idOf(done, 'first');
    const second = idOf(done, 'second');
    expect(seen.has(second)).toBe(true);
    expect(seen.has(first)).toBe(false);
    // Both records tell the same story: accepted, started, finished, one attempt.
    for (const id of [first, second]) {
      const state = readState(env.spool, 'default', 'done', id);
      expect(state.history.map((h) => [h.from, h.to, h.reason])).toEqual([
        [null, 'queued', 'accepted (drop)'],
        ['queued', 'running', 'started'],
        ['running', 'done', 'finished'],
      ]);
      expect(state.attempts).toBe(1);
    }
  });

  it('left uncommitted by a crash, is recovered as an interrupted run and runs again once, never lost', async () => {
    env = makeEnv({ queues: { default: null } });
    const layout = new SpoolLayout(env.spool);
    for (const folder of ['incoming', 'staging'] as const)
      mkdirSync(layout.folder('default', folder), { recursive: true });
    const ledger = path.join(env.root, 'ran');
    const file = path.join(layout.folder('default', 'incoming'), 'stranded.yaml');
    writeFileSync(file, `command: "echo ran >> ${ledger}"\n`);
    const spec: JobSpec = {
      id: newJobId('stranded'),
      queue: 'default',
      type: 'command',
      params: { command: `echo ran >> ${ledger}` },
      priority: 0,
      after: [],
      submitted_at: new Date().toISOString(),
      source: { via: 'drop', file: 'stranded.yaml' },
    };
    // A dispatcher that has since died claimed it as it arrived, and took the drop: the crash came
    // before the commit, the rename of its staging folder into running/.
    const dead = spawnSync('true').pid;
    const origin = { kind: 'drop' as const, file };
    const staged = stageJobs(layout, 'default', [spec], origin, (state) => {
      state.attempts = state.retries = 1;
      state.running = {
        attempt: 1,
        started_at: new Date().toISOString(),
        host: 'localhost',
        owner: { ...SELF, pid: dead },
      };
      recordMove(state, 'queued', 'running', 'started');
    });
    if (staged === undefined) throw new Error('nothing staged');
    expect(takeOrigin(staged, origin)).toBe(true);
    renameSync(staged.dir, path.join(path.dirname(staged.dir), `${HOST_TAG}-${dead}-${spec.id}`));

    daemon = await startDaemon(env.etc, env.spool);
    await waitFor(() => jobsIn(env?.spool ?? '', 'default', 'done').length === 1 || undefined);

    // An interruption is not the job's own failure: it runs again, once, and says why.
    const state = readState(env.spool, 'default', 'done', spec.id);
    expect(state.interruptions).toBe(1);
    expect(state.history.map((h) => h.to)).toEqual(['queued', 'running', 'queued', 'running', 'done']);
    expect(readdirSync(layout.folder('default', 'staging'))).toEqual([]);
    for (const folder of ['incoming', 'queued', 'running', 'failed'])
      expect(jobsIn(env.spool, 'default', folder)).toEqual([]);
    expect(readFileSync(ledger, 'utf8')).toBe('ran\n');
  });
});
