import { describe, expect, it } from 'vitest';

import { loadText, parseText } from '../../daemon/config/parse.ts';
import { jobTypeSchema, queueSettingsSchema, scheduleSchema } from '../../daemon/config/schema.ts';
import { BatchdError } from '../../daemon/errors.ts';

function problems(run: () => unknown): BatchdError {
  try {
    run();
  } catch (error) {
    if (error instanceof BatchdError) return error;
    throw error;
  }
  throw new Error('parsed without error');
}

const JOB_TYPE = `name: render
title: Render
template: render $frame
params:
  - name: input
    type: InputFile
  - name: frame
    type: Integr
    min: 1
on_fail:
  retry:
    when: sometime
`;

describe('parseText', () => {
  it('names the line of a nested field, and every problem at once', () => {
    const error = problems(() => parseText(JOB_TYPE, jobTypeSchema, 'jobtypes/render.yaml'));
    expect(error.code).toBe('CONFIG_INVALID');
    const byField: Record<string, number | undefined> = Object.fromEntries(
      error.problems.map((p) => [p.field ?? '', p.line]),
    );
    expect(byField['params.1.type']).toBe(8);
    expect(error.message).toMatch(/^jobtypes\/render\.yaml, line 8, field params\.1\.type: /m);
    // on_fail is a union: the nearest existing node is named.
    expect(error.problems.some((p) => p.field?.startsWith('on_fail') === true && (p.line ?? 0) >= 10)).toBe(
      true,
    );
    expect(error.context).toMatchObject({ file: 'jobtypes/render.yaml', line: error.problems[0]?.line });
  });

  it('puts an unknown key at its own line, nested or not', () => {
    const nested = problems(() =>
      parseText('name: x\ntemplate: t\nparams:\n  - name: a\n    typo: 1\n', jobTypeSchema, 't.yaml'),
    );
    expect(nested.problems).toEqual([{ field: 'params.0.typo', line: 5, message: 'Unknown field "typo"' }]);
    const top = problems(() => parseText('enabled: true\n\nparalel: 2\n', queueSettingsSchema, 'queue.yaml'));
    expect(top.problems).toEqual([{ field: 'paralel', line: 3, message: 'Unknown field "paralel"' }]);
    expect(top.message).toBe('queue.yaml, line 3, field paralel: Unknown field "paralel"');
  });

  it('says what it expected and what it got', () => {
    const error = problems(() =>
      parseText('enabled: "yes"\nparallel: 0\n', queueSettingsSchema, 'queue.yaml'),
    );
    expect(error.problems).toEqual([
      { field: 'enabled', line: 1, message: 'Expected boolean, got "yes" (string)' },
      { field: 'parallel', line: 2, message: expect.stringMatching(/>=\s*1|at least 1/) as string },
    ]);
  });

  it('names a missing field and points at its parent', () => {
    const error = problems(() =>
      parseText('name: x\ntime:\n  - begin: "09:00"\n', scheduleSchema, 'night.yaml'),
    );
    expect(error.problems).toEqual([
      { field: 'time.0.end', line: 3, message: 'Missing required field (expected string)' },
    ]);
  });

  it('reads JSON with line numbers too', () => {
    const error = problems(() =>
      parseText('{\n "enabled": true,\n "priority": "x"\n}\n', queueSettingsSchema, 'queue.json'),
    );
    expect(error.problems[0]).toMatchObject({ field: 'priority', line: 3 });
  });

  it('reports YAML syntax errors with their line, and refuses duplicate keys', () => {
    const syntax = problems(() => loadText('a: 1\nb: [1, 2\nc: 3\n', 'f.yaml'));
    expect(syntax.code).toBe('YAML_SYNTAX');
    expect(syntax.problems[0]?.line).toBeGreaterThanOrEqual(2);
    expect(problems(() => loadText('a: 1\na: 2\n', 'f.yaml')).problems[0]?.line).toBe(2);
  });

  it('refuses alias bombs', () => {
    const bomb =
      'a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n';
    expect(() => loadText(bomb, 'bomb.yaml')).toThrow();
  });
});
