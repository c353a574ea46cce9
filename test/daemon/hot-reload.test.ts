import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { drop, jobDir, jobsIn, makeEnv, type TestEnv, waitFor } from '../helpers/env.ts';
import { sleep } from '../helpers/spool-checks.ts';

describe('hot reload of a job type file', () => {
  let env: TestEnv;
  let daemon: DaemonProcess;
  let typeFile: string;
  let runs = 0;

  beforeAll(async () => {
    env = makeEnv({ queues: { default: null } });
    typeFile = path.join(env.etc, 'jobtypes', 'greet.yaml');
    env.writeConfig('jobtypes/greet.yaml', 'template: echo v1 $who\nparams:\n  - name: who\n');
    daemon = await startDaemon(env.etc, env.spool);
  });
  afterAll(async () => {
    await daemon.stop();
    env.cleanup();
  });

  /** Run one greet job and return its output. */
  async function greet(): Promise<string> {
    const name = `greet-${++runs}`;
    drop(env.spool, 'default', { type: 'greet', params: { who: 'x' } }, `${name}.yaml`);
    const id = await waitFor(
      () => jobsIn(env.spool, 'default', 'done').find((i) => i.endsWith(`-${name}`)),
      15_000,
      name,
    );
    return readFileSync(path.join(jobDir(env.spool, 'default', 'done', id), 'stdout.log'), 'utf8');
  }

  const loads = (): number => daemon.records().filter((r) => r.msg === 'jobtypes/greet loaded').length;
  const invalids = (): Record<string, unknown>[] =>
    daemon.records().filter((r) => typeof r.msg === 'string' && r.msg.startsWith('invalid configuration'));

  it('uses the new template after an edit', async () => {
    expect(await greet()).toBe('v1 x\n');
    const before = loads();
    writeFileSync(typeFile, 'template: echo v2 $who\nparams:\n  - name: who\n');
    await waitFor(() => loads() > before, 10_000, 'the reload');
    expect(await greet()).toBe('v2 x\n');
  });

  it('logs an invalid edit with file, line and field, and keeps the last good version', async () => {
    const before = invalids().length;
    writeFileSync(typeFile, 'template: echo v3 $who\nparams:\n  - name: who\n    type: Strng\n');
    const [record] = await waitFor(() => {
      const found = invalids().slice(before);
      return found.length > 0 ? found : undefined;
    }, 10_000);
    expect(record?.file).toBe(typeFile);
    expect(record?.msg).toContain('the last good version stays in force');
    expect(record?.msg).toContain(`${typeFile}, line 4, field params.0.type`);
    expect(await greet()).toBe('v2 x\n');

    const syntaxBefore = invalids().length;
    writeFileSync(typeFile, 'template: echo v3 $who\nparams: [\n');
    const [syntax] = await waitFor(() => {
      const found = invalids().slice(syntaxBefore);
      return found.length > 0 ? found : undefined;
    }, 10_000);
    expect(syntax?.msg).toMatch(
      new RegExp(`${typeFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, line \\d+: YAML syntax`),
    );
    expect(await greet()).toBe('v2 x\n');
  });

  it('loads an edit written in place in several steps once it is complete', async () => {
    // A truncation, a valid-looking half, then the rest: only the whole file may be loaded.
    const before = loads();
    const fd = openSync(typeFile, 'w');
    try {
      writeSync(fd, 'template: echo v4 $who\n');
      await sleep(40);
      writeSync(fd, 'params:\n  - name: who\n');
    } finally {
      closeSync(fd);
    }
    await waitFor(() => loads() > before, 10_000, 'the reload');
    await sleep(300);
    expect(await greet()).toBe('v4 x\n');
  });
});
