import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';

import { EventBus } from '../../daemon/events.ts';
import { SpoolLayout } from '../../daemon/spool/layout.ts';
import { QueueRegistry } from '../../daemon/spool/queues.ts';

/**
 * A watcher event or a scan can report a queue folder after it was deleted (the API's DELETE
 * /queue renames it away, then removes it). Taking such a queue must not make its folder again.
 */
describe('a queue seen after it was deleted', () => {
  let root = '';
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const registry = (): QueueRegistry => {
    root = mkdtempSync(path.join(os.tmpdir(), 'batchd-queues-'));
    return new QueueRegistry(new SpoolLayout(root), new EventBus(() => undefined), pino({ level: 'silent' }));
  };

  it('is not made again by a late event, and is not taken', () => {
    const queues = registry();
    mkdirSync(path.join(root, 'cli'));
    expect(queues.ensure('cli', false)).toBe(true);
    expect(existsSync(path.join(root, 'cli', 'queued'))).toBe(true);
    // Deleted as the API does it, then forgotten; the watcher's addDir for it arrives late.
    renameSync(path.join(root, 'cli'), path.join(root, '.deleted-cli'));
    rmSync(path.join(root, '.deleted-cli'), { recursive: true });
    queues.remove('cli');
    expect(queues.ensure('cli', false)).toBe(false);
    expect(existsSync(path.join(root, 'cli'))).toBe(false);
    expect(queues.has('cli')).toBe(false);
    expect(queues.scan()).toEqual([]);
  });

  it('is still made by the daemon when asked to (the default queue at start)', () => {
    const queues = registry();
    expect(queues.ensure('default')).toBe(true);
    expect(existsSync(path.join(root, 'default', 'incoming'))).toBe(true);
    expect(queues.has('default')).toBe(true);
  });
});
