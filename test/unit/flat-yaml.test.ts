import { parseDocument } from 'yaml';
import { describe, expect, it } from 'vitest';

import { readFlatYaml } from '../../daemon/config/flat-yaml.ts';
import { loadText } from '../../daemon/config/parse.ts';

/** What the full parser makes of a text, read as loadText reads it; undefined if it is not valid YAML. */
function fullParse(text: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false, version: '1.2' });
  return doc.errors.length > 0 ? undefined : (doc.toJS({ maxAliasCount: 100 }) as unknown);
}

const VALUES = [
  'true',
  'false',
  'True',
  'TRUE',
  'null',
  'Null',
  'NULL',
  '~',
  '0',
  '012',
  '-1',
  '+12',
  '0x1F',
  '0o17',
  '0b101',
  '1e3',
  '1.5',
  '.5',
  '3.',
  '.inf',
  '+.inf',
  '.NaN',
  '.nan',
  '1_000',
  '2026-11-22',
  'yes',
  'on',
  'abc',
  'make test',
  'echo "hi"',
  "it's",
  'a:b',
  'a: b',
  'a #b',
  'a#b',
  '#x',
  '"quoted"',
  '"with # hash"',
  "'single'",
  "'it''s'",
  '"esc\\n"',
  '"tab\\t"',
  '""',
  "''",
  '[1, 2]',
  '{a: 1}',
  '&anchor x',
  '*alias',
  '!tag x',
  '|',
  '>',
  '- item',
  '% x',
  '@x',
  '`x`',
  '.',
  '...',
  '---',
  '<<',
  '$HOME/x',
  '(x)',
  '^x',
  '=x',
  'path/to/file.blend',
  'frame-####.png',
  'a  b',
  'x ',
  '"a',
  "b'",
  'date +%s%N > /tmp/x',
  '"date +%s%N > /tmp/x"',
  'C:\\dir',
  'é',
  '1.2.3',
  '0.0',
  '-0',
  '+0',
];
const KEYS = [
  'type',
  'command',
  'priority',
  'params',
  'name',
  'notes',
  'host',
  'n',
  'frame',
  'null',
  'true',
  '__proto__',
  '_x',
  'a1',
  'on',
  'y',
  'Key',
];
const INDENTS = ['', '', '', '', '', '  ', '  ', ' ', '    '];
const SEPARATORS = [' ', ' ', ' ', ' ', '  ', ''];

/** A small deterministic generator (xorshift), so a failure can be reproduced. */
function random(seed: number): (n: number) => number {
  let x = seed;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return Math.abs(x) % n;
  };
}

function generated(count: number): string[] {
  const pick = random(0x9e3779b9);
  const from = <T>(list: T[]): T => list[pick(list.length)] as T;
  const texts: string[] = [];
  for (let i = 0; i < count; i++) {
    const lines: string[] = [];
    for (let n = 1 + pick(6); n > 0; n--) {
      const kind = pick(10);
      if (kind === 0) lines.push('params:');
      else if (kind === 1) lines.push(from(['', '# a comment', '  ', '---', '  # indented']));
      else lines.push(`${from(INDENTS)}${from(KEYS)}:${from(SEPARATORS)}${from(VALUES)}`);
    }
    texts.push(lines.join('\n') + (pick(2) === 0 ? '\n' : ''));
  }
  return texts;
}

describe('reading a flat job file without the full YAML parser', () => {
  it('reads the usual job files, exactly as the full parser does', () => {
    const usual = [
      'command: make test\n',
      'command: "true"\n',
      "command: 'echo hello'\n",
      'command: "date +%s%N > /tmp/stamp"\n',
      'type: blender\nparams:\n  input: /projects/shot42.blend\n  output: /renders/frame-####.png\n  frame: 1\npriority: 10\n',
      '# a render\ntype: render\n\nparams:\n  scene: main\n  samples: 128\n  denoise: true\nnotes: final\n',
      'command: sleep 2\npriority: -1\n'.replace('-1', '+3'),
    ];
    for (const text of usual) {
      const fast = readFlatYaml(text);
      expect(fast, text).toBeDefined();
      expect(fast, text).toEqual(fullParse(text));
      expect(loadText(text, 'job.yaml')).toEqual(fullParse(text));
    }
  });

  it('leaves to the full parser what it cannot read exactly', () => {
    const declined = [
      'command: echo\n  hello\n', // a plain scalar over two lines
      'command: echo # a comment\n',
      'command: "a\\nb"\n',
      "command: 'it''s'\n",
      'command:\ttrue\n',
      'command: true\r\n',
      'command:\n',
      'params:\n',
      'params:\n  a:\n    b: 1\n',
      'params:\n  list: [1, 2]\n',
      'after:\n  - 20261121T093000.123Z-k3f9qa\n',
      'command: &a x\n',
      'command: !!str 1\n',
      '__proto__: x\n',
      'null: x\n',
      'command: a\ncommand: b\n',
      '---\ncommand: x\n',
      'command: café\n',
      'command: -x\n',
      'command: a: b\n',
      '',
      '# only a comment\n',
      'command: x\n  # indented comment\n',
    ];
    for (const text of declined) expect(readFlatYaml(text), JSON.stringify(text)).toBeUndefined();
    // What the full parser makes of them still comes out of loadText (or its error, with the line).
    expect(loadText('command: echo\n  hello\n', 'job.yaml')).toEqual({ command: 'echo hello' });
    expect(() => loadText('command: a\ncommand: b\n', 'job.yaml')).toThrow(/job\.yaml.*line 2/s);
  });

  it('never reads a text otherwise than the full parser: 30,000 generated files', () => {
    let read = 0;
    for (const text of generated(30_000)) {
      const fast = readFlatYaml(text);
      if (fast === undefined) continue;
      read += 1;
      expect(fast, JSON.stringify(text)).toEqual(fullParse(text));
    }
    // The comparison is not vacuous: many of the generated files are read here.
    expect(read).toBeGreaterThan(1_000);
  });
});
