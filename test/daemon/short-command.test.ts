import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher } from '../../daemon/executors/launcher.ts';
import { ShortCommands } from '../../daemon/executors/short-command.ts';

/**
 * Plugins' short commands (a batch system's `sbatch`, `squeue`) through the job launcher: argv
 * and input reach the command untouched, output and exit code come back, an abort kills it.
 */
describe('short commands through the job launcher', () => {
  let launcher: Launcher;
  let commands: ShortCommands;
  let scratch: string;
  const signal = (): AbortSignal => AbortSignal.timeout(30_000);

  beforeAll(() => {
    launcher = new Launcher(pino({ level: 'silent' }));
    scratch = mkdtempSync(path.join(tmpdir(), 'batchd-short-'));
    commands = new ShortCommands(launcher, scratch);
  });

  afterAll(async () => {
    commands.close();
    expect(readdirSync(scratch).filter((name) => name.startsWith('batchd-commands-'))).toEqual([]);
    await launcher.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('passes arguments and input through unchanged and returns stdout, stderr and the exit code', async () => {
    const canary = path.join(scratch, 'CANARY');
    const hostile = ['two words', `$(touch ${canary})`, `; touch ${canary}`, "it's", '*', ''];
    const input = `line one\n$(touch ${canary})\n\`touch ${canary}\`\n`;
    const script = 'printf "%s|" "$@"; cat; echo oops >&2; exit 3';
    const result = await commands.run(['/bin/sh', '-c', script, 'sh', ...hostile], {
      signal: signal(),
      input,
    });
    expect(result).toEqual({ code: 3, stdout: `${hostile.join('|')}|${input}`, stderr: 'oops' });
    expect(existsSync(canary)).toBe(false);
  });

  it('gives a command without input an empty stdin', async () => {
    const result = await commands.run(['/bin/sh', '-c', 'cat; echo done'], { signal: signal() });
    expect(result).toEqual({ code: 0, stdout: 'done\n', stderr: '' });
  });

  it('rejects, naming the command, when it cannot be started', async () => {
    await expect(commands.run(['no-such-command-batchd', 'x'], { signal: signal() })).rejects.toThrow(
      /no-such-command-batchd: command not found/,
    );
  });

  it('kills the command when the signal aborts, and says so', async () => {
    const controller = new AbortController();
    const started = Date.now();
    const run = commands.run(['/bin/sleep', '60'], { signal: controller.signal });
    setTimeout(() => controller.abort(), 300);
    await expect(run).rejects.toThrow('aborted or timed out');
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('runs many at once, each with its own output, and leaves no file behind', async () => {
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        commands.run(['/bin/sh', '-c', `echo ${i}; exit ${i % 5}`], { signal: signal(), input: `${i}` }),
      ),
    );
    expect(results.map((r) => [r.stdout, r.code])).toEqual(
      Array.from({ length: 30 }, (_, i) => [`${i}\n`, i % 5]),
    );
    const folders = readdirSync(scratch).filter((name) => name.startsWith('batchd-commands-'));
    expect(folders).toHaveLength(1);
    expect(readdirSync(path.join(scratch, folders[0] ?? ''))).toEqual([]);
  });

  it('removes, when it makes its folder, the folders of daemons killed before they removed theirs', async () => {
    const parent = mkdtempSync(path.join(tmpdir(), 'batchd-short-orphans-'));
    // A process that has ended: its pid names no process now.
    const gone = spawnSync('/bin/true').pid ?? 0;
    const orphan = path.join(parent, `batchd-commands-${gone}-abc123`);
    const living = path.join(parent, `batchd-commands-${process.ppid}-def456`);
    const other = path.join(parent, 'batchd-commands-notapid');
    for (const dir of [orphan, living, other]) mkdirSync(dir);
    writeFileSync(path.join(orphan, '1.out'), 'left by a crash');
    const own = new ShortCommands(launcher, parent);
    try {
      expect((await own.run(['/bin/echo', 'hi'], { signal: signal() })).stdout).toBe('hi\n');
      expect(existsSync(orphan)).toBe(false);
      expect(existsSync(living)).toBe(true);
      expect(existsSync(other)).toBe(true);
      const mine = readdirSync(parent).filter((n) => n.startsWith(`batchd-commands-${process.pid}-`));
      expect(mine).toHaveLength(1);
    } finally {
      own.close();
      rmSync(parent, { recursive: true, force: true });
    }
  });
});
