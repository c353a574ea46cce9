import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

import { EventBus } from '../../daemon/events.ts';
import { SpoolLayout } from '../../daemon/spool/layout.ts';
import { QueueRegistry } from '../../daemon/spool/queues.ts';

/**
 * The rescan's backstop for a `queue.yaml` edit the watcher never reported (inotify drops events
 * when its queue overflows): `refresh` reloads a queue whose file changed since it was read.
 */
describe('queue settings refreshed by the rescan', () => {
  let root = '';
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const setUp = (): { queues: QueueRegistry; file: string; changes: () => number } => {
    root = mkdtempSync(path.join(os.tmpdir(), 'batchd-queues-'));
    const events = new EventBus(() => undefined);
    let changes = 0;
    events.on('queue:changed', () => (changes += 1));
    const queues = new QueueRegistry(new SpoolLayout(root), events, pino({ level: 'silent' }));
    queues.ensure('batch');
    return { queues, file: path.join(root, 'batch', 'queue.yaml'), changes: () => changes };
  };
  /** Written with a time `agoMs` in the past, as an edit that has settled. */
  const write = (file: string, settings: Record<string, unknown>, agoMs: number): void => {
    writeFileSync(file, stringify(settings));
    const then = new Date(Date.now() - agoMs);
    utimesSync(file, then, then);
  };

  it('reloads a queue whose queue.yaml changed unseen, once, and leaves an unchanged one alone', () => {
    const { queues, file, changes } = setUp();
    expect(queues.settings('batch').enabled).toBe(true);
    const before = changes();
    queues.refresh('batch', 500);
    expect(changes()).toBe(before); // no file, as at the last read: nothing to do

    write(file, { title: 'Batch', enabled: false }, 5_000);
    queues.refresh('batch', 500);
    expect(queues.settings('batch')).toMatchObject({ title: 'Batch', enabled: false });
    expect(changes()).toBe(before + 1);
    queues.refresh('batch', 500);
    expect(changes()).toBe(before + 1);

    // In-memory changes (autostart) stay until the file itself changes again.
    queues.override('batch', { enabled: true });
    queues.refresh('batch', 500);
    expect(queues.settings('batch').enabled).toBe(true);

    write(file, { title: 'Batch', enabled: false, autostart_job_count: 2 }, 5_000);
    queues.refresh('batch', 500);
    expect(queues.settings('batch')).toMatchObject({ enabled: false, autostart_job_count: 2 });

    rmSync(file);
    queues.refresh('batch', 500);
    expect(queues.settings('batch').enabled).toBe(true);
    expect(queues.settings('batch').title).toBeUndefined();
  });

  it('waits for a file written within the settle time (a write that may still be going on)', () => {
    const { queues, file } = setUp();
    write(file, { title: 'Fresh' }, 0);
    queues.refresh('batch', 60_000);
    expect(queues.settings('batch').title).toBeUndefined();
    queues.refresh('batch', 0);
    expect(queues.settings('batch').title).toBe('Fresh');
  });
});
