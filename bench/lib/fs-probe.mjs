// What one file-system call costs on the bench's disk at the time of the run. On this machine kind
// the cost of creating an inode (a file or a folder) swings from ~40 µs to over 1 ms from one hour
// to the next, while renames stay cheap: the root file system is ext4 without a journal, whose
// allocator steps over every inode freed in the last 30 s (by anyone, nearby), and it is mounted
// with `discard`, so each freed block costs a synchronous TRIM. Every spool design pays per created
// inode, so the report shows these beside the figures they explain.
import { mkdirSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const N = 300;

function perOp(fn) {
  const t0 = performance.now();
  for (let i = 0; i < N; i++) fn(i);
  return ((performance.now() - t0) * 1000) / N;
}

/**
 * Microseconds per call: create a small file, overwrite one, mkdir, rename a file, rename a folder.
 * Its files stay in `root` (the run's folder, removed with it at the end): on ext4 without a
 * journal, inodes freed in the last 30 s slow down every creation near them, so deleting them
 * here would slow the run that follows.
 */
export function probeFileSystem(root) {
  const dir = mkdtempSync(path.join(root, 'fs-probe-'));
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  mkdirSync(a);
  mkdirSync(b);
  const result = {
    createFile: perOp((i) => writeFileSync(path.join(a, `f${i}`), '{"id":"x"}\n')),
    overwriteFile: perOp((i) => writeFileSync(path.join(a, `f${i}`), '{"id":"y"}\n')),
    renameFile: perOp((i) => renameSync(path.join(a, `f${i}`), path.join(b, `f${i}`))),
    mkdir: perOp((i) => mkdirSync(path.join(a, `d${i}`))),
    renameFolder: perOp((i) => renameSync(path.join(a, `d${i}`), path.join(b, `d${i}`))),
  };
  return Object.fromEntries(Object.entries(result).map(([k, v]) => [k, Math.round(v)]));
}

export function describeProbe(p) {
  if (p === undefined) return '?';
  return `create a file ${p.createFile} µs, mkdir ${p.mkdir} µs, overwrite ${p.overwriteFile} µs, rename a file ${p.renameFile} µs, rename a folder ${p.renameFolder} µs`;
}
