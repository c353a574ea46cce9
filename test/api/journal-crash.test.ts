import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { jobInfoSchema, submitResponseSchema } from '../../daemon/protocol/index.ts';
import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { jobDir, makeEnv } from '../helpers/env.ts';
import { eventually, writeUsersFile } from './api-helpers.ts';
import { basic, httpRequest } from './http-client.ts';

const PASSWORD = 'journal-test-password';
const AUTH = basic('root', PASSWORD);
const Q = 'hold';

/**
 * Durable API submissions through the acceptance journal, against the daemon as a real process:
 * kill -9 after the answers and before any checkpoint, then take from the spool what a power loss
 * could take from folders made without fsync. The restarted daemon has every acknowledged job,
 * whole and once.
 */
describe('acknowledged API submissions survive kill -9 and lost folders (acceptance journal)', () => {
  const env = makeEnv({
    config: {
      manager: { enabled: true, host: '127.0.0.1', port: 0, auth: { basic: true, token: false } },
      // No checkpoint before the kill: the journal alone holds the acceptances.
      storage: { fsync: true, journal_checkpoint: 3600 },
    },
    queues: { [Q]: { enabled: false } },
  });
  const procs: DaemonProcess[] = [];
  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
    env.cleanup();
  });
  const boot = async (): Promise<string> => {
    const urlFile = path.join(env.root, `url-${procs.length}`);
    procs.push(await startDaemon(env.etc, env.spool, { extraArgs: ['--api-url-file', urlFile] }));
    return eventually(() => existsSync(urlFile) && readFileSync(urlFile, 'utf8').trim(), 15_000, 'API url');
  };
  const journalDir = path.join(env.spool, '.journal');
  const segments = (): string[] =>
    existsSync(journalDir) ? readdirSync(journalDir).filter((f) => f.endsWith('.jsonl')) : [];

  it('writes again, at restart, every acknowledged job a power loss took or tore', async () => {
    await writeUsersFile(env.etc, [{ name: 'root', grants: [{ permission: 'SuperUser' }] }], PASSWORD);
    const url = await boot();
    const answers = await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        const res = await httpRequest(url, `/queue/${Q}`, {
          method: 'POST',
          headers: { ...AUTH, 'content-type': 'application/json' },
          body: JSON.stringify({ command: `echo job-${i}`, name: `job-${i}` }),
        });
        expect(res.status, res.text).toBe(201);
        return submitResponseSchema.parse(res.json()).jobs[0] ?? '';
      }),
    );
    expect(segments()).toHaveLength(1);
    const before = new Map(
      answers.map((id) => {
        const dir = jobDir(env.spool, Q, 'queued', id);
        const files = readdirSync(dir).map((f) => [f, readFileSync(path.join(dir, f), 'utf8')] as const);
        return [id, new Map(files)];
      }),
    );

    const first = procs[0] as DaemonProcess;
    first.kill('SIGKILL');
    await first.exited;
    // What a power loss can leave of folders made without fsync: none at all, or empty files.
    answers.forEach((id, i) => {
      const dir = jobDir(env.spool, Q, 'queued', id);
      if (i % 3 === 0) rmSync(dir, { recursive: true });
      if (i % 3 === 1) for (const f of before.get(id)?.keys() ?? []) writeFileSync(path.join(dir, f), '');
    });

    const again = await boot();
    expect(segments()).toEqual([]);
    expect(readdirSync(path.join(env.spool, Q, 'queued')).sort()).toEqual([...answers].sort());
    for (const [i, id] of answers.entries()) {
      const dir = jobDir(env.spool, Q, 'queued', id);
      for (const [name, text] of before.get(id) ?? []) {
        expect(readFileSync(path.join(dir, name), 'utf8'), `${id}/${name}`).toBe(text);
      }
      const res = await httpRequest(again, `/job/${id}`, { headers: AUTH });
      expect(res.status, res.text).toBe(200);
      expect(jobInfoSchema.parse(res.json())).toMatchObject({ id, status: 'queued', name: `job-${i}` });
    }
  });
});
