import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';

import { ConfigStore } from '../../daemon/config/store.ts';
import { EventBus } from '../../daemon/events.ts';

/**
 * The rescan's backstop for an edit in the config folder that the watcher never reported
 * (inotify drops events when its queue overflows): `refresh` reloads every file that changed,
 * appeared or went away since it was last read. No watcher runs here, so only `refresh` can.
 */
describe('configuration refreshed by the rescan', () => {
  let etc = '';
  afterEach(() => rmSync(etc, { recursive: true, force: true }));

  const setUp = (): { config: ConfigStore; reloaded: string[]; invalid: string[] } => {
    etc = mkdtempSync(path.join(os.tmpdir(), 'batchd-config-refresh-'));
    mkdirSync(path.join(etc, 'jobtypes'));
    mkdirSync(path.join(etc, 'schedules'));
    write('batchd.yaml', 'dispatcher: { workers: 2 }\n', 5_000);
    write('jobtypes/greet.yaml', 'template: echo v1 $who\nparams:\n  - name: who\n', 5_000);
    const events = new EventBus(() => undefined);
    const reloaded: string[] = [];
    const invalid: string[] = [];
    events.on('config:reloaded', ({ file }) => reloaded.push(path.relative(etc, file)));
    events.on('config:invalid', ({ file }) => invalid.push(path.relative(etc, file)));
    const config = new ConfigStore(etc, events, pino({ level: 'silent' }));
    reloaded.length = 0; // the first reads
    return { config, reloaded, invalid };
  };
  /** Written with a time `agoMs` in the past, as an edit that has settled. */
  const write = (rel: string, text: string, agoMs: number): void => {
    const file = path.join(etc, rel);
    writeFileSync(file, text);
    const then = new Date(Date.now() - agoMs);
    utimesSync(file, then, then);
  };

  it('loads a new file, reloads a changed one once, and drops a deleted one', () => {
    const { config, reloaded } = setUp();
    expect(config.jobType('greet')?.template).toBe('echo v1 $who');
    config.refresh(500);
    expect(reloaded).toEqual([]); // nothing changed since the first read

    write('schedules/night.yaml', 'time: [{ begin: "22:00", end: "06:00" }]\n', 5_000);
    write('jobtypes/greet.yaml', 'template: echo v2 $who\nparams:\n  - name: who\n', 5_000);
    config.refresh(500);
    expect(config.schedule('night')).toBeDefined();
    expect(config.jobType('greet')?.template).toBe('echo v2 $who');
    expect(reloaded.sort()).toEqual(['jobtypes/greet.yaml', 'schedules/night.yaml']);
    config.refresh(500);
    expect(reloaded).toHaveLength(2);

    rmSync(path.join(etc, 'jobtypes', 'greet.yaml'));
    config.refresh(500);
    expect(config.jobType('greet')).toBeUndefined();
    expect(config.jobType('command')).toBeDefined(); // the built-in is not a file and stays
    expect(reloaded).toHaveLength(3);
    config.refresh(500);
    expect(reloaded).toHaveLength(3);
  });

  it('reloads batchd.yaml, and reports an invalid edit once while the last good version stays', () => {
    const { config, reloaded, invalid } = setUp();
    expect(config.daemon.dispatcher.workers).toBe(2);
    write('batchd.yaml', 'dispatcher: { workers: 3 }\n', 5_000);
    config.refresh(500);
    expect(config.daemon.dispatcher.workers).toBe(3);
    expect(reloaded).toEqual(['batchd.yaml']);

    write('jobtypes/greet.yaml', 'template: echo v3\nparams: 5\n', 5_000);
    config.refresh(500);
    config.refresh(500);
    expect(invalid).toEqual(['jobtypes/greet.yaml']);
    expect(config.jobType('greet')?.template).toBe('echo v1 $who');
  });

  it('waits for a file written within the settle time (a write that may still be going on)', () => {
    const { config } = setUp();
    write('jobtypes/fresh.yaml', 'template: echo fresh\n', 0);
    config.refresh(60_000);
    expect(config.jobType('fresh')).toBeUndefined();
    config.refresh(0);
    expect(config.jobType('fresh')?.template).toBe('echo fresh');
  });
});
