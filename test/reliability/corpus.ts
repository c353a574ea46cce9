import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import path from 'node:path';

import { type Random, random } from './harness.ts';

/**
 * The bad-drop corpus: hand-written cases, each with the error code it must be refused with and
 * words its error must contain, and seeded mutations of valid job files, which may be refused or
 * (when a mutation happens to stay valid) accepted, but never lost.
 */

export type Expect = { code: string; mentions: (string | RegExp)[] } | 'accepted';

export interface DropCase {
  /** The file name in incoming/ (a Buffer for names that are not valid UTF-8). */
  name: string | Buffer;
  /** The bytes, for regular files. */
  bytes?: Buffer;
  /** Makes a special file (link, FIFO, folder, socket) at `target`; returns what to close later. */
  make?: (target: string, scratch: string) => Server | undefined;
  expect: Expect | 'either';
}

/** The job types the corpus runs against (see the test's env); `command` is made harmless. */
export const CORPUS_TYPES = {
  typed: {
    template: "printf '%s|' $s $i $f $b $c $in $out",
    params: [
      { name: 's', type: 'String' },
      { name: 'i', type: 'Integer', default: 1, min: 0, max: 100 },
      { name: 'f', type: 'Float', default: 0.5 },
      { name: 'b', type: 'Boolean', default: false },
      { name: 'c', type: 'Choice', choices: ['red', 'green'], default: 'red' },
      { name: 'in', type: 'InputFile', default: '/etc/hostname' },
      { name: 'out', type: 'OutputFile', default: '/tmp/batchd-corpus-out' },
    ],
  },
  // Mutations may write any command at all: here it is printed, never run.
  command: { template: "printf '%s\\n' $command", params: [{ name: 'command', type: 'String' }] },
};
export const MAX_FILE = 131_072;
export const MAX_TASK = 50;

const VALID = 'type: typed\nparams:\n  s: hello\n';
const KNOWN_ID = '20200101T000000.000Z-abcdef';

const SYNTAX = 'YAML_SYNTAX';
const INVALID = 'JOB_INVALID';

function text(name: string, content: string, code: string, ...mentions: (string | RegExp)[]): DropCase {
  return { name, bytes: Buffer.from(content), expect: { code, mentions } };
}

function accepted(name: string | Buffer, content: string | Buffer): DropCase {
  return { name, bytes: Buffer.isBuffer(content) ? content : Buffer.from(content), expect: 'accepted' };
}

function bytes(name: string, content: Buffer, code: string, ...mentions: (string | RegExp)[]): DropCase {
  return { name, bytes: content, expect: { code, mentions } };
}

/** `field: value` lines on top of a valid typed job, refused naming the field. */
function field(label: string, yaml: string, fieldName: string, ...mentions: (string | RegExp)[]): DropCase {
  return text(`field-${label}.yaml`, `${VALID}${yaml}\n`, INVALID, fieldName, ...mentions);
}

/** A value of one parameter of the typed job, refused naming `params.<name>`. */
function param(label: string, name: string, value: string, ...mentions: (string | RegExp)[]): DropCase {
  const s = name === 's' ? '' : '  s: hello\n';
  return text(
    `param-${label}.yaml`,
    `type: typed\nparams:\n${s}  ${name}: ${value}\n`,
    INVALID,
    `params.${name}`,
    ...mentions,
  );
}

function nested(depth: number, open: string, close: string, inner = '1'): string {
  return open.repeat(depth) + inner + close.repeat(depth);
}

export function handWritten(): DropCase[] {
  const cases: DropCase[] = [
    // ---- malformed YAML: the syntax error and its line ----
    text('yaml-unclosed-map.yaml', 'type: typed\nparams: {s: a\n', SYNTAX, 'YAML syntax', 'line'),
    text('yaml-unclosed-seq.yaml', `${VALID}after: [a, b\n`, SYNTAX, 'YAML syntax'),
    text('yaml-unclosed-dquote.yaml', 'type: "typed\nparams: {}\n', SYNTAX, 'YAML syntax'),
    text('yaml-unclosed-squote.yaml', "type: 'typed\nparams: {}\n", SYNTAX, 'YAML syntax'),
    text('yaml-tab-indent.yaml', 'type: typed\nparams:\n\ts: x\n', SYNTAX, 'YAML syntax', 'line 3'),
    text('yaml-duplicate-key.yaml', `${VALID}type: typed\n`, SYNTAX, 'YAML syntax', /unique/i),
    text('yaml-compact-nested.yaml', 'type: typed: x\n', SYNTAX, 'YAML syntax', 'line 1'),
    text('yaml-seq-then-map.yaml', '- a\nb: c\n', SYNTAX, 'YAML syntax'),
    text('yaml-bad-escape.yaml', 'type: typed\nparams:\n  s: "\\q"\n', SYNTAX, 'YAML syntax', 'line 3'),
    text('yaml-two-documents.yaml', `${VALID}---\n${VALID}`, SYNTAX, 'YAML syntax', /document/i),
    text('yaml-undefined-alias.yaml', 'type: typed\nparams:\n  s: *nope\n', SYNTAX, 'YAML syntax', 'nope'),
    text('yaml-flow-missing-comma.yaml', '{type: typed params: {s: a}}\n', SYNTAX, 'YAML syntax'),
    text('yaml-bad-block-indicator.yaml', `${VALID}notes: |x\n  text\n`, SYNTAX, 'YAML syntax'),
    text('yaml-reserved-at.yaml', 'type: @typed\n', SYNTAX, 'YAML syntax', /reserved/i),
    text('yaml-reserved-backtick.yaml', 'type: `typed`\n', SYNTAX, 'YAML syntax', /reserved/i),
    text('yaml-map-after-scalar.yaml', 'type: typed\n- a\n', SYNTAX, 'YAML syntax'),
    text('yaml-unclosed-json.yaml', '{"type": "typed", "params": {"s": "a"}\n', SYNTAX, 'YAML syntax'),
    text('yaml-bad-indent.yaml', 'type: typed\nparams:\n    s: a\n  i: 2\n', SYNTAX, 'YAML syntax', 'line 4'),
    text('yaml-brace-soup.yaml', `${'{'.repeat(40)}\n`, SYNTAX, 'YAML syntax'),
    text('yaml-anchor-no-value.yaml', 'type: typed\nparams:\n  s: &a\n  i: *a\n', INVALID, 'params.s'),
    text('yaml-merge-key.yaml', `<<: {type: typed}\nparams: {s: a}\n`, INVALID, '"<<"'),
    text('yaml-complex-key.yaml', `${VALID}? [a, b]\n: c\n`, INVALID, /Unknown field/),
    text(
      'yaml-hash-in-name.yaml',
      'type: typed#comment\nparams: {s: a}\n',
      INVALID,
      'type',
      /name of letters/,
    ),
    accepted('yaml-control-char.yaml', 'type: typed\nparams:\n  s: "a\u0007b"\n'),
    accepted('yaml-unknown-tag.yaml', 'type: typed\nparams:\n  s: !weird hello\n'),
    text(
      'yaml-binary-tag.yaml',
      'type: typed\nparams:\n  s: !!binary aGVsbG8=\n',
      INVALID,
      'params.s',
      '(Buffer)',
    ),
    text(
      'yaml-set-tag.yaml',
      'type: typed\nparams: !!set {a, b}\n',
      INVALID,
      'params',
      /Expected record, got .*Set/,
    ),

    // ---- not a job (no mapping at the top) ----
    text('top-empty.yaml', '', INVALID, /Expected object/),
    text('top-whitespace.yaml', '   \n\n  \n', INVALID, /Expected object/),
    text('top-only-comments.yaml', '# nothing here\n# at all\n', INVALID, /Expected object/),
    text('top-document-marker.yaml', '---\n', INVALID, /Expected object/),
    text('top-document-end.yaml', '---\n...\n', INVALID, /Expected object/),
    text('top-tilde.yaml', '~\n', INVALID, /Expected object/),
    text('top-null.yaml', 'null\n', INVALID, /Expected object/),
    text('top-string.yaml', 'hello world\n', INVALID, /Expected object/, 'hello world'),
    text('top-number.yaml', '42\n', INVALID, /Expected object/, '42'),
    text('top-bool.yaml', 'true\n', INVALID, /Expected object/),
    text('top-list.yaml', '- type: typed\n- type: typed\n', INVALID, /Expected object/, 'array'),
    // A job of the queue's type, `command`, without its command (the corpus's own `command` type
    // prints its parameter, so config/command-type.ts leaves it a required String).
    text('top-empty-map.yaml', '{}\n', INVALID, 'command', /Missing parameter "command"/),
    text('top-empty-list.json', '[]\n', INVALID, /Expected object/),
    text('top-json-list.json', '[{"type": "typed", "params": {"s": "a"}}]\n', INVALID, /Expected object/),
    text('top-json-string.json', '"type: typed"\n', INVALID, /Expected object/),
    text('top-json-number.json', '3.14\n', INVALID, /Expected object/),

    // ---- JSON variants ----
    text('json-trailing-garbage.json', '{"type": "typed", "params": {"s": "a"}} x\n', SYNTAX, 'YAML syntax'),
    text(
      'json-comment.json',
      '{\n  // a comment\n  "type": "typed"\n}\n',
      INVALID,
      /Unknown field "\/\/ a comment/,
    ),
    text(
      'json-nan.json',
      '{"type": "typed", "params": {"s": "a", "i": NaN}}\n',
      INVALID,
      'params.i',
      /integer/,
    ),
    text(
      'json-huge-number.json',
      '{"type": "typed", "params": {"s": "a", "f": 1e999}}\n',
      INVALID,
      'params.f',
    ),
    text(
      'json-unsafe-integer.json',
      '{"type": "typed", "params": {"s": "a", "i": 9007199254740993}}\n',
      INVALID,
      'params.i',
      /integer/,
    ),
    text('json-wrong-params.json', '{"type": "typed", "params": "s=a"}\n', INVALID, 'params', 's=a'),
    text(
      'json-unknown-field.json',
      '{"type": "typed", "params": {"s": "a"}, "queue": "other"}\n',
      INVALID,
      '"queue"',
    ),
    text(
      'json-nul-escape.json',
      '{"type": "typed", "params": {"s": "a\\u0000b"}}\n',
      INVALID,
      'params.s',
      /NUL/,
    ),
    text('json-object-param.json', '{"type": "typed", "params": {"s": {"x": 1}}}\n', INVALID, 'params.s'),
    text('json-null-param.json', '{"type": "typed", "params": {"s": null}}\n', INVALID, 'params.s'),
    accepted('json-valid.json', '{"type": "typed", "params": {"s": "from json"}}\n'),
    accepted('json-single-quotes.json', "{'type': 'typed', 'params': {'s': 'flow yaml'}}\n"),
    accepted('json-trailing-comma.json', '{"type": "typed", "params": {"s": "a"},}\n'),
    accepted('json-bom.json', '\ufeff{"type": "typed", "params": {"s": "bom"}}\n'),

    // ---- wrong types for every field of a job file ----
    text('field-type-number.yaml', 'type: 5\n', INVALID, 'type', '5'),
    text('field-type-list.yaml', 'type: [typed]\n', INVALID, 'type', 'array'),
    text('field-type-map.yaml', 'type: {a: 1}\n', INVALID, 'type'),
    text('field-type-traversal.yaml', 'type: ../../etc/passwd\n', INVALID, 'type', /name of letters/),
    text('field-type-space.yaml', 'type: a b\n', INVALID, 'type', /name of letters/),
    text('field-type-empty.yaml', 'type: ""\n', INVALID, 'type'),
    text('field-type-null.yaml', 'type: null\nparams: {s: a}\n', INVALID, 'type'),
    text('field-type-bool.yaml', 'type: true\n', INVALID, 'type', 'true'),
    text('field-command-number.yaml', 'command: 5\n', INVALID, 'command', '5'),
    text('field-command-empty.yaml', 'command: ""\n', INVALID, 'command'),
    text('field-command-list.yaml', 'command: [echo, hi]\n', INVALID, 'command'),
    text('field-command-map.yaml', 'command: {run: echo}\n', INVALID, 'command'),
    text('field-command-null.yaml', 'command:\n', INVALID, 'command'),
    text(
      'field-command-with-type.yaml',
      'type: typed\ncommand: echo hi\nparams: {s: a}\n',
      INVALID,
      'command',
      /built-in command type/,
    ),
    text(
      'field-command-twice.yaml',
      'command: echo a\nparams: {command: echo b}\n',
      INVALID,
      'command',
      /once/,
    ),
    text('field-params-string.yaml', 'type: typed\nparams: s=a\n', INVALID, 'params'),
    text('field-params-list.yaml', 'type: typed\nparams: [1, 2]\n', INVALID, 'params'),
    text('field-params-number.yaml', 'type: typed\nparams: 5\n', INVALID, 'params'),
    text('field-params-null.yaml', 'type: typed\nparams:\n', INVALID, 'params'),
    text('field-params-key-digit.yaml', `${VALID}  1x: a\n`, INVALID, 'params', /identifier/),
    text('field-params-key-dash.yaml', `${VALID}  a-b: a\n`, INVALID, 'params', /identifier/),
    text('field-params-key-empty.yaml', `${VALID}  "": a\n`, INVALID, 'params', /identifier/),
    field('host-number', 'host: 5', 'host', '5'),
    field('host-traversal', 'host: ../h', 'host', /name of letters/),
    field('host-slash', 'host: a/b', 'host', /name of letters/),
    field('host-list', 'host: [a]', 'host'),
    field('host-name-number', 'host_name: 5', 'host_name'),
    field('priority-word', 'priority: high', 'priority', 'high'),
    field('priority-float', 'priority: 1.5', 'priority', /int/),
    field('priority-too-big', 'priority: 1000001', 'priority', /1000000/),
    field('priority-too-small', 'priority: -1000001', 'priority', /-1000000/),
    field('priority-bool', 'priority: true', 'priority'),
    field('priority-list', 'priority: [1]', 'priority'),
    field('not-before-word', 'not_before: tomorrow', 'not_before', 'tomorrow'),
    field('not-before-bad-date', 'not_before: 2026-13-45T00:00:00Z', 'not_before', '2026-13-45'),
    field('not-before-number', 'not_before: 5', 'not_before'),
    field('not-before-map', 'not_before: {a: 1}', 'not_before'),
    field('start-time-word', 'start_time: never', 'start_time', 'never'),
    field('after-number', 'after: 5', 'after'),
    field('after-not-an-id', 'after: not-an-id', 'after', /job id/),
    field('after-list-bad', 'after: [x]', 'after.0', /job id/),
    field('after-list-number', 'after: [5]', 'field after', /list of string, got \[5\]/),
    field('after-map', 'after: {a: 1}', 'after'),
    field('after-unknown', `after: [${KNOWN_ID}]`, 'after.0', KNOWN_ID, /Unknown job/),
    field('notes-number', 'notes: 5', 'notes'),
    field('notes-list', 'notes: [a]', 'notes'),
    field('notes-map', 'notes: {a: b}', 'notes'),
    field('notes-huge', `notes: ${'n'.repeat(70_000)}`, 'notes', /65536/),
    field('name-number', 'name: 5', 'name'),
    field('name-long', `name: ${'x'.repeat(300)}`, 'name', /200/),
    field('name-list', 'name: [a]', 'name'),
    field('task-slash', 'task: a/b', 'task', /name of letters/),
    field('task-number', 'task: 5', 'task'),
    field('task-empty', 'task: ""', 'task'),
    field('task-dot', 'task: .hidden', 'task', /name of letters/),
    field('timeout-word', 'timeout: forever', 'timeout', 'forever', /duration/),
    field('timeout-negative', 'timeout: -5', 'timeout', /duration/),
    field('timeout-unit', 'timeout: 5x', 'timeout', /duration/),
    field('timeout-list', 'timeout: [1]', 'timeout'),
    field('timeout-bool', 'timeout: true', 'timeout'),
    field('timeout-half', 'timeout: 1h30', 'timeout', /duration/),

    // ---- unknown names: fields, types, parameters, hosts, queues ----
    field('unknown-queue', 'queue: other', '"queue"', /Unknown field/),
    field('unknown-capital', 'Type: typed', '"Type"', /Unknown field/),
    field('unknown-foo', 'foo: 1', '"foo"'),
    field('unknown-two', 'foo: 1\nbar: 2', '"foo"', '"bar"'),
    field('unknown-paramz', 'paramz: {s: a}', '"paramz"'),
    text('unknown-type.yaml', 'type: nosuch\n', 'UNKNOWN_TYPE', 'nosuch', 'typed', 'line 1'),
    text('unknown-type-dotted.yaml', 'type: typed.v2\n', 'UNKNOWN_TYPE', 'typed.v2'),
    text(
      'unknown-param.yaml',
      `${VALID}  nosuch: 1\n`,
      INVALID,
      'params.nosuch',
      /Unknown parameter "nosuch"/,
    ),
    text('unknown-param-command.yaml', 'command: echo hi\nparams: {x: 1}\n', INVALID, 'params.x'),
    text('unknown-host.yaml', `${VALID}host: nowhere\n`, INVALID, 'host', /Unknown host "nowhere"/),
    text('unknown-host-name.yaml', `${VALID}host_name: nowhere\n`, INVALID, 'host_name', /Unknown host/),
    text('missing-param.yaml', 'type: typed\n', INVALID, 'params.s', /Missing parameter "s"/),
    text(
      'missing-param-other.yaml',
      'type: typed\nparams: {i: 3}\n',
      INVALID,
      'params.s',
      /Missing parameter "s"/,
    ),

    // ---- wrong values for every parameter type ----
    param('int-word', 'i', 'abc', /integer/),
    param('int-float', 'i', '1.5', /integer/),
    param('int-over-max', 'i', '101', /≤ 100/),
    param('int-under-min', 'i', '-1', /≥ 0/),
    param('int-bool', 'i', 'true', /integer/),
    param('int-exponent', 'i', '"1e3"', /integer/),
    param('int-unsafe', 'i', '9007199254740993', /integer/),
    param('int-list-one-bad', 'i', '[1, x]', 'params.i.1'),
    param('float-word', 'f', 'x', /number/),
    param('float-inf', 'f', '.inf', /Infinity \(not a finite number\)/),
    param('float-nan', 'f', '.nan', /NaN \(not a finite number\)/),
    param('float-bool', 'f', 'true', /number/),
    param('float-empty', 'f', '""', /number/),
    param('bool-maybe', 'b', 'maybe', /true or false/),
    param('bool-two', 'b', '2', /true or false/),
    param('bool-word', 'b', 'yes!', /true or false/),
    param('choice-blue', 'c', 'blue', /"red", "green"/, 'blue'),
    param('choice-number', 'c', '3', /"red", "green"/),
    param('choice-empty', 'c', '""', /"red", "green"/),
    param('input-empty', 'in', '""', /file path/),
    param('input-bool', 'in', 'true', /file path/),
    param('input-long', 'in', `/${'p'.repeat(5000)}`, /4096/),
    // Jobs here run on this machine: an InputFile must be a regular file when the job is accepted.
    param(
      'input-missing',
      'in',
      '/nonexistent/batchd-corpus-input',
      '"/nonexistent/batchd-corpus-input" does not exist',
    ),
    param('input-folder', 'in', '/etc', /is a folder/),
    param('input-device', 'in', '/dev/zero', /is a device/),
    param('input-relative', 'in', 'relative.txt', /relative path/),
    param('input-list-one-missing', 'in', '[/etc/hostname, /nonexistent/b]', 'params.in.1'),
    param('output-empty', 'out', '""', /file path/),
    param('output-bool', 'out', 'false', /file path/),
    param('string-map', 's', '{nested: map}', 'params.s'),
    param('string-null', 's', 'null', 'params.s'),
    param('string-nul', 's', '"a\\0b"', /NUL/),
    param('string-empty-list', 's', '[]', 'params.s'),
    param('range-letters', 'i', '{range: "a..b"}', 'params.i', /range/),
    param('range-one', 'i', '{range: [1]}', 'params.i'),
    param('range-step-zero-list', 'i', '{range: [1, 2, 0]}', 'params.i'),
    param('range-extra-key', 'i', '{range: "1..2", step: 1}', 'params.i'),
    param('each-empty', 'i', '{each: []}', 'params.i'),
    param('each-map', 'i', '{each: {a: 1}}', 'params.i'),
    text(
      'task-too-many.yaml',
      'type: typed\nparams:\n  s: a\n  i: {range: "1..1000"}\n',
      INVALID,
      'params',
      '1000 jobs',
      `${MAX_TASK}`,
    ),
    text(
      'task-huge-range.yaml',
      'type: typed\nparams:\n  s: a\n  i: {range: [0, 100000000]}\n',
      INVALID,
      'params',
      /limit/,
    ),
    text(
      'task-infinite-step.yaml',
      'type: typed\nparams:\n  s: a\n  i: {range: "5..1..0"}\n',
      INVALID,
      'params',
    ),
    text(
      'task-step-zero-same.yaml',
      'type: typed\nparams:\n  s: a\n  i: {range: "3..3..0"}\n',
      INVALID,
      'params.i',
      /step/,
    ),
    text(
      'task-product.yaml',
      'type: typed\nparams:\n  s: [a, b, c, d, e, f, g, h]\n  i: [1, 2, 3, 4, 5, 6, 7, 8]\n',
      INVALID,
      '64 jobs',
    ),
    text(
      'task-bad-element.yaml',
      'type: typed\nparams:\n  s: [a, b]\n  c: [red, blue]\n',
      INVALID,
      'params.c.1',
      'blue',
    ),

    // ---- bombs, depth and size ----
    text('bomb-billion-laughs.yaml', billionLaughs(), SYNTAX, /alias count/i),
    text(
      'bomb-alias-params.yaml',
      'x: &x [a, a, a, a, a, a, a, a, a, a]\ny: &y [*x, *x, *x, *x, *x, *x, *x, *x, *x, *x]\nz: &z [*y, *y, *y, *y, *y, *y, *y, *y, *y, *y]\nw: [*z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z, *z]\n',
      SYNTAX,
      /alias count/i,
    ),
    text('deep-flow-yaml.yaml', `${VALID}notes: ${nested(5000, '[', ']')}\n`, SYNTAX, /nested too deeply/),
    text(
      'deep-json.json',
      `{"type": "typed", "params": {"s": "a"}, "notes": ${nested(20_000, '[', ']')}}`,
      INVALID,
      'notes',
      /Expected string, got \[…\] \(array\)/,
    ),
    text(
      'deep-json-maps.json',
      `{"type": "typed", "params": {"s": "a"}, "notes": ${nested(20_000, '{"a":', '}')}}`,
      INVALID,
      'notes',
    ),
    text(
      'deep-block-yaml.yaml',
      `${VALID}notes:\n${Array.from({ length: 400 }, (_, i) => `${' '.repeat(i + 1)}k${i}:`).join('\n')} 1\n`,
      INVALID,
      'notes',
    ),
    text(
      'many-keys.yaml',
      `${VALID}${Array.from({ length: 3000 }, (_, i) => `k${i}: 1`).join('\n')}\n`,
      INVALID,
      /Unknown fields/,
      '"k0"',
    ),
    text('long-line-name.yaml', `${VALID}name: ${'y'.repeat(60_000)}\n`, INVALID, 'name', /200/),
    text(
      'over-size.yaml',
      `${VALID}# ${'z'.repeat(MAX_FILE)}\n`,
      'DROP_TOO_LARGE',
      `${MAX_FILE}`,
      'max_job_file_size',
    ),
    {
      name: 'over-size-sparse.yaml',
      make: (target) => sparse(target, 10_000_000),
      expect: { code: 'DROP_TOO_LARGE', mentions: ['10000000'] },
    },
    accepted('at-size-limit.yaml', padTo(`${VALID}# `, MAX_FILE)),

    // ---- binary and broken text ----
    bytes('bin-nul-middle.yaml', Buffer.from('type: typed\0\nparams: {s: a}\n'), 'DROP_BINARY', /NUL/),
    bytes('bin-zeros.yaml', Buffer.alloc(64), 'DROP_BINARY', /NUL/),
    bytes('bin-random.yaml', randomBytes(random(7), 512), 'DROP_BINARY'),
    bytes('bin-png.yaml', Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), 'DROP_BINARY'),
    bytes(
      'bin-gzip.yaml',
      Buffer.from('1f8b0800000000000003cb48cdc9c95728cf2fca490100', 'hex'),
      'DROP_BINARY',
    ),
    bytes('bin-elf.yaml', Buffer.from('7f454c4602010100000000000000000002003e00', 'hex'), 'DROP_BINARY'),
    bytes(
      'bin-utf16le.yaml',
      Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(VALID, 'utf16le')]),
      'DROP_BINARY',
    ),
    bytes('bin-utf16be.yaml', Buffer.from(VALID, 'utf16le').swap16(), 'DROP_BINARY'),
    bytes(
      'bin-latin1.yaml',
      Buffer.from('type: typed\nparams: {s: caf\xe9}\n', 'latin1'),
      'DROP_BINARY',
      /UTF-8/,
    ),
    bytes(
      'bin-overlong.yaml',
      Buffer.concat([
        Buffer.from('type: typed\nparams: {s: '),
        Buffer.from([0xc0, 0xaf]),
        Buffer.from('}\n'),
      ]),
      'DROP_BINARY',
      /UTF-8/,
    ),
    bytes(
      'bin-continuation.yaml',
      Buffer.concat([Buffer.from(VALID), Buffer.from([0x80])]),
      'DROP_BINARY',
      /UTF-8/,
    ),
    bytes(
      'bin-truncated-char.yaml',
      Buffer.concat([Buffer.from(VALID), Buffer.from('#'), Buffer.from([0xe2, 0x82])]),
      'DROP_BINARY',
      /UTF-8/,
    ),
    bytes(
      'bin-surrogate.yaml',
      Buffer.concat([
        Buffer.from('type: typed\nparams: {s: '),
        Buffer.from([0xed, 0xa0, 0x80]),
        Buffer.from('}\n'),
      ]),
      'DROP_BINARY',
      /UTF-8/,
    ),
    bytes('bin-ff.yaml', Buffer.alloc(100, 0xff), 'DROP_BINARY', /UTF-8/),
    accepted('text-bom.yaml', `\ufeff${VALID}`),
    accepted('text-crlf.yaml', VALID.replaceAll('\n', '\r\n')),
    accepted('text-unicode.yaml', 'type: typed\nparams:\n  s: "héllo ✓ 日本 🚀"\nnotes: "ünïcödé"\n'),
    accepted('text-no-newline.yaml', VALID.trimEnd()),

    // ---- files that are not regular files ----
    {
      name: 'special-symlink.yaml',
      make: (t, s) => link(t, write(path.join(s, 'target.yaml'), VALID)),
      expect: { code: 'DROP_NOT_REGULAR', mentions: [/symbolic link/] },
    },
    {
      name: 'special-dangling.yaml',
      make: (t, s) => link(t, path.join(s, 'missing.yaml')),
      expect: { code: 'DROP_NOT_REGULAR', mentions: [/symbolic link/] },
    },
    {
      name: 'special-link-devzero.yaml',
      make: (t) => link(t, '/dev/zero'),
      expect: { code: 'DROP_NOT_REGULAR', mentions: [/symbolic link/] },
    },
    {
      name: 'special-link-dir.yaml',
      make: (t) => link(t, '/etc'),
      expect: { code: 'DROP_NOT_REGULAR', mentions: [/symbolic link/] },
    },
    {
      name: 'special-link-self.yaml',
      make: (t) => link(t, t),
      expect: { code: 'DROP_NOT_REGULAR', mentions: [/symbolic link/] },
    },
    {
      name: 'special-fifo.yaml',
      make: (t) => void execFileSync('mkfifo', [t]),
      expect: { code: 'DROP_NOT_REGULAR', mentions: [/named pipe/] },
    },
    {
      name: 'special-folder.yaml',
      make: (t) => void mkdirSync(t),
      expect: { code: 'DROP_NOT_REGULAR', mentions: [/folder/] },
    },
    {
      name: 'special-folder-noext',
      make: (t) => void mkdirSync(path.join(t, 'inner'), { recursive: true }),
      expect: { code: 'DROP_NOT_REGULAR', mentions: [/folder/] },
    },
    {
      name: 'special-socket.yaml',
      make: (t) => listen(t),
      expect: { code: 'DROP_NOT_REGULAR', mentions: [/socket/] },
    },
    {
      name: 'special-hardlink.yaml',
      make: (t, s) => void linkSync(write(path.join(s, 'linked.yaml'), VALID), t),
      expect: 'accepted',
    },
    {
      // Another name of a file the dropper may not read: refused without quoting a byte of it.
      name: 'special-hardlink-invalid.yaml',
      make: (t, s) =>
        void linkSync(write(path.join(s, 'linked-secret.yaml'), `${VALID}secret_field: hunter2\n`), t),
      expect: { code: INVALID, mentions: [/hard links/, /^(?![\s\S]*hunter2)/] },
    },
    {
      // A syntax error quotes the line it is on: a hard-linked drop's is never quoted.
      name: 'special-hardlink-syntax.yaml',
      make: (t, s) => void linkSync(write(path.join(s, 'linked-syntax.yaml'), 'type: [hunter2\n'), t),
      expect: { code: SYNTAX, mentions: [/hard links/, /^(?![\s\S]*hunter2)/] },
    },
    // Control characters in what the error quotes: escaped, so the error file stays valid YAML.
    text(
      'ctl-chars-key.json',
      JSON.stringify({ type: 'typed', params: { s: 'a' }, ['k\x7f\x9b\x1bz']: 1 }),
      INVALID,
      'k\\x7f\\x9b\\x1bz',
    ),
    text(
      'ctl-long-key.json',
      JSON.stringify({ type: 'typed', params: { s: 'a' }, ['x'.repeat(5000)]: 1 }),
      INVALID,
      /…/,
    ),
    // Names and keys an error file quotes as they are: raw C0/C1 controls, DEL, non-characters,
    // a lone surrogate, NUL and invalid UTF-8 (each error file is parsed back by the test).
    text('ctl-name-\x01\x1b[31m.yaml', 'type: [\n', SYNTAX, 'YAML syntax'),
    text('ctl-name-\x7f\x85\x9b.yaml', 'type: [\n', SYNTAX, 'YAML syntax'),
    text('ctl-name-\ufffe\uffff.yaml', 'type: nosuch\n', 'UNKNOWN_TYPE', 'nosuch'),
    text(
      'ctl-raw-controls.yaml',
      'type: typed\nparams:\n  s: a\x01\x02\x1b[2J\x7f\x85b\n  "bo\x01gus\x7f\ufffe": 1\n',
      INVALID,
      'params.bo',
    ),
    text('ctl-nonchar-type.yaml', 'type: ty\ufffeped\n', INVALID, 'type'),
    text(
      'ctl-surrogate-key.json',
      '{"type": "typed", "params": {"s": "a", "k\\ud800": 1}}',
      INVALID,
      'params.k',
    ),
    bytes('ctl-nul-value.yaml', Buffer.from('type: typed\nparams:\n  s: a\0b\n'), 'DROP_BINARY', /NUL/),
    bytes(
      'ctl-invalid-utf8-key.yaml',
      Buffer.concat([
        Buffer.from('type: typed\nparams:\n  s: a\n  k'),
        Buffer.from([0xc3, 0x28]),
        Buffer.from(': 1\n'),
      ]),
      'DROP_BINARY',
      /UTF-8/,
    ),

    // ---- names ----
    text('no-extension', VALID, 'DROP_BAD_NAME', /\*\.yaml/),
    text('name.txt', VALID, 'DROP_BAD_NAME', 'name.txt'),
    text('name.yaml.bak', VALID, 'DROP_BAD_NAME', 'name.yaml.bak'),
    text('name.yamll', VALID, 'DROP_BAD_NAME'),
    text('name.sh', '#!/bin/sh\nrm -rf /\n', 'DROP_BAD_NAME'),
    accepted('name-upper.YML', VALID),
    accepted('name-mixed.Json', '{"type": "typed", "params": {"s": "x"}}'),
    accepted('name with spaces.yaml', VALID),
    accepted('name-ünïcödé-日本.yaml', VALID),
    accepted('name-emoji-🚀.yaml', VALID),
    accepted('name-\'quotes"-$(touch x)-`id`.yaml', VALID),
    accepted('name-back\\slash.yaml', VALID),
    accepted('name-new\nline.yaml', VALID),
    accepted('-rf.yaml', VALID),
    accepted('a...yaml', VALID),
    accepted(`long-${'n'.repeat(240)}.yaml`, VALID),
    text(`long-bad-${'b'.repeat(236)}.yaml`, 'type: [\n', SYNTAX, 'YAML syntax'),
    text('bad name with spaces.yaml', 'type: nosuch\n', 'UNKNOWN_TYPE', 'bad name with spaces.yaml'),
    text('bad-ünïcödé.yaml', 'type: [\n', SYNTAX, 'bad-ünïcödé.yaml'),
    text('bad-new\nline.yaml', 'type: [\n', SYNTAX, 'YAML syntax'),
    {
      name: Buffer.concat([Buffer.from('bad-bytes-'), Buffer.from([0xff, 0xfe]), Buffer.from('.yaml')]),
      bytes: Buffer.from(VALID),
      expect: { code: 'DROP_BAD_NAME', mentions: [/UTF-8/] },
    },
  ];
  return cases;
}

function billionLaughs(): string {
  const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (let i = 1; i < 9; i++) {
    const prev = String.fromCharCode(96 + i);
    const name = String.fromCharCode(97 + i);
    lines.push(`${name}: &${name} [${Array.from({ length: 9 }, () => `*${prev}`).join(', ')}]`);
  }
  return `${lines.join('\n')}\ntype: typed\nparams: {s: *i}\n`;
}

function padTo(prefix: string, size: number): string {
  return `${prefix}${'p'.repeat(size - Buffer.byteLength(prefix) - 1)}\n`;
}

function randomBytes(rng: Random, n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = rng.int(0, 255);
  out[n >> 1] = 0; // binary for sure
  return out;
}

function write(file: string, content: string): string {
  writeFileSync(file, content);
  return file;
}

function link(at: string, target: string): undefined {
  symlinkSync(target, at);
  return undefined;
}

function sparse(at: string, size: number): undefined {
  writeFileSync(at, VALID);
  truncateSync(at, size);
  return undefined;
}

function listen(at: string): Server {
  const server = createServer();
  server.listen(at);
  return server;
}

// ---- generated: seeded mutations of valid job files ----

const BASES = [
  'type: typed\nparams:\n  s: hello\n  i: 5\n  c: green\npriority: 3\nnotes: base one\n',
  '{"type": "typed", "params": {"s": "x", "f": 1.5, "b": true}, "name": "json base"}\n',
  'type: typed\nparams:\n  s: [a, b, c]\n  i: {range: "1..3"}\n',
  'command: echo hello world\nnotes: a command\n',
  'type: typed\nparams: {s: t, out: /tmp/o.txt, in: /etc/hosts}\ntimeout: 30s\nnot_before: 2020-01-01T00:00:00Z\n',
  '# a comment\ntype: typed   # trailing\nparams:\n  s: |\n    multi\n    line\n  b: yes\nname: block\n',
];

const TOKENS = [
  '[]',
  '{}',
  '~',
  '-1',
  '1e309',
  '"x"',
  '&a x',
  '*a',
  '!!int x',
  '.nan',
  'true',
  '"\\0"',
  '|',
  '>',
  '- a',
  '? k',
  ': v',
  '{range: "1..99"}',
  '{each: []}',
  '"../../etc"',
  '2026-13-01',
  'null',
  '0x1F',
  '0o17',
  '1_000',
  "'",
  '"',
  '#',
  '%',
  '@',
  '`',
  'x'.repeat(300),
];
const CHARS = ':{}[],&*!|>\'"%@`#-?\n\t \\\0\u00ff\u{1f680}';

type Mutator = (text: string, rng: Random) => string;

const MUTATORS: Mutator[] = [
  (t, r) => {
    const at = r.int(0, Math.max(0, t.length - 1));
    return t.slice(0, at) + String.fromCharCode(r.int(0, 255)) + t.slice(at + 1);
  },
  (t, r) => {
    const at = r.int(0, t.length);
    return t.slice(0, at) + r.pick([...CHARS]) + t.slice(at);
  },
  (t, r) => {
    const at = r.int(0, Math.max(0, t.length - 1));
    return t.slice(0, at) + t.slice(at + r.int(1, 8));
  },
  (t, r) => t.slice(0, r.int(0, t.length)),
  (t, r) => {
    const lines = t.split('\n');
    const i = r.int(0, lines.length - 1);
    lines.splice(i, 0, lines[i] ?? '');
    return lines.join('\n');
  },
  (t, r) => {
    const lines = t.split('\n');
    const i = r.int(0, lines.length - 1);
    const j = r.int(0, lines.length - 1);
    [lines[i], lines[j]] = [lines[j] ?? '', lines[i] ?? ''];
    return lines.join('\n');
  },
  (t, r) => {
    const lines = t.split('\n');
    lines.splice(r.int(0, lines.length - 1), 1);
    return lines.join('\n');
  },
  (t, r) => {
    const values = [...t.matchAll(/(: |\[|, )([^,\]\n{}]+)/g)];
    const m = values.length === 0 ? undefined : r.pick(values);
    if (m?.index === undefined) return t;
    const at = m.index + (m[1]?.length ?? 0);
    return t.slice(0, at) + r.pick(TOKENS) + t.slice(at + (m[2]?.length ?? 0));
  },
  (t, r) => `${t}${t.endsWith('\n') ? '' : '\n'}zz${r.int(0, 99)}: ${r.pick(TOKENS)}\n`,
  (t, r) => {
    const lines = t.split('\n');
    const i = r.int(0, lines.length - 1);
    lines[i] = r.chance(0.5) ? `  ${lines[i] ?? ''}` : (lines[i] ?? '').replace(/^ {1,2}/, '');
    return lines.join('\n');
  },
];

/** `count` distinct mutated job files, the same for the same seed. */
export function mutations(seed: number, count: number): DropCase[] {
  const rng = random(seed);
  const seen = new Set<string>(BASES);
  const cases: DropCase[] = [];
  while (cases.length < count) {
    const base = rng.pick(BASES);
    let text = base;
    for (let n = rng.int(1, 3); n > 0; n--) text = rng.pick(MUTATORS)(text, rng);
    if (seen.has(text)) continue;
    seen.add(text);
    const bytes = Buffer.from(text, 'utf8');
    // Now and then a raw byte, so broken UTF-8 is among the mutations too.
    if (rng.chance(0.1) && bytes.length > 0) bytes[rng.int(0, bytes.length - 1)] = rng.int(128, 255);
    const ext = base.startsWith('{') ? 'json' : 'yaml';
    cases.push({ name: `mutation-${String(cases.length).padStart(3, '0')}.${ext}`, bytes, expect: 'either' });
  }
  return cases;
}
