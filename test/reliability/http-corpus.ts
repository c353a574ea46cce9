import { request } from 'node:http';

import { random } from './harness.ts';

/**
 * The bad-request corpus for the HTTP API: hand-written requests with the status, error code and
 * words each refusal must carry, and seeded mutations of a valid submission.
 */

export interface HttpCase {
  label: string;
  method: string;
  /** Sent verbatim (no normalisation of `..` or percent-escapes). */
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  chunked?: boolean;
  /** `raw`: refused by Node's HTTP layer before the API sees it (no JSON error body). */
  expect:
    | { status: number | number[]; code?: string | string[]; mentions?: (string | RegExp)[]; raw?: boolean }
    | 'either';
}

export interface HttpAnswer {
  status: number;
  text: string;
  json:
    | { error?: { code?: string; message?: string; details?: { message: string }[] }; jobs?: string[] }
    | undefined;
}

/** One request over a fresh connection, exactly as given. */
export function send(
  base: string,
  c: Pick<HttpCase, 'method' | 'path' | 'headers' | 'body' | 'chunked'> & { label?: string },
): Promise<HttpAnswer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const body = c.body === undefined ? undefined : Buffer.isBuffer(c.body) ? c.body : Buffer.from(c.body);
    const headers: Record<string, string> = { connection: 'close', ...c.headers };
    if (body !== undefined && c.chunked !== true && headers['content-length'] === undefined)
      headers['content-length'] = String(body.length);
    const req = request(
      { host: url.hostname, port: url.port, method: c.method, path: c.path, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: HttpAnswer['json'];
          try {
            json = JSON.parse(text) as HttpAnswer['json'];
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('error', (error: Error) =>
      reject(new Error(`${c.label ?? ''} ${c.method} ${c.path}: ${error.message}`, { cause: error })),
    );
    req.setTimeout(15_000, () => req.destroy(new Error(`no answer to ${c.method} ${c.path}`)));
    if (body !== undefined && c.chunked === true) {
      // Several chunks, so a size limit must hold without a Content-Length to go by.
      for (let at = 0; at < body.length; at += 65_536) req.write(body.subarray(at, at + 65_536));
    } else if (body !== undefined) req.write(body);
    req.end();
  });
}

const Q = '/queue/default';
const JSON_TYPE = { 'content-type': 'application/json' };
const YAML_TYPE = { 'content-type': 'application/yaml' };
const UNKNOWN_JOB = '20200101T000000.000Z-abcdef';

function post(
  label: string,
  body: string | Buffer | object,
  status: number | number[],
  code?: string | string[],
  ...mentions: (string | RegExp)[]
): HttpCase {
  const text = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  return {
    label,
    method: 'POST',
    path: Q,
    headers: JSON_TYPE,
    body: text,
    expect: { status, code, mentions },
  };
}

function yaml(
  label: string,
  body: string,
  status: number,
  code: string,
  ...mentions: (string | RegExp)[]
): HttpCase {
  return { label, method: 'POST', path: Q, headers: YAML_TYPE, body, expect: { status, code, mentions } };
}

function call(
  label: string,
  method: string,
  path: string,
  body: object | string | undefined,
  status: number | number[],
  code?: string | string[],
  ...mentions: (string | RegExp)[]
): HttpCase {
  return {
    label,
    method,
    path,
    headers: body === undefined ? {} : JSON_TYPE,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    expect: { status, code, mentions },
  };
}

const typed = (params: Record<string, unknown>, extra: Record<string, unknown> = {}): object => ({
  type: 'typed',
  params: { s: 'a', ...params },
  ...extra,
});

/** `job` is the id of a real queued-or-finished job the update cases aim at. */
export function handWrittenRequests(job: string): HttpCase[] {
  const J = `/job/${job}`;
  return [
    // ---- malformed bodies ----
    post('json-open-brace', '{', 400, 'BAD_JSON', /Malformed JSON/),
    post('json-cut-short', '{"type": "typed",', 400, 'BAD_JSON', /Malformed JSON/),
    post('json-trailing-comma', '{"type": "typed",}', 400, 'BAD_JSON', /Malformed JSON/),
    post('json-open-list', '[1, 2', 400, 'BAD_JSON'),
    post('json-nul-word', 'nul', 400, 'BAD_JSON'),
    post('json-single-quotes', "{'type': 'typed'}", 400, 'BAD_JSON'),
    post('json-trailing-garbage', '{"type": "typed"} x', 400, 'BAD_JSON'),
    post('json-nul-byte', '\u0000', 400, 'BAD_JSON'),
    post('json-not-utf8', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), 400, 'BAD_JSON', /UTF-8/),
    post('json-deep-maps', `${'{"a":'.repeat(40)}1${'}'.repeat(40)}`, 400, 'BAD_JSON', /deeper/),
    post('json-deep-lists', `${'['.repeat(30_000)}${']'.repeat(30_000)}`, 400, 'BAD_JSON', /deeper/),
    post('json-comment', '{"type": "typed" /* c */}', 400, 'BAD_JSON'),
    post('json-nan', '{"type": "typed", "params": {"s": "a", "f": NaN}}', 400, 'BAD_JSON'),
    // ---- not a job ----
    post('top-string', '"typed"', 422, 'JOB_INVALID', /Expected object/),
    post('top-number', '5', 422, 'JOB_INVALID', /Expected object/),
    post('top-list', '[]', 422, 'JOB_INVALID', /Expected object/),
    post('top-null', 'null', 422, 'JOB_INVALID', /Expected object/),
    post('top-empty-object', '{}', 422, 'JOB_INVALID', /Missing parameter "command"/),
    post('top-bool', 'true', 422, 'JOB_INVALID', /Expected object/),
    // ---- wrong types and values ----
    post('type-number', { type: 5 }, 422, 'JOB_INVALID', 'type'),
    post('type-traversal', { type: '../../etc/passwd' }, 422, 'JOB_INVALID', 'type', /name of letters/),
    post('params-string', { type: 'typed', params: 's=a' }, 422, 'JOB_INVALID', 'params'),
    post('params-object-value', typed({ s: { a: 1 } }), 422, 'JOB_INVALID', 'params.s', /got \{"a":1\}/),
    post('params-bad-key', typed({ '1x': 1 }), 422, 'JOB_INVALID', 'params.1x', /identifier/),
    post('priority-word', typed({}, { priority: 'high' }), 422, 'JOB_INVALID', 'priority'),
    post('priority-float', typed({}, { priority: 1.5 }), 422, 'JOB_INVALID', 'priority'),
    post('priority-huge', typed({}, { priority: 1e12 }), 422, 'JOB_INVALID', 'priority'),
    post('after-number', typed({}, { after: 5 }), 422, 'JOB_INVALID', 'after'),
    post('after-bad-id', typed({}, { after: ['x'] }), 422, 'JOB_INVALID', 'after.0', /job id/),
    post('after-unknown', typed({}, { after: [UNKNOWN_JOB] }), 422, 'JOB_INVALID', UNKNOWN_JOB),
    post(
      'not-before-word',
      typed({}, { not_before: 'tomorrow' }),
      422,
      'JOB_INVALID',
      'not_before',
      'tomorrow',
    ),
    post('notes-number', typed({}, { notes: 5 }), 422, 'JOB_INVALID', 'notes'),
    post('notes-huge', typed({}, { notes: 'n'.repeat(70_000) }), 422, 'JOB_INVALID', 'notes', /65536/),
    post('name-list', typed({}, { name: ['a'] }), 422, 'JOB_INVALID', 'name'),
    post('task-traversal', typed({}, { task: '../../x' }), 422, 'JOB_INVALID', 'task'),
    post('timeout-word', typed({}, { timeout: 'forever' }), 422, 'JOB_INVALID', 'timeout', /duration/),
    post('timeout-negative', typed({}, { timeout: -1 }), 422, 'JOB_INVALID', 'timeout', /duration/),
    post('host-number', typed({}, { host: 5 }), 422, 'JOB_INVALID', 'host'),
    post('unknown-field', typed({}, { queue: 'other' }), 422, 'JOB_INVALID', '"queue"'),
    post('unknown-type', { type: 'nosuch' }, 422, 'UNKNOWN_TYPE', 'nosuch'),
    post('unknown-param', typed({ nosuch: 1 }), 422, 'JOB_INVALID', /Unknown parameter "nosuch"/),
    post('missing-param', { type: 'typed' }, 422, 'JOB_INVALID', /Missing parameter "s"/),
    post('unknown-host', typed({}, { host: 'nowhere' }), 422, 'JOB_INVALID', /Unknown host "nowhere"/),
    post('int-over-max', typed({ i: 101 }), 422, 'JOB_INVALID', 'params.i', /≤ 100/),
    post('int-word', typed({ i: 'abc' }), 422, 'JOB_INVALID', 'params.i', /integer/),
    post('float-word', typed({ f: 'x' }), 422, 'JOB_INVALID', 'params.f', /number/),
    post('bool-maybe', typed({ b: 'maybe' }), 422, 'JOB_INVALID', 'params.b', /true or false/),
    post('choice-blue', typed({ c: 'blue' }), 422, 'JOB_INVALID', 'params.c', 'blue'),
    post('input-empty', typed({ in: '' }), 422, 'JOB_INVALID', 'params.in', /file path/),
    // An InputFile of a job that runs here must be a regular file now (only its metadata is looked at).
    post(
      'input-missing',
      typed({ in: '/nonexistent/batchd-input' }),
      422,
      'JOB_INVALID',
      'params.in',
      '"/nonexistent/batchd-input" does not exist',
    ),
    post('input-folder', typed({ in: '/etc' }), 422, 'JOB_INVALID', 'params.in', /is a folder/),
    post('input-device', typed({ in: '/dev/zero' }), 422, 'JOB_INVALID', 'params.in', /is a device/),
    post('input-relative', typed({ in: 'relative.txt' }), 422, 'JOB_INVALID', 'params.in', /relative path/),
    post(
      'input-task-one-missing',
      typed({ in: ['/etc/hostname', '/nonexistent/b'] }),
      422,
      'JOB_INVALID',
      'params.in.1',
    ),
    post('string-nul', typed({ s: 'a\u0000b' }), 422, 'JOB_INVALID', 'params.s', /NUL/),
    post('task-too-many', typed({ i: { range: '1..1000' } }), 422, 'JOB_INVALID', '1000 jobs'),
    post('range-step-zero', typed({ i: { range: '3..3..0' } }), 422, 'JOB_INVALID', 'params.i', /step/),
    post(
      'command-with-type',
      { type: 'typed', command: 'echo hi', params: { s: 'a' } },
      422,
      'JOB_INVALID',
      'command',
    ),
    // ---- YAML bodies ----
    yaml('yaml-unclosed', 'type: [\n', 400, 'YAML_SYNTAX', /YAML syntax/),
    yaml('yaml-tab', 'type: typed\nparams:\n\ts: a\n', 400, 'YAML_SYNTAX', /YAML syntax/),
    yaml('yaml-duplicate', 'type: typed\ntype: typed\n', 400, 'YAML_SYNTAX', /unique/i),
    yaml(
      'yaml-bomb',
      'a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n',
      400,
      'YAML_SYNTAX',
      /alias/i,
    ),
    yaml('yaml-missing-anchor', 'type: typed\nparams: {s: *x}\n', 400, 'YAML_SYNTAX', /alias/i),
    yaml('yaml-two-documents', 'type: typed\n---\ntype: typed\n', 400, 'YAML_SYNTAX', /document/i),
    yaml('yaml-top-list', '- type: typed\n', 422, 'JOB_INVALID', /Expected object/),
    yaml(
      'yaml-unknown-field',
      'type: typed\nparams: {s: a}\ncolour: red\n',
      422,
      'JOB_INVALID',
      '"colour"',
      'line 3',
    ),
    // ---- content types ----
    {
      label: 'form-encoded',
      method: 'POST',
      path: Q,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'type=typed&s=a',
      expect: { status: 400, code: 'BAD_JSON' },
    },
    {
      label: 'multipart',
      method: 'POST',
      path: Q,
      headers: { 'content-type': 'multipart/form-data; boundary=x' },
      body: '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--x--\r\n',
      expect: { status: 400, code: 'BAD_JSON' },
    },
    {
      label: 'xml',
      method: 'POST',
      path: Q,
      headers: { 'content-type': 'application/xml' },
      body: '<job type="typed"/>',
      expect: { status: 400, code: 'BAD_JSON' },
    },
    {
      label: 'latin1-charset',
      method: 'POST',
      path: Q,
      headers: { 'content-type': 'application/json; charset=latin1' },
      body: Buffer.from('{"type": "typed", "params": {"s": "caf\xe9"}}', 'latin1'),
      expect: { status: 400, code: 'BAD_JSON', mentions: [/UTF-8/] },
    },
    {
      label: 'yaml-to-json-only-route',
      method: 'PUT',
      path: J,
      headers: YAML_TYPE,
      body: 'priority: 3\n',
      expect: { status: 400, code: 'BAD_JSON' },
    },
    // ---- sizes ----
    post('oversized', typed({ s: 'x'.repeat(2_000_000) }), 413, 'TOO_LARGE', /max_body_bytes/),
    {
      label: 'oversized-chunked',
      method: 'POST',
      path: Q,
      headers: JSON_TYPE,
      body: JSON.stringify(typed({ s: 'x'.repeat(2_000_000) })),
      chunked: true,
      expect: { status: 413, code: 'TOO_LARGE' },
    },
    {
      label: 'oversized-declared',
      method: 'POST',
      path: Q,
      headers: { ...JSON_TYPE, 'content-length': '999999999' },
      body: '{}',
      expect: { status: 413, code: 'TOO_LARGE' },
    },
    {
      label: 'huge-header',
      method: 'GET',
      path: '/whoami',
      headers: { cookie: 'c'.repeat(40_000) },
      expect: { status: 431, raw: true },
    },
    // ---- names and traversal in the path ----
    call(
      'queue-traversal-encoded',
      'POST',
      '/queue/..%2F..%2Fetc',
      typed({}),
      [400, 404],
      ['NAME_INVALID', 'UNKNOWN_QUEUE', 'NOT_FOUND'],
    ),
    call(
      'queue-dotdot',
      'POST',
      '/queue/%2e%2e',
      typed({}),
      [400, 404],
      ['NAME_INVALID', 'UNKNOWN_QUEUE', 'NOT_FOUND'],
    ),
    call(
      'queue-staging',
      'POST',
      '/queue/.staging',
      typed({}),
      [400, 404],
      ['NAME_INVALID', 'UNKNOWN_QUEUE', 'NOT_FOUND'],
    ),
    call(
      'queue-nul',
      'POST',
      '/queue/default%00',
      typed({}),
      [400, 404],
      ['NAME_INVALID', 'UNKNOWN_QUEUE', 'NOT_FOUND'],
    ),
    call('queue-unknown', 'POST', '/queue/nosuch', typed({}), 404, 'UNKNOWN_QUEUE', 'nosuch'),
    call('queue-raw-dotdot', 'GET', '/queue/default/../../etc/passwd', undefined, [400, 404]),
    call(
      'job-traversal',
      'GET',
      '/job/..%2F..%2Fetc%2Fpasswd',
      undefined,
      [400, 404],
      ['NAME_INVALID', 'REQUEST_INVALID', 'UNKNOWN_JOB', 'NOT_FOUND'],
    ),
    call('job-not-an-id', 'GET', '/job/not-an-id', undefined, [400, 404]),
    call('job-unknown', 'GET', `/job/${UNKNOWN_JOB}`, undefined, 404, 'UNKNOWN_JOB', UNKNOWN_JOB),
    call('job-log-traversal', 'GET', `${J}/log?stream=..%2F..%2Fetc%2Fpasswd`, undefined, [400, 422]),
    call('task-traversal', 'GET', '/queue/default/task/..%2F..%2Fetc', undefined, [400, 404]),
    call('task-resume-traversal', 'POST', '/queue/default/task/..%2Fx/resume', undefined, [400, 404]),
    call('schedule-traversal', 'GET', '/schedule/..%2F..%2Fbatchd', undefined, [400, 404]),
    call('schedule-delete-traversal', 'DELETE', '/schedule/..%2Fx', undefined, [400, 404]),
    call('type-traversal', 'GET', '/type/..%2F..%2Fetc%2Fpasswd', undefined, [400, 404]),
    call('user-traversal', 'GET', '/user/..%2Fx/permissions', undefined, [400, 403, 404]),
    call('stats-traversal', 'GET', '/stats/..%2F..', undefined, [400, 404]),
    // ---- wrong methods ----
    call('patch-queue', 'PATCH', Q, {}, [404, 405], 'NOT_FOUND', /No such endpoint/),
    call('delete-stats', 'DELETE', '/stats', undefined, [404, 405], 'NOT_FOUND'),
    call('put-openapi', 'PUT', '/openapi.json', {}, [404, 405], 'NOT_FOUND'),
    call('post-whoami', 'POST', '/whoami', {}, [404, 405], 'NOT_FOUND'),
    call('delete-jobs', 'DELETE', '/jobs', undefined, [404, 405], 'NOT_FOUND'),
    call('post-job', 'POST', J, {}, [404, 405], 'NOT_FOUND'),
    call('put-queue-list', 'PUT', '/queue', {}, [404, 405], 'NOT_FOUND'),
    call('get-cancel', 'GET', `${J}/cancel`, undefined, [404, 405], 'NOT_FOUND'),
    // ---- job updates ----
    call('update-empty', 'PUT', J, {}, 422, undefined, /exactly one/),
    call('update-two', 'PUT', J, { priority: 1, notes: 'x' }, 422, undefined, /exactly one/),
    call('update-priority-word', 'PUT', J, { priority: 'urgent' }, 422, undefined, 'priority'),
    call('update-move-unknown', 'PUT', J, { move: 'nosuch' }, [404, 409, 422], undefined, 'nosuch'),
    call('update-move-traversal', 'PUT', J, { move: '../x' }, 422, undefined, 'move'),
    call('update-notes-number', 'PUT', J, { notes: 5 }, 422, undefined, 'notes'),
    call('update-unknown-field', 'PUT', J, { colour: 'red' }, 422, undefined, 'colour'),
    call('update-malformed', 'PUT', J, '{"priority":', 400, 'BAD_JSON'),
    // ---- queues, schedules, users, tokens ----
    call('queue-create-traversal', 'POST', '/queue', { name: '../x' }, 422, undefined, 'name'),
    call('queue-create-hidden', 'POST', '/queue', { name: '.hidden' }, 422, undefined, 'name'),
    call('queue-create-existing', 'POST', '/queue', { name: 'default' }, 409, 'ALREADY_EXISTS', 'default'),
    call(
      'queue-create-bad-flag',
      'POST',
      '/queue',
      { name: 'q1', enabled: 'yes' },
      422,
      undefined,
      'enabled',
    ),
    call('queue-create-unknown-field', 'POST', '/queue', { name: 'q2', bogus: 1 }, 422, undefined, 'bogus'),
    call('queue-create-nameless', 'POST', '/queue', {}, 422, undefined, 'name'),
    call('queue-update-priority', 'PUT', Q, { priority: 'x' }, 422, undefined, 'priority'),
    call('queue-update-schedule', 'PUT', Q, { schedule_name: 'nosuch' }, [404, 422], undefined, 'nosuch'),
    call('queue-update-unknown', 'PUT', '/queue/nosuch', {}, 404, 'UNKNOWN_QUEUE'),
    call('queue-delete-unknown', 'DELETE', '/queue/nosuch', undefined, 404, 'UNKNOWN_QUEUE'),
    call(
      'schedule-bad-time',
      'POST',
      '/schedule',
      { name: 's1', time: [{ begin: '25:00', end: '26:00' }] },
      422,
      undefined,
      /time of day/,
    ),
    call(
      'schedule-bad-weekday',
      'POST',
      '/schedule',
      { name: 's2', weekdays: ['Funday'] },
      422,
      undefined,
      'Funday',
    ),
    call(
      'schedule-bad-zone',
      'POST',
      '/schedule',
      { name: 's3', timezone: 'Mars/Base' },
      422,
      undefined,
      /time zone/,
    ),
    call('schedule-traversal-name', 'POST', '/schedule', { name: '../s' }, 422, undefined, 'name'),
    call(
      'user-short-password',
      'POST',
      '/user',
      { name: 'u1', password: 'short' },
      [400, 403, 422],
      undefined,
    ),
    call(
      'user-traversal-name',
      'POST',
      '/user',
      { name: '../u', password: 'long enough 1' },
      [400, 403, 422],
      undefined,
    ),
    call('token-negative-ttl', 'POST', '/token', { ttl: -1 }, [400, 403, 422], undefined),
    // ---- query strings ----
    call('jobs-bad-status', 'GET', '/jobs?status=bogus', undefined, [400, 422], undefined, 'bogus'),
    call('jobs-bad-limit', 'GET', '/queue/default/jobs?limit=-1', undefined, [400, 422], undefined, 'limit'),
    call('jobs-word-limit', 'GET', '/jobs?limit=abc', undefined, [400, 422], undefined, 'limit'),
    call('log-bad-stream', 'GET', `${J}/log?stream=stdin`, undefined, [400, 422], undefined, 'stream'),
  ];
}

/**
 * Every per-job request, with and without a body, about `id`: for a job of a queue the caller may
 * not view, each must be answered exactly as for an id no queue holds (404, the same body).
 */
export function perJobRequests(id: string): HttpCase[] {
  const J = `/job/${id}`;
  const unknown: HttpCase['expect'] = { status: 404, code: 'UNKNOWN_JOB', mentions: ['No job'] };
  const make = (label: string, method: string, path: string, body?: object | string): HttpCase => ({
    label,
    method,
    path,
    headers: body === undefined ? {} : JSON_TYPE,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    expect: unknown,
  });
  return [
    make('get', 'GET', J),
    make('results', 'GET', `${J}/results`),
    make('results-last', 'GET', `${J}/results/last`),
    make('log', 'GET', `${J}/log`),
    make('log-stderr', 'GET', `${J}/log?stream=stderr`),
    make('log-follow', 'GET', `${J}/log?follow=1`),
    make('log-bad-stream', 'GET', `${J}/log?stream=nosuch`),
    make('outputs', 'GET', `${J}/outputs`),
    make('output-file', 'GET', `${J}/outputs/result.txt`),
    make('put-priority', 'PUT', J, { priority: 5 }),
    make('put-first', 'PUT', J, { priority: 'first' }),
    make('put-move', 'PUT', J, { move: 'default' }),
    make('put-notes', 'PUT', J, { notes: 'x' }),
    make('put-host', 'PUT', J, { host: '*' }),
    make('put-empty', 'PUT', J, {}),
    make('put-bad-json', 'PUT', J, '{'),
    make('delete', 'DELETE', J),
    make('cancel', 'POST', `${J}/cancel`),
    make('retry', 'POST', `${J}/retry`),
    make('pause', 'POST', `${J}/pause`),
    make('resume', 'POST', `${J}/resume`),
  ];
}

const VALID_BODY = JSON.stringify({
  type: 'typed',
  params: { s: 'fuzz', i: 5, c: 'green', b: true },
  priority: 2,
  notes: 'fuzz base',
});
const TOKENS = [
  '{',
  '}',
  '[',
  ']',
  ':',
  ',',
  '"',
  '\\',
  '0',
  '-1',
  '1e999',
  'null',
  'true',
  '"x"',
  '[]',
  '{}',
  '\u0000',
  '\ud800',
  'é',
  '\n',
];

/** `count` seeded mutations of a valid submission: each must be accepted (201) or refused (4xx). */
export function fuzzedRequests(seed: number, count: number): HttpCase[] {
  const rng = random(seed);
  const seen = new Set<string>([VALID_BODY]);
  const cases: HttpCase[] = [];
  while (cases.length < count) {
    let text = VALID_BODY;
    for (let n = rng.int(1, 3); n > 0; n--) {
      const at = rng.int(0, text.length);
      const op = rng.int(0, 2);
      if (op === 0) text = text.slice(0, at) + rng.pick(TOKENS) + text.slice(at);
      else if (op === 1) text = text.slice(0, at) + text.slice(at + rng.int(1, 6));
      else text = text.slice(0, at) + String.fromCharCode(rng.int(0, 127)) + text.slice(at + 1);
    }
    if (seen.has(text)) continue;
    seen.add(text);
    const contentType = rng.pick(['application/json', 'application/yaml', 'text/plain', '']);
    cases.push({
      label: `fuzz-${cases.length}`,
      method: 'POST',
      path: Q,
      headers: contentType === '' ? {} : { 'content-type': contentType },
      body: text,
      expect: 'either',
    });
  }
  // Names in the path: random bytes, percent-encoded.
  for (let i = 0; i < 40; i++) {
    const bytes = Buffer.from(Array.from({ length: rng.int(1, 12) }, () => rng.int(0, 255)));
    const segment = [...bytes].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
    const path = rng.pick([
      `/queue/${segment}`,
      `/job/${segment}`,
      `/queue/default/task/${segment}`,
      `/type/${segment}`,
      `/schedule/${segment}`,
    ]);
    cases.push({
      label: `fuzz-path-${i}`,
      method: rng.pick(['GET', 'POST', 'DELETE']),
      path,
      headers: JSON_TYPE,
      body: '{}',
      expect: 'either',
    });
  }
  return cases;
}
