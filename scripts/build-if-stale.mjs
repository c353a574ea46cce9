#!/usr/bin/env node
/**
 * `npm start`'s build step: runs `npm run build` only when a source is newer than the last complete
 * build, so a warm start does not pay for a whole `tsc` run.
 *
 * The last complete build is marked by `dist/daemon/executors/launcher.pl`: the build copies it last
 * (after `tsc` and the native launcher), so a failed build leaves it older than the sources and the
 * next start builds again.
 * Folders count as sources too: deleting or renaming a file changes its folder's mtime.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const STAMP = 'dist/daemon/executors/launcher.pl';
const SOURCE_ROOTS = ['daemon', 'plugins'];
const SOURCE_FILE = /\.(ts|cts|mts|pl|c)$/;
const CONFIG_FILES = ['tsconfig.json'];

/** The newest mtime (ms) under `dir`: its folders and its source files; node_modules skipped. */
function newestUnder(dir) {
  let newest = statSync(dir).mtimeMs;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules') continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestUnder(path));
    else if (SOURCE_FILE.test(entry.name)) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function mtimeOrZero(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/** True when `tree` (the project root) has no complete build, or a source newer than it. */
export function buildIsStale(tree = root) {
  const built = mtimeOrZero(join(tree, STAMP));
  if (built === 0) return true;
  const sources = [
    ...SOURCE_ROOTS.map((dir) => join(tree, dir))
      .filter((dir) => mtimeOrZero(dir) > 0)
      .map(newestUnder),
    ...CONFIG_FILES.map((file) => mtimeOrZero(join(tree, file))),
  ];
  return Math.max(...sources) > built;
}

if (process.argv[1] === import.meta.filename) {
  if (!buildIsStale()) process.exit(0);
  process.stderr.write('batchd: sources changed since the last build; building (npm run build)\n');
  const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  process.exit(build.status ?? 1);
}
