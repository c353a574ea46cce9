import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { DAEMON_MAIN, startDaemon } from '../helpers/daemon-process.ts';
import { makeEnv, waitFor } from '../helpers/env.ts';
import { type ApiDaemon, startApiDaemon, tempHome } from './api-daemon.ts';
import { CLI_MAIN, runCli } from './run-cli.ts';

/** What a new user meets in the first hour: versions, help, usage errors, ids, tables, bulk, logs. */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;
const home = tempHome();
const offline = (args: string[], env: Record<string, string> = {}) =>
  runCli(args, { home, env: { BATCH_MANAGER_URL: 'http://127.0.0.1:1', ...env } });

let d: ApiDaemon;
beforeAll(async () => {
  d = await startApiDaemon();
});
afterAll(async () => {
  await d?.stop();
  rmSync(home, { recursive: true, force: true });
});

describe('the commands', () => {
  it('print the package version with --version, batch and batchd alike', async () => {
    expect(await offline(['--version'])).toMatchObject({ code: 0, stdout: `${VERSION}\n` });
    const daemon = spawnSync(process.execPath, [DAEMON_MAIN, '--version'], { encoding: 'utf8' });
    expect({ code: daemon.status, stdout: daemon.stdout }).toEqual({ code: 0, stdout: `${VERSION}\n` });
  });

  it('take a bare -h as help (after a verb it stays --host)', async () => {
    const help = await offline(['-h']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: batch');
  });

  it('exit 2 with a usage hint for `batch enqueue` with nothing to submit, before any request', async () => {
    const result = await offline(['enqueue']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /enqueue: nothing to submit; give a command \(batch enqueue -- make test\)/,
    );
    expect(result.stderr).not.toContain('cannot reach');
  });

  it('are completed by bash from their own help (verbs, then a verb’s options)', () => {
    const shim = mkdtempSync(path.join(tmpdir(), 'batch-shim-'));
    writeFileSync(path.join(shim, 'batch'), `#!/bin/sh\nexec "${process.execPath}" "${CLI_MAIN}" "$@"\n`, {
      mode: 0o755,
    });
    try {
      const complete = (words: string[]): string[] => {
        const script = `source scripts/completion.bash; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _batchd_complete; printf '%s\\n' "\${COMPREPLY[@]}"`;
        const run = spawnSync('bash', ['-c', script], {
          cwd: ROOT,
          encoding: 'utf8',
          env: { ...process.env, PATH: `${shim}:${process.env.PATH ?? ''}` },
        });
        return run.stdout.split('\n').filter((w) => w !== '');
      };
      expect(complete(['batch', 'enq'])).toEqual(['enqueue']);
      expect(complete(['batch', 'enqueue', '--ea'])).toEqual(['--each']);
    } finally {
      rmSync(shim, { recursive: true, force: true });
    }
  });
});

describe('ids, tables and bulk submission', () => {
  it('accept a unique part of an id (its random part or its start) wherever an id goes', async () => {
    const id = (await d.batch(['enqueue', '--', 'echo', 'short ids'])).stdout.trim();
    const random = id.split('-')[1] ?? '';
    const waited = await d.batch(['wait', random]);
    expect(waited).toMatchObject({ code: 0 });
    expect(waited.stdout).toContain(`${id}  done`);
    expect((await d.batch(['logs', id.slice(0, 24)])).stdout).toBe('short ids\n');
    const unknown = await d.batch(['job', 'zzzzzz']);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain('no job id starts with or contains "-zzzzzz"');
  });

  it('refuses an ambiguous id part with exit 2, naming the candidates', async () => {
    const first = (await d.batch(['enqueue', '--', 'true'])).stdout.trim();
    await d.batch(['enqueue', '--', 'true']);
    const result = await d.batch(['job', first.slice(0, 4)]); // the year: every job has it
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/is ambiguous: \d+ jobs match .*give more of it/);
  });

  it('queues one job per line of stdin as one task in one request, with --each -', async () => {
    const result = await d.batch(['enqueue', '--each', '-', '--task', 'lines', '--json'], {
      input: 'echo one\n\n# a comment\necho two\necho three\n',
    });
    expect(result.code).toBe(0);
    const response = JSON.parse(result.stdout) as { jobs: string[]; task: string };
    expect(response.jobs).toHaveLength(3);
    expect(response.task).toBe('lines');
    const collected = await d.batch(['task', 'collect', 'default', 'lines', '--json']);
    expect(collected.code).toBe(0);
    expect(collected.stdout.match(/"status": "done"/g)).toHaveLength(3);
  });

  it('says why a queued job waits: its start time, then its queue switched off', async () => {
    const id = (await d.batch(['enqueue', '--at', '+2h', '--', 'true'])).stdout.trim();
    expect((await d.batch(['job', id])).stdout).toMatch(/waiting for: its start time: not before \d{4}-/);
    await d.batch(['queue', 'paused', '-a', '-D']);
    const held = (await d.batch(['enqueue', '-q', 'paused', '--', 'true'])).stdout.trim();
    expect((await d.batch(['job', held])).stdout).toContain(
      'waiting for: its queue paused is disabled (batch queue paused -e enables it)',
    );
  });

  it('cuts free-text columns to fit $COLUMNS, and --wide shows them whole', async () => {
    await d.batch([
      'queue',
      'wide',
      '-a',
      '-n',
      'A queue whose title is far too long to fit in a narrow terminal',
    ]);
    const narrow = await d.batch(['ls'], { env: { COLUMNS: '80' } });
    expect(narrow.code).toBe(0);
    for (const line of narrow.stdout.trimEnd().split('\n')) expect(line.length).toBeLessThanOrEqual(80);
    expect(narrow.stdout).toContain('…');
    const wide = await d.batch(['ls', '--wide'], { env: { COLUMNS: '80' } });
    expect(wide.stdout).toContain('far too long to fit in a narrow terminal');
  });
});

describe('the daemon log', () => {
  it('has one info line per job start and end, with ISO 8601 times', async () => {
    const id = (await d.batch(['enqueue', '--', 'exit', '4'])).stdout.trim();
    const ended = await waitFor(
      () => d.daemon.records().find((r) => String(r.msg).startsWith(`job ${id} ended`)),
      10_000,
      'the end line',
    );
    const started = d.daemon.records().find((r) => String(r.msg).startsWith(`job ${id} started`));
    expect(started).toMatchObject({
      level: 30,
      job: { id, queue: 'default', type: 'command', host: 'localhost' },
    });
    expect(ended).toMatchObject({ level: 30, job: { id, outcome: 'exit-code', exitCode: 4, to: 'failed' } });
    expect(String(ended.msg)).toMatch(/ended: exit 4 after \d+ ms on localhost → failed$/);
    expect(String(ended.time)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('warns, naming the path and the rule, about a spool folder that is not a queue name', async () => {
    mkdirSync(path.join(d.env.spool, 'my renders', 'incoming'), { recursive: true });
    const warning = await waitFor(
      () => d.daemon.records().find((r) => String(r.msg).startsWith('ignored ') && r.level === 40),
      10_000,
      'the warning',
    );
    expect(warning.msg).toBe(
      `ignored ${path.join(d.env.spool, 'my renders')}: not a queue name (letters, digits, "_", "." or "-", starting with a letter or digit, at most 64); rename it, e.g. to "my-renders"`,
    );
  });

  it('says on stderr when its API port is taken, and starts with a missing spool_seed skipped', async () => {
    const port = Number(new URL(d.url).port);
    const env = makeEnv({
      config: { manager: { enabled: true, host: '127.0.0.1', port }, spool_seed: 'no-such-seed' },
    });
    const spool = path.join(env.root, 'fresh-spool');
    try {
      const second = await startDaemon(env.etc, spool);
      await second.stop();
      expect(second.logs()).toContain(`batchd: the HTTP API could not listen on 127.0.0.1:${port}`);
      expect(second.logs()).toContain('spool_seed');
      expect(second.logs()).toContain('does not exist: starting with an empty spool');
    } finally {
      env.cleanup();
    }
  });
});

describe('npm start', () => {
  it('rebuilds only when a source is newer than the last complete build', async () => {
    const { buildIsStale } = (await import(path.join(ROOT, 'scripts/build-if-stale.mjs'))) as {
      buildIsStale: (tree: string) => boolean;
    };
    const tree = mkdtempSync(path.join(tmpdir(), 'batchd-stale-'));
    try {
      mkdirSync(path.join(tree, 'daemon'));
      mkdirSync(path.join(tree, 'dist/daemon/executors'), { recursive: true });
      const source = path.join(tree, 'daemon/main.ts');
      const stamp = path.join(tree, 'dist/daemon/executors/launcher.pl');
      writeFileSync(source, '');
      expect(buildIsStale(tree)).toBe(true); // never built
      writeFileSync(stamp, '');
      const past = new Date(Date.now() - 60_000);
      utimesSync(source, past, past);
      utimesSync(path.join(tree, 'daemon'), past, past);
      expect(buildIsStale(tree)).toBe(false);
      writeFileSync(source, 'changed');
      expect(buildIsStale(tree)).toBe(true);
    } finally {
      rmSync(tree, { recursive: true, force: true });
    }
  });
});
