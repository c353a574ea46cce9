import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Daemon } from '../../daemon/daemon.ts';
import { type ApiDaemon, startApiDaemon } from '../cli/api-daemon.ts';
import { makeDispatchEnv, startInProcess } from '../helpers/dispatch.ts';
import { jobsIn, type TestEnv, waitFor } from '../helpers/env.ts';
import { finished, log } from '../ssh/ssh-env.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const EDITORS = path.join(ROOT, 'plugins', 'editors');
const BUILD = { template: 'echo built $(wc -c < $file) bytes', params: [{ name: 'file', type: 'String' }] };

function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The job a save dropped, once it ended (its id ends with the slug of the saved file's name). */
async function savedJob(env: TestEnv, file: string): Promise<{ state: string; out: string }> {
  const slug = `save-${file.replace(/[^A-Za-z0-9_-]+/g, '-')}-`;
  const id = await waitFor(
    () =>
      ['queued', 'running', 'done', 'failed']
        .flatMap((s) => jobsIn(env.spool, 'default', s))
        .find((i) => i.includes(slug)),
    20_000,
    `a job for ${file}`,
  );
  const job = await finished(env, id);
  return { state: job.state, out: log(job.dir, 'stdout.log') };
}

describe('editor save hooks, dropping into the spool', () => {
  let env: TestEnv;
  let daemon: Daemon;
  let project: string;

  beforeAll(async () => {
    env = makeDispatchEnv({ queues: { default: null }, jobTypes: { build: BUILD } });
    daemon = await startInProcess(env);
    project = path.join(env.root, 'project');
    mkdirSync(path.join(project, 'src', 'lib'), { recursive: true });
    writeFileSync(
      path.join(project, '.batchd-on-save.yaml'),
      `spool: ${env.spool}\nrules:\n  - match: "src/**/*.c"\n    type: build\n`,
    );
  });

  afterAll(async () => {
    await daemon?.stop();
    env?.cleanup();
  });

  it('Vim: writing a matching file submits its job, and shows the id; another file submits nothing', async () => {
    const messages = path.join(env.root, 'vim-messages');
    // Vim takes at most ten -c commands: the session is a script.
    const script = path.join(env.root, 'session.vim');
    writeFileSync(
      script,
      [
        'runtime plugin/batchd.vim',
        'e src/main.c',
        'call setline(1, "int main;")',
        'w',
        'e notes.txt',
        'call setline(1, "nothing")',
        'w',
        'sleep 3',
        `redir! > ${messages}`,
        'messages',
        'redir END',
        'qa!',
      ].join('\n'),
    );
    const vim = await run(
      'vim',
      [
        '-es',
        '-u',
        'NONE',
        '-i',
        'NONE',
        '-N',
        '--cmd',
        `set rtp^=${path.join(EDITORS, 'vim')}`,
        '-S',
        script,
      ],
      { cwd: project },
    );
    expect(vim.code, vim.stderr).toBe(0);
    const job = await savedJob(env, 'main.c');
    expect(job).toEqual({ state: 'done', out: 'built 10 bytes\n' });
    expect(readFileSync(messages, 'utf8')).toMatch(/batchd: queued \S+-save-main-c-/);
    expect(jobsIn(env.spool, 'default', 'done').filter((i) => i.includes('notes'))).toEqual([]);
  });

  it('Emacs: saving a matching file submits its job and reports its id and end', async () => {
    const emacs = await run(
      'emacs',
      [
        '--batch',
        '-Q',
        '-l',
        path.join(EDITORS, 'emacs', 'batchd.el'),
        '--eval',
        `(progn (batchd-on-save-mode 1)
                (find-file "src/lib/util.c") (insert "x = 1;") (save-buffer)
                (find-file "README") (insert "no") (save-buffer)
                (batchd-wait-all 30))`,
      ],
      { cwd: project },
    );
    expect(emacs.code, emacs.stderr).toBe(0);
    const job = await savedJob(env, 'util.c');
    // "x = 1;" and the final newline C mode adds.
    expect(job).toEqual({ state: 'done', out: 'built 7 bytes\n' });
    expect(emacs.stderr).toMatch(/batchd: queued (\S+-save-util-c-\S+)\nbatchd: \1 done/);
    expect(emacs.stderr).not.toMatch(/README/);
  });
});

describe('the VS Code extension’s save command, run as the extension runs it', () => {
  let d: ApiDaemon;

  beforeAll(async () => {
    d = await startApiDaemon({ queues: { default: null }, jobTypes: { build: BUILD } });
  });

  afterAll(async () => {
    await d?.stop();
  });

  it('submits through the API with `batch enqueue` and reports the id and the end', async () => {
    const project = path.join(d.env.root, 'ws');
    mkdirSync(path.join(project, 'src'), { recursive: true });
    writeFileSync(path.join(project, '.batchd-on-save.yaml'), 'rules:\n  - match: "*.c"\n    type: build\n');
    const file = path.join(project, 'src', 'x.c');
    writeFileSync(file, 'abc');
    const require = createRequire(import.meta.url);
    const { submitOnSave } = require(path.join(EDITORS, 'vscode', 'submit.js')) as {
      submitOnSave: (
        file: string,
        settings: Record<string, unknown>,
        report: (line: string, isError: boolean) => void,
      ) => ChildProcess;
    };
    const lines: string[] = [];
    const saved = { ...process.env };
    Object.assign(process.env, { BATCH_MANAGER_URL: d.url, HOME: d.home });
    let child;
    try {
      child = submitOnSave(file, {}, (line, isError) => lines.push(`${isError ? 'error' : 'ok'}: ${line}`));
    } finally {
      process.env = saved;
    }
    await new Promise((resolve) => child.once('close', resolve));
    expect(lines).toHaveLength(2);
    const id = /^ok: queued (\S+)$/.exec(lines[0] ?? '')?.[1];
    expect(id).toBeDefined();
    expect(lines[1]).toBe(`ok: ${id} done`);
    expect((await finished(d.env, id ?? '')).state).toBe('done');
  });
});
