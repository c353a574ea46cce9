import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

import { queueSettingsSchema } from '../../daemon/config/schema.ts';
import { ConfigStore } from '../../daemon/config/store.ts';
import { BatchdError } from '../../daemon/errors.ts';
import { EventBus } from '../../daemon/events.ts';
import { isJobId } from '../../daemon/jobs/id.ts';
import { validateJobText, type ValidateContext } from '../../daemon/jobs/validate.ts';

const etc = mkdtempSync(path.join(tmpdir(), 'batchd-validate-'));
afterAll(() => rmSync(etc, { recursive: true, force: true }));
mkdirSync(path.join(etc, 'jobtypes'));
const jobType = (name: string, body: unknown): void =>
  writeFileSync(path.join(etc, 'jobtypes', `${name}.yaml`), stringify(body));
// The render type's input files, in its workdir (InputFile parameters of local jobs must exist).
const inputs = path.join(etc, 'inputs');
mkdirSync(inputs);
for (const name of ['a', 'a.blend', 'b.blend']) writeFileSync(path.join(inputs, name), 'blend\n');
jobType('render', {
  template: 'render $input $frame $quality',
  workdir: inputs,
  params: [
    { name: 'input', type: 'InputFile' },
    { name: 'frame', type: 'Integer', min: 1 },
    { name: 'quality', type: 'Choice', choices: ['draft', 'final'], default: 'draft' },
  ],
});
jobType('bare', { template: 'true' });
// No workdir: its jobs run in a new folder of their own.
jobType('count', { template: 'wc -l $file', params: [{ name: 'file', type: 'InputFile' }] });

const log = pino({ level: 'silent' });
const config = new ConfigStore(etc, new EventBus(() => undefined), log);
const EXISTING = '20261121T093000.123Z-k3f9qa';

function ctx(over: Partial<ValidateContext> = {}): ValidateContext {
  return {
    queue: 'default',
    queueSettings: queueSettingsSchema.parse({}),
    config,
    file: 'job.yaml',
    via: 'drop',
    slugSource: 'my-drop',
    hostExists: (name) => name === 'render-box',
    jobExists: (id) => id === EXISTING,
    maxTaskJobs: 100,
    ...over,
  };
}

function rejection(text: string, over: Partial<ValidateContext> = {}): BatchdError {
  try {
    validateJobText(text, ctx(over));
  } catch (error) {
    if (error instanceof BatchdError) return error;
    throw error;
  }
  throw new Error('the job was accepted');
}

describe('validateJobText: one job', () => {
  it('reads `command:` alone as a job of the built-in command type', () => {
    const [job, ...rest] = validateJobText('command: make -j8 test\n', ctx({ user: 'ann' }));
    expect(rest).toEqual([]);
    expect(job).toMatchObject({
      queue: 'default',
      type: 'command',
      params: { command: 'make -j8 test' },
      priority: 0,
      after: [],
      task: undefined,
      submitted_by: 'ann',
      source: { via: 'drop', file: 'job.yaml' },
    });
    expect(isJobId(job?.id ?? '')).toBe(true);
    expect(job?.id).toMatch(/-my-drop$/);
  });

  it('checks and normalizes parameters against the job type, filling in defaults', () => {
    const text = stringify({
      type: 'render',
      params: { input: '/p/a.blend', frame: '12' },
      priority: 5,
      host: 'render-box',
      timeout: '90s',
    });
    const [job] = validateJobText(text, ctx());
    expect(job).toMatchObject({
      type: 'render',
      params: { input: '/p/a.blend', frame: 12, quality: 'draft' },
      priority: 5,
      host: 'render-box',
      timeout_ms: 90_000,
    });
  });

  it('takes the queue’s type when the job names none', () => {
    const [job] = validateJobText(
      'params: {input: a, frame: 1}\n',
      ctx({ queueSettings: queueSettingsSchema.parse({ type: 'render' }) }),
    );
    expect(job?.type).toBe('render');
  });

  it('normalizes not_before (and its batchd name start_time) to UTC', () => {
    expect(validateJobText('command: x\nnot_before: 2026-11-22T01:00:00+01:00\n', ctx())[0]?.not_before).toBe(
      '2026-11-22T00:00:00.000Z',
    );
    expect(validateJobText('command: x\nstart_time: "2026-11-22T01:00:00Z"\n', ctx())[0]?.not_before).toBe(
      '2026-11-22T01:00:00.000Z',
    );
  });

  it('accepts dependencies on jobs that exist, one or a list', () => {
    expect(validateJobText(`command: x\nafter: ${EXISTING}\n`, ctx())[0]?.after).toEqual([EXISTING]);
    expect(validateJobText(`command: x\nafter: [${EXISTING}]\n`, ctx())[0]?.after).toEqual([EXISTING]);
  });

  it('reads JSON as well as YAML', () => {
    expect(validateJobText('{"command": "true", "priority": -3}', ctx())[0]).toMatchObject({
      type: 'command',
      priority: -3,
    });
  });
});

describe('validateJobText: problems name the file, the line and the field', () => {
  it('an unknown type, with the types there are', () => {
    const error = rejection('notes: hi\ntype: blender\n');
    expect(error.code).toBe('UNKNOWN_TYPE');
    expect(error.message).toBe(
      'job.yaml, line 2, field type: Unknown job type "blender"; known types: bare, command, count, render',
    );
    expect(error.context).toMatchObject({ file: 'job.yaml', line: 2, field: 'type' });
  });

  it('an unknown parameter, with the parameters the type takes', () => {
    const error = rejection('type: render\nparams:\n  input: a\n  frame: 1\n  qualty: final\n');
    expect(error.code).toBe('JOB_INVALID');
    expect(error.message).toBe(
      'job.yaml, line 5, field params.qualty: Unknown parameter "qualty"; type "render" takes parameters input, frame, quality',
    );
    expect(rejection('type: bare\nparams: {x: 1}\n').message).toMatch(
      /Unknown parameter "x"; type "bare" takes no parameters/,
    );
  });

  it('a missing parameter, pointing at its parent', () => {
    // The parent is the block under `params:` (line 2), which starts on line 3.
    const error = rejection('type: render\nparams:\n  input: a.blend\n');
    expect(error.problems).toEqual([
      { field: 'params.frame', line: 3, message: 'Missing parameter "frame" (Integer)' },
    ]);
  });

  it('every bad value at once, each at its line', () => {
    const error = rejection('type: render\nparams:\n  input: ""\n  frame: 0\n  quality: best\n');
    expect(error.problems).toEqual([
      { field: 'params.input', line: 3, message: 'Expected a file path, got "" (string)' },
      { field: 'params.frame', line: 4, message: 'Expected a value ≥ 1, got 0 (number)' },
      { field: 'params.quality', line: 5, message: 'Expected one of "draft", "final", got "best" (string)' },
    ]);
    expect(error.message.split('\n')).toHaveLength(3);
  });

  it('a bad element of a task list, at the element’s line', () => {
    const error = rejection('type: render\nparams:\n  input: a\n  frame:\n    - 1\n    - 2\n    - two\n');
    expect(error.problems).toEqual([
      { field: 'params.frame.2', line: 7, message: 'Expected an integer, got "two" (string)' },
    ]);
  });

  it('unknown fields and wrong types of the job file itself', () => {
    const error = rejection('command: x\npriorty: 3\n');
    expect(error.problems).toEqual([{ field: 'priorty', line: 2, message: 'Unknown field "priorty"' }]);
    const typed = rejection('command: x\npriority: high\n');
    expect(typed.problems[0]).toMatchObject({ field: 'priority', line: 2 });
    expect(typed.problems[0]?.message).toMatch(/Expected number, got "high" \(string\)/);
  });

  it('an unknown dependency and an unknown host', () => {
    const error = rejection('command: x\nhost: elsewhere\nafter:\n  - 20261121T093000.123Z-aaaaaa\n');
    expect(error.problems).toEqual([
      { field: 'host', line: 2, message: 'Unknown host "elsewhere"' },
      { field: 'after.0', line: 4, message: 'Unknown job "20261121T093000.123Z-aaaaaa" (no queue holds it)' },
    ]);
    expect(rejection('command: x\nafter: not-an-id\n').problems[0]).toMatchObject({
      field: 'after',
      line: 2,
    });
  });

  it('a type and a command at once', () => {
    expect(rejection('type: render\ncommand: ls\n').problems[0]).toMatchObject({ field: 'command', line: 2 });
  });

  it('a YAML syntax error, at its line', () => {
    const error = rejection('command: x\nparams: {a: 1\n');
    expect(error.code).toBe('YAML_SYNTAX');
    expect(error.message).toMatch(/^job\.yaml, line \d+: YAML syntax: /);
    expect(rejection('command: a\ncommand: b\n').message).toMatch(/line 2: YAML syntax: .*[Uu]nique/);
  });
});

describe('validateJobText: tasks', () => {
  it('expands ranges and lists into the cartesian product, in order, all carrying the task name', () => {
    const text =
      'type: render\ntask: shot42\nparams:\n  input: [a.blend, b.blend]\n  frame: {range: "1..5..2"}\n';
    const jobs = validateJobText(text, ctx());
    expect(jobs.map((j) => [j.params.input, j.params.frame])).toEqual([
      ['a.blend', 1],
      ['a.blend', 3],
      ['a.blend', 5],
      ['b.blend', 1],
      ['b.blend', 3],
      ['b.blend', 5],
    ]);
    expect(jobs.map((j) => j.task)).toEqual(jobs.map((_, index) => ({ name: 'shot42', index, count: 6 })));
    expect(new Set(jobs.map((j) => j.id)).size).toBe(6);
    expect(jobs.every((j) => j.params.quality === 'draft')).toBe(true);
  });

  it('names a task after the dropped file unless it names itself', () => {
    const jobs = validateJobText('params:\n  command: [a, b]\n', ctx({ slugSource: 'nightly' }));
    expect(jobs.map((j) => [j.params.command, j.task?.name])).toEqual([
      ['a', 'nightly'],
      ['b', 'nightly'],
    ]);
  });

  it('a `task:` of one job is still a task', () => {
    expect(validateJobText('command: x\ntask: solo\n', ctx())[0]?.task).toEqual({
      name: 'solo',
      index: 0,
      count: 1,
    });
  });

  it('refuses a task over storage.max_task_jobs before making it', () => {
    const error = rejection(
      'type: render\nparams:\n  input: a\n  frame: {range: "1..1000000000"}\n',
      ctx({ maxTaskJobs: 1000 }),
    );
    expect(error.message).toBe(
      'job.yaml, line 3, field params: This task would make 1000000000 jobs; the limit is 1000 (storage.max_task_jobs)',
    );
  });

  it('refuses a range with a step of 0, saying why', () => {
    const error = rejection('type: render\nparams:\n  input: a\n  frame: {range: "1..10..0"}\n');
    expect(error.problems[0]).toMatchObject({ line: 4, message: 'Expected a range step of at least 1' });
  });
});

describe('validateJobText: InputFile parameters of jobs that run on this machine', () => {
  const count = (file: string, extra = ''): string => `type: count\nparams:\n  file: ${file}\n${extra}`;

  it('refuses a file that does not exist, naming the parameter, its line and the path', () => {
    const missing = path.join(inputs, 'no-such.blend');
    const error = rejection(count(missing));
    expect(error.message).toBe(
      `job.yaml, line 3, field params.file: Input file ${JSON.stringify(missing)} does not exist`,
    );
    expect(rejection(`type: render\nparams:\n  input: gone.blend\n  frame: 1\n`).problems[0]).toMatchObject({
      field: 'params.input',
      message: `Input file ${JSON.stringify(path.join(inputs, 'gone.blend'))} does not exist`,
    });
  });

  it('refuses a FIFO, a folder or a device without opening it', () => {
    const fifo = path.join(inputs, 'pipe');
    execFileSync('mkfifo', [fifo]);
    // Opening the FIFO would block this test forever: only its metadata may be looked at.
    expect(rejection(count(fifo)).problems[0]?.message).toMatch(/is a named pipe; expected a regular file/);
    expect(rejection(count(inputs)).problems[0]?.message).toMatch(/is a folder; expected a regular file/);
    expect(rejection(count('/dev/null')).problems[0]?.message).toMatch(/is a device/);
  });

  it('refuses a relative path when the job runs in its own new folder', () => {
    expect(rejection(count('a.blend')).problems[0]?.message).toMatch(/is a relative path.*absolute path/);
  });

  it('names each missing file of a task list at its element', () => {
    const error = rejection('type: render\nparams:\n  input: [a.blend, gone.blend]\n  frame: 1\n');
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toMatchObject({ field: 'params.input.1', line: 3 });
  });

  it('accepts an existing regular file (through a symlink too)', () => {
    const link = path.join(inputs, 'link.blend');
    symlinkSync(path.join(inputs, 'a.blend'), link);
    expect(validateJobText(count(path.join(inputs, 'a.blend')), ctx())[0]?.params.file).toBe(
      path.join(inputs, 'a.blend'),
    );
    expect(validateJobText(count(link), ctx())).toHaveLength(1);
  });

  it('leaves to later the file of a job for another host, or one that waits for jobs or a time', () => {
    const missing = path.join(inputs, 'made-later.blend');
    expect(validateJobText(count(missing, 'host: render-box\n'), ctx())).toHaveLength(1);
    const viaQueue = ctx({ queueSettings: queueSettingsSchema.parse({ host_name: 'render-box' }) });
    expect(validateJobText(count(missing), viaQueue)).toHaveLength(1);
    expect(validateJobText(count(missing, `after: [${EXISTING}]\n`), ctx())).toHaveLength(1);
    expect(validateJobText(count(missing, 'not_before: 2999-01-01T00:00:00Z\n'), ctx())).toHaveLength(1);
    // A start time already past does not wait: the file is checked now.
    expect(rejection(count(missing, 'not_before: 2000-01-01T00:00:00Z\n')).problems[0]?.field).toBe(
      'params.file',
    );
  });
});
