import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const README = path.join(ROOT, 'README.md');
const DOCS = path.join(ROOT, 'docs');

/** The README's convention: an `sh` block whose first line is this comment is shown, not run. */
const ILLUSTRATIVE = /^#\s*illustrative\b/;

interface Block {
  file: string;
  line: number;
  lang: string;
  text: string;
}

function fencedBlocks(file: string): Block[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)/.exec(lines[i] ?? '');
    if (open === null) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !(lines[i] ?? '').startsWith('```'); i++) body.push(lines[i] ?? '');
    blocks.push({ file, line: start + 1, lang: open[1] ?? '', text: body.join('\n') });
  }
  return blocks;
}

/** Links to local files: `[text](path)` and `[text](path#anchor)`, outside code blocks. */
function localLinks(file: string): { target: string; line: number }[] {
  const links: { target: string; line: number }[] = [];
  let fenced = false;
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((text, index) => {
      if (text.startsWith('```')) fenced = !fenced;
      if (fenced) return;
      for (const match of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = match[1] ?? '';
        if (/^[a-z]+:/i.test(target) || target.startsWith('#')) continue;
        links.push({ target, line: index + 1 });
      }
    });
  return links;
}

/** The README and the reference pages it moved into docs/ (other pages belong to their own tests). */
const markdownFiles = [
  README,
  ...[
    'api.md',
    'architecture.md',
    'bench-history.md',
    'cli.md',
    'configuration.md',
    'jobs.md',
    'performance.md',
    'remote-hosts.md',
    'security-notes.md',
    'troubleshooting.md',
  ].map((f) => path.join(DOCS, f)),
];

// `batch` and `batchd` as `npm link` would put them on the PATH, pointing at this tree's build.
const bin = mkdtempSync(path.join(tmpdir(), 'batchd-docs-bin-'));
for (const [name, main] of [
  ['batch', 'dist/daemon/cli/batch.cjs'],
  ['batchd', 'dist/daemon/batchd.cjs'],
]) {
  writeFileSync(
    path.join(bin, name ?? ''),
    `#!/bin/sh\nexec "${process.execPath}" "${path.join(ROOT, main ?? '')}" "$@"\n`,
  );
  chmodSync(path.join(bin, name ?? ''), 0o755);
}
afterAll(() => rmSync(bin, { recursive: true, force: true }));

describe('the README', () => {
  it('stays short enough to read in minutes (at most 400 lines)', () => {
    expect(readFileSync(README, 'utf8').split('\n').length).toBeLessThanOrEqual(400);
  });

  it('links only to local files that exist, in the README and its reference pages', () => {
    const missing = markdownFiles.flatMap((file) =>
      localLinks(file)
        .filter(({ target }) => !existsSync(path.resolve(path.dirname(file), target.split('#')[0] ?? '')))
        .map(({ target, line }) => `${path.relative(ROOT, file)}:${line}: ${target}`),
    );
    expect(missing).toEqual([]);
  });

  it('marks every sh block illustrative, or the block runs and exits 0', () => {
    const runnable = fencedBlocks(README).filter((b) => b.lang === 'sh' && !ILLUSTRATIVE.test(b.text));
    expect(runnable.length).toBeGreaterThan(0); // the convention is in use: some block does run
    for (const block of runnable) {
      const run = spawnSync('bash', ['-euo', 'pipefail', '-c', block.text], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 50_000, // npx alone takes seconds on a loaded machine
        env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` },
      });
      expect({ block: `README.md:${block.line}`, code: run.status, stderr: run.stderr }, block.text).toEqual({
        block: `README.md:${block.line}`,
        code: 0,
        stderr: expect.any(String) as string,
      });
    }
  });

  it('gives its two commands and the first job verbatim', () => {
    const text = readFileSync(README, 'utf8');
    expect(text).toContain('npm install && npm start');
    expect(text).toContain('bash scripts/test.sh');
    expect(text).toContain('npx batch enqueue -- echo hello, batchd');
  });
});
