import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { type ApiDaemon, startApiDaemon } from '../cli/api-daemon.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const DOC = path.join(ROOT, 'docs', 'client-library.md');
const LIBRARY = path.join(ROOT, 'daemon', 'client', 'index.ts');

/** The doc's ```ts blocks, but those marked `illustrative`. */
function examples(): string[] {
  const text = readFileSync(DOC, 'utf8');
  return [...text.matchAll(/```ts( illustrative)?\n([\s\S]*?)```/g)]
    .filter((m) => m[1] === undefined)
    .map((m) => m[2] ?? '');
}

describe('the client library’s documented examples, against a real daemon', () => {
  let d: ApiDaemon;
  let dir: string;

  beforeAll(async () => {
    d = await startApiDaemon({
      queues: { default: null },
      jobTypes: {
        square: {
          template: 'test $n -ne 2 && echo "{\\"n\\": $n}" > "$BATCHD_RESULT"',
          params: [{ name: 'n', type: 'Integer' }],
        },
      },
    });
    dir = mkdtempSync(path.join(tmpdir(), 'batchd-doc-examples-'));
  });

  afterAll(async () => {
    await d?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Run one example as a module (the package name pointed at the source), returning what it logged. */
  async function run(index: number): Promise<unknown[][]> {
    const code = (examples()[index] ?? '').replaceAll("'batchd/client'", JSON.stringify(LIBRARY));
    const file = path.join(dir, `example-${index}.ts`);
    writeFileSync(file, code);
    const logged: unknown[][] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void logged.push(args));
    const saved = process.env.BATCHD_URL;
    process.env.BATCHD_URL = d.url;
    try {
      await import(pathToFileURL(file).href);
    } finally {
      spy.mockRestore();
      process.env.BATCHD_URL = saved;
    }
    return logged;
  }

  it('has the four examples the page promises', () => {
    expect(examples()).toHaveLength(4);
  });

  it('connects and lists the queues', async () => {
    expect(await run(0)).toEqual([[['default']]]);
  });

  it('submits a job and waits for it', async () => {
    expect(await run(1)).toEqual([['done', 'hello from the library\n']]);
  });

  it('submits a task, collects its results in order and resumes the failed job', async () => {
    const logged = await run(2);
    expect(logged[0]).toEqual([['0:done', '1:failed', '2:done']]);
    expect(logged[1]?.[0]).toEqual({ resumed: [expect.any(String)] });
  });

  it('follows a running job’s log, finds it running, and cancels it', async () => {
    expect(await run(3)).toEqual([['first line'], [true], ['cancelled']]);
  });
});
