#!/usr/bin/env node
/**
 * The job launchers' part of `npm run build`, after `tsc`:
 *   - dist/daemon/executors/batchd-launcher: the native launcher (daemon/executors/launcher.c),
 *     compiled where a C compiler is found (`$CC`, `cc`, `gcc` or `clang`). Without one, or where
 *     it cannot be compiled (it needs Linux), the build says so and the daemon uses the Perl
 *     launcher instead (a job then costs more to start).
 *   - dist/daemon/executors/launcher.pl: copied last; it marks a complete build for `npm start`
 *     (scripts/build-if-stale.mjs).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const source = join(root, 'daemon/executors/launcher.c');
const out = join(root, 'dist/daemon/executors');
const binary = join(out, 'batchd-launcher');
mkdirSync(out, { recursive: true });

const compilers = [process.env.CC, 'cc', 'gcc', 'clang'].filter((c) => c !== undefined && c !== '');
let built = false;
for (const cc of compilers) {
  const r = spawnSync(cc, ['-O2', '-Wall', '-o', `${binary}.tmp`, source], {
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  if (r.error !== undefined) continue; // not installed: the next one
  if (r.status !== 0) {
    // Not this kind of system (launcher.c needs Linux's signalfd): the Perl launcher runs jobs.
    process.stderr.write(
      `${r.stderr}batchd: ${cc} could not compile ${source}; jobs will start through the Perl launcher\n`,
    );
    break;
  }
  renameSync(`${binary}.tmp`, binary);
  built = true;
  break;
}
if (!built) {
  rmSync(`${binary}.tmp`, { force: true });
  rmSync(binary, { force: true });
  process.stderr.write(
    'batchd: no C compiler found (cc, gcc or clang): jobs will start through the Perl launcher ' +
      'instead of the native one (install gcc and run `npm run build` for the faster one)\n',
  );
}
copyFileSync(join(root, 'daemon/executors/launcher.pl'), join(out, 'launcher.pl'));
