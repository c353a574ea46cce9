import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';

import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createApi } from '../../daemon/api/app.ts';
import { readClientFile } from '../../daemon/client/config.ts';
import { Daemon } from '../../daemon/daemon.ts';
import { drop, jobDir, jobsIn, readLog, waitFor } from '../helpers/env.ts';
import { original } from './original.ts';

const EXAMPLE_SPOOL = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'spool-example');

/**
 * batchd's sample-configs/, unchanged (copied as they are into a throw-away config folder), loaded
 * by the daemon's own loader: batchd.yaml with its batchd-only fields, job types, hosts, controllers,
 * and client.yaml by the client's.
 */
describe("batchd's sample configs", () => {
  let root: string;
  let daemon: Daemon;
  const lines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'batchd-samples-'));
    const etc = path.join(root, 'etc');
    cpSync(original('sample-configs'), etc, { recursive: true });
    mkdirSync(path.join(root, 'spool'));
    // The project's example spool: its `command:` jobs must run with batchd's sample command type in force.
    cpSync(EXAMPLE_SPOOL, path.join(root, 'spool'), { recursive: true });
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n'))
          if (line.startsWith('{')) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    daemon = await Daemon.start({
      configDir: etc,
      spool: path.join(root, 'spool'),
      logger: pino({ level: 'info' }, sink),
    });
  }, 60_000);

  afterAll(async () => {
    await daemon?.stop();
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  });

  it('loads every file of sample-configs without an error', () => {
    const errors = lines.filter((l) => Number(l.level) >= 50 && String(l.msg).includes('configuration'));
    expect(errors).toEqual([]);
    const names = (folder: string): string[] =>
      daemon.config
        .list<{ name: string }>(folder)
        .map((i) => i.name)
        .sort();
    const stems = (folder: string): string[] =>
      readdirSync(original('sample-configs', folder))
        .map((f) => f.replace(/\.yaml$/, ''))
        .sort();
    expect(names('jobtypes')).toEqual(stems('jobtypes'));
    expect(names('hosts')).toEqual(stems('hosts'));
    expect(names('controllers')).toEqual(stems('controllers'));
    expect(daemon.config.daemon.dispatcher.poll_timeout).toBe(10_000);
    expect(daemon.config.daemon.storage.done_jobs).toBe(10);
  });

  it("maps batchd's web_client.allowed_origin to the CORS origin and keeps Basic authentication", () => {
    const manager = daemon.config.daemon.manager;
    expect(manager.cors).toEqual({ origins: ['http://localhost:9681'], credentials: true });
    expect(manager.auth).toMatchObject({ basic: true, header: false, static_salt: 'sdjf@OIH&OIHjihhih8YY' });
  });

  it('says, for each batchd-only field, what it did in batchd and what to use instead', () => {
    const api = createApi(daemon);
    api.close();
    const notes = lines
      .filter((l) => l.level === 40 && String(l.msg).startsWith('batchd.yaml: '))
      .map((l) => l.field);
    expect(notes).toEqual(
      expect.arrayContaining([
        'driver, connection_string, connection_pool_size',
        'metrics',
        'manager.auth.static_salt',
        'manager.web_client.path',
        'manager.web_client.allowed_origin',
      ]),
    );
    // It means what it meant in batchd: how long /batchd/monitor keeps its samples.
    expect(notes).not.toContain('storage.metric_records');
    expect(daemon.config.daemon.storage.metric_records).toBe(2);
    const salt = lines.find((l) => l.field === 'manager.auth.static_salt');
    expect(String(salt?.msg)).toContain('scrypt');
  });

  it("keeps the example spool's `command:` jobs running with batchd's sample command type in force", async () => {
    const type = daemon.config.jobType('command');
    expect(type?.template).toBe('$command $args'); // the sample's, not the built-in
    const warning = lines.find((l) => l.level === 40 && String(l.msg).startsWith('jobtypes/command:'));
    expect(String(warning?.msg)).toContain('inserted as shell code');
    const spool = path.join(root, 'spool');
    const hello = await waitFor(() => jobsIn(spool, 'default', 'done')[0], 30_000, 'hello.yaml to run');
    expect(readLog(jobDir(spool, 'default', 'done', hello), 'stdout.log')).toBe(
      `hello from batchd on ${hostname()}\n`,
    );
    // batchd's own way to submit to its sample type: both parameters, inserted as written.
    drop(spool, 'default', { type: 'command', params: { command: 'printf', args: "'%s-' a 'b c'" } });
    const done = await waitFor(
      () => (jobsIn(spool, 'default', 'done').length === 2 ? jobsIn(spool, 'default', 'done') : undefined),
      30_000,
      'the batchd-style job to run',
    );
    const outputs = done.map((id) => readLog(jobDir(spool, 'default', 'done', id), 'stdout.log'));
    expect(outputs).toContain('a-b c-');
  });

  it("reads client.yaml with the client's loader", async () => {
    const file = await readClientFile(original('sample-configs', 'client.yaml'), true);
    expect(file).toMatchObject({ manager_url: 'http://localhost:9681', queue: 'test' });
  });
});
