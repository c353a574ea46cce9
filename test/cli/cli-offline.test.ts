import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { tempHome } from './api-daemon.ts';
import { runCli } from './run-cli.ts';

/** `batch` as a real process with no server at all: help, usage errors and an unreachable server. */
const home = tempHome();
const CLOSED = 'http://127.0.0.1:1'; // nothing listens on port 1
const batch = (args: string[], env: Record<string, string> = {}) =>
  runCli(args, { home, env: { BATCH_MANAGER_URL: CLOSED, ...env } });

afterAll(() => rmSync(home, { recursive: true, force: true }));

describe('batch without a server', () => {
  it('documents every exit code in --help and exits 0', async () => {
    const help = await batch(['--help']);
    expect(help.code).toBe(0);
    for (const line of [
      '0  ok',
      '1  the job or operation failed',
      '2  usage error',
      '3  not found',
      '4  authentication',
      '5  server unreachable',
      '6  conflict or invalid input',
    ]) {
      expect(help.stdout).toContain(line);
    }
    expect(help.stdout).toContain('BATCH_MANAGER_URL');
  });

  it('exits 2 on usage errors, before contacting any server', async () => {
    const cases = [
      [[], /Usage: batch/],
      [['frobnicate'], /unknown command 'frobnicate'/],
      [['ls', '--bogus'], /unknown option '--bogus'/],
      [['logs'], /missing required argument 'id'/],
      [['enqueue', '-p', 'novalue'], /-p "novalue": expected NAME=VALUE/],
      [['wait', '20200101T000000.000Z-aaaaaa', '--timeout', 'soon'], /expected a duration/],
    ] as const;
    for (const [args, message] of cases) {
      const result = await batch([...args]);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toContain('cannot reach');
    }
  });

  it('exits 5 and says what to check when the server is unreachable', async () => {
    const result = await batch(['ls', '--json']);
    expect(result.code).toBe(5);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      `batch: cannot reach ${CLOSED} — is batchd running? (batchd --config DIR) [connection refused]\n`,
    );
  });

  it('exits 2 and names the file, line and field of a bad client.yaml', async () => {
    const dir = path.join(home, '.config', 'batchd');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'client.yaml'), 'queue: a\nmanagerurl: http://x\n');
    try {
      const result = await batch(['ls']);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`${path.join(dir, 'client.yaml')}, line 2`);
      expect(result.stderr).toContain('Unknown field "managerurl"');
    } finally {
      rmSync(path.join(dir, 'client.yaml'));
    }
  });
});
