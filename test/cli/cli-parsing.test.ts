import { describe, expect, it } from 'vitest';

import { ApiError, UnreachableError } from '../../daemon/client/errors.ts';
import { namedParams } from '../../daemon/cli/commands/enqueue.ts';
import { EXIT, exitCodeFor, UsageError } from '../../daemon/cli/exit-codes.ts';
import { alignColumns } from '../../daemon/cli/output.ts';
import { parseAt } from '../../daemon/cli/time.ts';
import { BatchdError } from '../../daemon/errors.ts';
import { positionalParams } from '../../daemon/jobs/positional.ts';
import type { JobTypeInfo } from '../../daemon/protocol/index.ts';

function type(name: string, params: [string, string][]): JobTypeInfo {
  return {
    name,
    title: name,
    syntax: 'Shell',
    template: ['x'],
    on_fail: 'continue',
    host_name: null,
    max_jobs: null,
    timeout_ms: null,
    params: params.map(([n, t]) => ({
      name: n,
      type: t,
      title: n,
      default: null,
      choices: null,
      min: null,
      max: null,
    })),
  };
}

describe('enqueue arguments', () => {
  it('fills parameters in declaration order', () => {
    expect(
      positionalParams(
        type('render', [
          ['input', 'InputFile'],
          ['output', 'OutputFile'],
          ['frame', 'Integer'],
        ]),
        ['a.blend', 'out.png'],
      ),
    ).toEqual({ params: { input: 'a.blend', output: 'out.png' } });
  });

  it('joins the rest of the words into a trailing Script parameter, as ssh does', () => {
    expect(positionalParams(type('command', [['command', 'Script']]), ['make', '-j8', 'test'])).toEqual({
      params: { command: 'make -j8 test' },
    });
  });

  it('refuses more values than a type has parameters, naming them', () => {
    expect(positionalParams(type('echo', [['message', 'String']]), ['a', 'b']).error).toMatch(
      /takes 1 parameter\(s\) \(message\), got 2/,
    );
  });

  it('reads -p NAME=VALUE, keeping "=" inside values', () => {
    expect(namedParams(['a=1', 'expr=x=y', 'empty='])).toEqual({ a: '1', expr: 'x=y', empty: '' });
    expect(() => namedParams(['novalue'])).toThrow(UsageError);
  });
});

describe('--at times', () => {
  const now = new Date(2026, 10, 21, 10, 0, 0); // local time

  it("reads batchd's YYYY-MM-DD HH:MM:SS as local time", () => {
    expect(parseAt('2026-11-22 01:30:00', now)).toBe(new Date(2026, 10, 22, 1, 30, 0).toISOString());
  });

  it('reads an ISO time with a zone, a relative time, a clock time and now', () => {
    expect(parseAt('2026-11-22T01:00:00+01:00', now)).toBe('2026-11-22T00:00:00.000Z');
    expect(parseAt('+1h30m', now)).toBe(new Date(now.getTime() + 90 * 60_000).toISOString());
    expect(parseAt('09:00', now)).toBe(new Date(2026, 10, 22, 9, 0, 0).toISOString()); // passed today: tomorrow
    expect(parseAt('11:00', now)).toBe(new Date(2026, 10, 21, 11, 0, 0).toISOString());
    expect(parseAt('now', now)).toBe(now.toISOString());
  });

  it('refuses impossible dates and says which forms work', () => {
    expect(() => parseAt('2026-02-30 10:00:00', now)).toThrow(/YYYY-MM-DD HH:MM:SS/);
    expect(() => parseAt('tomorrowish', now)).toThrow(UsageError);
  });
});

describe('exit codes', () => {
  const ctx = { method: 'GET', url: 'http://x/' };

  it('maps HTTP statuses to the documented codes', () => {
    expect(exitCodeFor(new ApiError(401, 'UNAUTHORIZED', 'no', [], ctx))).toBe(EXIT.auth);
    expect(exitCodeFor(new ApiError(403, 'FORBIDDEN', 'no', [], ctx))).toBe(EXIT.auth);
    expect(exitCodeFor(new ApiError(404, 'UNKNOWN_JOB', 'no', [], ctx))).toBe(EXIT.notFound);
    expect(exitCodeFor(new ApiError(409, 'CONFLICT', 'no', [], ctx))).toBe(EXIT.invalid);
    expect(exitCodeFor(new ApiError(422, 'JOB_INVALID', 'no', [], ctx))).toBe(EXIT.invalid);
    expect(exitCodeFor(new ApiError(500, 'INTERNAL', 'no', [], ctx))).toBe(EXIT.failed);
  });

  it('maps local failures', () => {
    expect(exitCodeFor(new UnreachableError('http://x', 'connection refused', undefined))).toBe(
      EXIT.unreachable,
    );
    expect(exitCodeFor(new UsageError('bad'))).toBe(EXIT.usage);
    expect(exitCodeFor(new BatchdError('CONFIG_INVALID', 'bad client.yaml'))).toBe(EXIT.usage);
    expect(exitCodeFor(new Error('anything else'))).toBe(EXIT.failed);
  });
});

describe('plain tables', () => {
  it('pads columns to the widest cell and trims line ends', () => {
    expect(
      alignColumns([
        ['ID', 'STATUS', 'NOTES'],
        ['a', 'done', ''],
        ['bbbb', 'failed', 'x'],
      ]),
    ).toBe('ID    STATUS  NOTES\na     done\nbbbb  failed  x');
  });
});
