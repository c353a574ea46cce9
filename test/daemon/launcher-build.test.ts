import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** A tree with only what scripts/build-launcher.mjs reads, so the real dist/ is left alone. */
function tree(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'batchd-launcher-build-'));
  mkdirSync(path.join(dir, 'scripts'));
  mkdirSync(path.join(dir, 'daemon/executors'), { recursive: true });
  copyFileSync(path.join(ROOT, 'scripts/build-launcher.mjs'), path.join(dir, 'scripts/build-launcher.mjs'));
  for (const file of ['launcher.c', 'launcher.pl'])
    copyFileSync(path.join(ROOT, 'daemon/executors', file), path.join(dir, 'daemon/executors', file));
  return dir;
}

describe("the build's job launchers", () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('compiles the native launcher where a C compiler is found, and copies the Perl one', () => {
    dir = tree();
    const r = spawnSync(process.execPath, ['scripts/build-launcher.mjs'], { cwd: dir, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(existsSync(path.join(dir, 'dist/daemon/executors/batchd-launcher'))).toBe(true);
    expect(existsSync(path.join(dir, 'dist/daemon/executors/launcher.pl'))).toBe(true);
    // It runs: it says it is ready, and ends when its input closes.
    const run = spawnSync(path.join(dir, 'dist/daemon/executors/batchd-launcher'), {
      input: '',
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(run.stdout).toMatch(/^ready\t\d+\n$/);
    expect(run.status).toBe(0);
  });

  it('without a C compiler, says jobs will start through the Perl launcher, and still completes', () => {
    dir = tree();
    const env = { ...process.env, PATH: path.join(dir, 'no-such-bin'), CC: '' };
    const r = spawnSync(process.execPath, ['scripts/build-launcher.mjs'], {
      cwd: dir,
      env,
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('no C compiler found');
    expect(r.stderr).toContain('Perl launcher');
    expect(existsSync(path.join(dir, 'dist/daemon/executors/batchd-launcher'))).toBe(false);
    expect(existsSync(path.join(dir, 'dist/daemon/executors/launcher.pl'))).toBe(true);
  });
});
