import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { buildProgram, VERB_MODULES, verbOf } from '../../daemon/cli/program.ts';
import { type ApiDaemon, startApiDaemon } from './api-daemon.ts';
import { CLI_MAIN } from './run-cli.ts';

/** A verb as the top-level help lists it: what `VERB_MODULES` must say of it. */
function listingOf(cmd: Command) {
  const args = cmd.registeredArguments
    .map((arg) => {
      const name = `${arg.name()}${arg.variadic ? '...' : ''}`;
      return arg.required ? `<${name}>` : `[${name}]`;
    })
    .join(' ');
  return {
    name: cmd.name(),
    ...(cmd.aliases()[0] === undefined ? {} : { alias: cmd.aliases()[0] }),
    summary: cmd.summary(),
    ...(args === '' ? {} : { args }),
    ...(cmd.commands.length > 0 ? { subcommands: true } : {}),
  };
}

const line = (...args: string[]) => ['node', 'batch', ...args];

describe('batch loads only the verb it runs', () => {
  it('lists every verb as the verb itself describes it, in the order of the help', async () => {
    const full = await buildProgram();
    expect(VERB_MODULES.flatMap((m) => m.verbs)).toEqual(full.commands.map(listingOf));
  });

  it('prints the same top-level help from the listings as with every verb loaded', async () => {
    const listed = await buildProgram(line('--help'));
    const full = await buildProgram();
    expect(listed.helpInformation()).toBe(full.helpInformation());
  });

  it('registers only the named verb’s module when a line names one', async () => {
    const program = await buildProgram(line('-M', 'http://127.0.0.1:9', 'cancel', 'x'));
    expect(program.commands.map((c) => c.name())).toEqual(['cancel', 'retry']);
    const byAlias = await buildProgram(line('add', '--', 'true'));
    expect(byAlias.commands.map((c) => c.name())).toEqual(['enqueue']);
  });

  it('loads every verb for a line that names no known verb, so commander can suggest one', async () => {
    const program = await buildProgram(line('enqeue'));
    expect(program.commands.map((c) => c.name())).toEqual(full());
  });

  it('finds the verb after global options, their values and `help`', () => {
    expect(verbOf(line('-M', 'http://h:1', '--token', 't', '--json', 'ls', 'q'))).toBe('ls');
    expect(verbOf(line('--manager-url=http://h:1', '-q', 'wait', 'id'))).toBe('wait');
    expect(verbOf(line('--client-config', 'ls', 'job', 'x'))).toBe('job');
    expect(verbOf(line('help', 'task'))).toBe('task');
    expect(verbOf(line('--help'))).toBeUndefined();
    expect(verbOf(line('-V'))).toBeUndefined();
    expect(verbOf(line())).toBeUndefined();
  });
});

function full(): string[] {
  return VERB_MODULES.flatMap((m) => m.verbs.map((v) => v.name));
}

/** `batch` as installed: dist/daemon/cli/batch.cjs, running the one-file build of scripts/bundle-cli.mjs. */
describe('the batch command’s one-file build', () => {
  const bin = path.join(path.dirname(CLI_MAIN), 'batch.cjs');
  const bundle = path.join(path.dirname(CLI_MAIN), 'batch.bundle.cjs');
  let d: ApiDaemon;
  beforeAll(async () => {
    const build = spawnSync(process.execPath, ['scripts/bundle-cli.mjs'], { encoding: 'utf8' });
    expect(build.stderr).toBe('');
    d = await startApiDaemon();
  }, 120_000);
  afterAll(async () => {
    await d?.stop();
  });
  const run = (entry: string, args: string[]) =>
    spawnSync(process.execPath, [entry, ...args], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: d.home, BATCH_MANAGER_URL: d.url },
    });
  const outcome = (r: ReturnType<typeof run>) => ({ code: r.status, stdout: r.stdout, stderr: r.stderr });

  it('is built newer than main.js, with its code cache', () => {
    expect(statSync(bundle).mtimeMs).toBeGreaterThanOrEqual(statSync(CLI_MAIN).mtimeMs);
    expect(existsSync(path.join(path.dirname(CLI_MAIN), 'batch.bundle.cache'))).toBe(true);
    // What `batch --help` and `--version` print, answered without loading the bundle.
    expect(existsSync(path.join(path.dirname(CLI_MAIN), 'batch.replies.json'))).toBe(true);
  });

  it('answers as the modules do: version, help, a verb’s help, usage errors', () => {
    for (const args of [
      [],
      ['--version'],
      ['-V'],
      ['--help'],
      ['-h'],
      ['help'],
      ['help', 'task'],
      ['enqueue'],
      ['enqeue'],
      ['ls', '--nope'],
    ])
      expect(outcome(run(bin, args))).toEqual(outcome(run(CLI_MAIN, args)));
  });

  it('takes `batch help` as `batch --help`, and a bare `batch` as a usage error', () => {
    expect(outcome(run(bin, ['help']))).toEqual(outcome(run(bin, ['--help'])));
    expect(run(bin, []).status).toBe(2);
  });

  it('reads client.yaml with the YAML library kept in a file of its own (batch.yaml.cjs)', () => {
    const config = path.join(d.home, '.config', 'batchd');
    mkdirSync(config, { recursive: true });
    const file = path.join(config, 'client.yaml');
    // No BATCH_MANAGER_URL: the server comes from client.yaml.
    const env = { PATH: process.env.PATH, HOME: d.home };
    try {
      writeFileSync(file, `manager_url: ${d.url}\n`);
      const submitted = spawnSync(process.execPath, [bin, 'enqueue', '--', 'true'], {
        encoding: 'utf8',
        env,
      });
      expect(submitted.stderr).toBe('');
      expect(submitted.stdout).toMatch(/^\d{8}T\d{6}\.\d{3}Z-[a-z0-9]{6}\n$/);
      writeFileSync(file, 'bogus: 1\n');
      const refused = spawnSync(process.execPath, [bin, 'ls'], { encoding: 'utf8', env });
      expect(refused.status).toBe(2);
      expect(refused.stderr).toContain('client.yaml, line 1, field bogus: Unknown field "bogus"');
    } finally {
      rmSync(file, { force: true });
    }
  });

  it('submits a job and waits for it against a real daemon', () => {
    const submitted = run(bin, ['enqueue', '-q', 'default', '--', 'echo', 'bundled']);
    expect(submitted.status).toBe(0);
    const id = submitted.stdout.trim();
    expect(run(bin, ['wait', id]).status).toBe(0);
    expect(run(bin, ['logs', id]).stdout).toBe('bundled\n');
  });
});
