import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
jobType('render', {
  template: 'render $input $frame $quality',
  params: [
    { name: 'input', type: 'InputFile' },
    { name: 'frame', type: 'Integer', min: 1 },
    { name: 'quality', type: 'Choice', choices: ['draft', 'final'], default: 'draft' },
  ],
});
jobType('bare', { template: 'true' });

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
      'job.yaml, line 2, field type: Unknown job type "blender"; known types: bare, command, render',
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
