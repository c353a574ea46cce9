import { describe, expect, it } from 'vitest';

import { errorBody, STATUS_OF, statusOf } from '../../daemon/api/errors.ts';
import { BatchdError, ERROR_CODES } from '../../daemon/errors.ts';
import { errorBodySchema } from '../../daemon/protocol/index.ts';

/** daemon/api/errors.ts is the one place that maps error codes to HTTP statuses. */
describe('error codes to HTTP statuses', () => {
  it('every error code has a status of its own (a new code must be given one)', () => {
    expect(ERROR_CODES.filter((code) => STATUS_OF[code] === undefined)).toEqual([]);
  });

  it('uses the statuses the contract names', () => {
    const expected: Record<string, number> = {
      BAD_JSON: 400,
      NAME_INVALID: 400,
      UNAUTHORIZED: 401,
      FORBIDDEN: 403,
      UNKNOWN_QUEUE: 404,
      UNKNOWN_JOB: 404,
      CONFLICT: 409,
      ALREADY_EXISTS: 409,
      TOO_LARGE: 413,
      JOB_INVALID: 422,
      ENTITY_INVALID: 422,
      INTERNAL: 500,
    };
    for (const [code, status] of Object.entries(expected))
      expect([code, statusOf(new BatchdError(code as never, 'x'))]).toEqual([code, status]);
  });

  it('an unknown name inside a submitted document is 422; in the path it is 404', () => {
    expect(
      statusOf(new BatchdError('UNKNOWN_TYPE', 'x', {}, { problems: [{ field: 'type', message: 'x' }] })),
    ).toBe(422);
    expect(statusOf(new BatchdError('UNKNOWN_TYPE', 'x'))).toBe(404);
  });

  it('the body is the one error shape, with field and line details', () => {
    const body = errorBody(
      new BatchdError(
        'JOB_INVALID',
        'bad',
        {},
        { problems: [{ field: 'params.n', line: 3, message: 'Expected an integer' }, { message: 'other' }] },
      ),
    );
    expect(errorBodySchema.parse(body)).toEqual({
      error: {
        code: 'JOB_INVALID',
        message: 'bad',
        details: [{ field: 'params.n', line: 3, message: 'Expected an integer' }, { message: 'other' }],
      },
    });
    expect(errorBody(new BatchdError('CONFLICT', 'c'))).toEqual({
      error: { code: 'CONFLICT', message: 'c' },
    });
  });
});
