import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { COMMAND_TYPE } from '../../daemon/config/builtins.ts';
import { jobTypeSchema } from '../../daemon/config/schema.ts';
import type { ParamValue } from '../../daemon/jobs/spec.ts';
import { type CommandPlan, planCommand, rewriteShell } from '../../daemon/jobs/template.ts';

const scratch = mkdtempSync(path.join(tmpdir(), 'batchd-template-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function type(
  template: string | string[],
  params: Record<string, string> = {},
): ReturnType<typeof jobTypeSchema.parse> {
  return jobTypeSchema.parse({
    name: 't',
    template,
    params: Object.entries(params).map(([name, t]) => ({ name, type: t })),
  });
}

let scripts = 0;
/** Run a plan the way the local executor does, with real processes; returns stdout. */
function run(plan: CommandPlan): string {
  const env = { ...process.env, ...plan.env, HOME: '/home/of-the-job' };
  let result;
  if (plan.kind === 'argv')
    result = spawnSync(plan.argv[0] ?? '', plan.argv.slice(1), { env, encoding: 'utf8' });
  else if (plan.kind === 'shell')
    result = spawnSync('/bin/sh', ['-c', plan.script], { env, encoding: 'utf8' });
  else {
    const file = path.join(scratch, `script-${++scripts}`);
    writeFileSync(file, plan.script);
    chmodSync(file, 0o755);
    result =
      plan.interpreter === undefined
        ? spawnSync('/bin/sh', [file], { env, encoding: 'utf8' })
        : spawnSync(file, [], { env, encoding: 'utf8' });
  }
  expect(result.error).toBeUndefined();
  expect(result.stderr).toBe('');
  return result.stdout;
}

/** Values that would run code, split or vanish if they were pasted into shell code. */
const NASTY: ParamValue[] = [
  'plain',
  'two  words',
  "; touch /tmp/batchd-pwned; echo '",
  '$(id) `id` ${HOME} $HOME',
  'it\'s "quoted" \\ back\\slash',
  'new\nline',
  '*',
  '-n',
  '',
  '  leading and trailing  ',
  "'\"'\"'",
];

describe('planCommand: a parameter reaches the program as one argument, verbatim', () => {
  it.each([
    ['unquoted', "printf '<%s>' $msg", (v: string) => `<${v}>`],
    ['braced', "printf '<%s>' ${msg}", (v: string) => `<${v}>`],
    ['braced, glued to text', "printf '<%s>' x${msg}y", (v: string) => `<x${v}y>`],
    ['double-quoted', 'printf \'<%s>\' "v=$msg!"', (v: string) => `<v=${v}!>`],
    ['single-quoted', "printf '<%s>' 'v=$msg!'", (v: string) => `<v=${v}!>`],
    [
      'in a command substitution',
      'printf \'<%s>\' "$(printf \'%s\' "$msg")"',
      (v: string) => `<${v.replace(/\n+$/, '')}>`,
    ],
    [
      'in backticks',
      'v=`printf \'%s\' "$msg"`; printf \'<%s>\' "$v"',
      (v: string) => `<${v.replace(/\n+$/, '')}>`,
    ],
  ])('%s', (_what, template, expected) => {
    for (const value of NASTY) {
      const plan = planCommand(type(template, { msg: 'String' }), { msg: value }, {});
      expect(plan.kind).toBe('shell');
      expect(run(plan), `${template} with ${JSON.stringify(value)}`).toBe(expected(String(value)));
    }
  });

  it('never pastes a value into the code: it goes through BATCHD_PARAM_<name>', () => {
    const plan = planCommand(
      type('echo $msg "$msg" \'$msg\' ${msg}', { msg: 'String' }),
      { msg: '$(reboot)' },
      {},
    );
    expect(plan).toEqual({
      kind: 'shell',
      script:
        'echo "${BATCHD_PARAM_msg}" "${BATCHD_PARAM_msg}" \'\'"${BATCHD_PARAM_msg}"\'\' "${BATCHD_PARAM_msg}"',
      env: { BATCHD_PARAM_msg: '$(reboot)' },
    });
  });

  it('passes numbers and booleans as their text', () => {
    const t = type("printf '%s,' $n $f $b", { n: 'Integer', f: 'Float', b: 'Boolean' });
    expect(run(planCommand(t, { n: 42, f: 0.5, b: false }, {}))).toBe('42,0.5,false,');
  });

  it('substitutes the daemon’s variables like parameters, parameters winning', () => {
    const t = type("printf '%s %s' $site $msg", { msg: 'String' });
    const plan = planCommand(t, { msg: 'param' }, { site: 'lab 1', msg: 'variable' });
    expect(run(plan)).toBe('lab 1 param');
    expect(plan.env).toMatchObject({ BATCHD_PARAM_site: 'lab 1', BATCHD_PARAM_msg: 'param' });
  });

  it('leaves an escaped \\$name alone', () => {
    const plan = planCommand(type('printf \'%s|\' \\$msg "\\$msg"', { msg: 'String' }), { msg: 'value' }, {});
    expect(run(plan)).toBe('$msg|$msg|');
  });

  it('leaves undeclared variables such as $HOME, $1 and ${x:-y} to the shell', () => {
    const plan = planCommand(
      type('printf \'%s|\' $HOME "${HOME}" ${nothing:-fallback} "$1"', { msg: 'String' }),
      { msg: 'value' },
      {},
    );
    expect(plan.kind === 'shell' && plan.script).toBe(
      'printf \'%s|\' $HOME "${HOME}" ${nothing:-fallback} "$1"',
    );
    expect(run(plan)).toBe('/home/of-the-job|/home/of-the-job|fallback||');
  });
});

describe('planCommand: Script parameters are code', () => {
  it('runs the built-in command type’s value as shell code', () => {
    const plan = planCommand(COMMAND_TYPE, { command: 'echo a; echo "b c" | tr b B' }, {});
    expect(plan).toMatchObject({ kind: 'shell', script: 'echo a; echo "b c" | tr b B' });
    expect(plan.env).not.toHaveProperty('BATCHD_PARAM_command');
    expect(run(plan)).toBe('a\nB c\n');
  });

  it('inserts code verbatim inside single quotes too', () => {
    const t = jobTypeSchema.parse({
      name: 't',
      template: "sh -c '$code'",
      params: [{ name: 'code', type: 'Script' }],
    });
    expect(run(planCommand(t, { code: 'echo one; echo two' }, {}))).toBe('one\ntwo\n');
  });

  it('mixes code and quoted values in one template', () => {
    const t = jobTypeSchema.parse({
      name: 't',
      template: '$pre "$msg"',
      params: [
        { name: 'pre', type: 'Script' },
        { name: 'msg', type: 'String' },
      ],
    });
    expect(run(planCommand(t, { pre: "printf '[%s]'", msg: '; echo injected' }, {}))).toBe(
      '[; echo injected]',
    );
  });
});

describe('planCommand: the argv fast path', () => {
  it('runs a plain command of words without a shell', () => {
    expect(planCommand(COMMAND_TYPE, { command: 'printf %s-%s a,b c=d' }, {})).toMatchObject({
      kind: 'argv',
      argv: ['printf', '%s-%s', 'a,b', 'c=d'],
    });
    expect(planCommand(type('true'), {}, {})).toMatchObject({ kind: 'argv', argv: ['true'] });
    expect(run(planCommand(COMMAND_TYPE, { command: 'printf %s-%s a,b c=d' }, {}))).toBe('a,b-c=d');
  });

  it.each([
    'exit 3',
    'cd /tmp',
    'export A=1',
    'FOO=1 env',
    ': nothing',
    '. ./x',
    'wait',
    'ulimit -n',
    'set -e',
    'unalias x',
  ])('keeps the shell for %j (a builtin or assignment)', (command) => {
    expect(planCommand(COMMAND_TYPE, { command }, {}).kind).toBe('shell');
  });

  it.each([
    'echo a | cat',
    'echo a > f',
    'ls *',
    'echo ~',
    'a && b',
    'echo "x"',
    'echo $HOME',
    'sleep 1 &',
    'echo a;b',
  ])('keeps the shell for %j (shell syntax)', (command) => {
    expect(planCommand(COMMAND_TYPE, { command }, {}).kind).toBe('shell');
  });

  it('gives ":" to the shell, which knows it (there is no : program)', () => {
    expect(run(planCommand(COMMAND_TYPE, { command: ':' }, {}))).toBe('');
  });
});

describe('planCommand: multi-line templates are scripts', () => {
  it('without a shebang: a shell script, rewritten, run by sh', () => {
    const plan = planCommand(
      type(['x=$msg', 'printf "<%s>" "$x"', "printf '[%s]' $msg"], { msg: 'String' }),
      { msg: 'a  b' },
      {},
    );
    expect(plan).toMatchObject({ kind: 'script', interpreter: undefined });
    expect(plan.kind === 'script' && plan.script.endsWith('\n')).toBe(true);
    expect(run(plan)).toBe('<a  b>[a  b]');
  });

  it('with a shell shebang: rewritten and run by that shell', () => {
    const plan = planCommand(
      type('#!/bin/bash -e\nprintf \'%s\' "${BASH_VERSION:+bash}:$msg"\n', { msg: 'String' }),
      { msg: '$(id)' },
      {},
    );
    expect(plan).toMatchObject({ kind: 'script', interpreter: '/bin/bash -e' });
    expect(run(plan)).toBe('bash:$(id)');
  });

  it('with another interpreter’s shebang: left as written, the values in the environment', () => {
    const source = '#!/usr/bin/perl\nprint "<$ENV{BATCHD_PARAM_msg}>"; # $msg is not perl\'s\n';
    const plan = planCommand(type(source, { msg: 'String' }), { msg: '`id`' }, {});
    expect(plan).toMatchObject({ kind: 'script', interpreter: '/usr/bin/perl', script: source });
    expect(run(plan)).toBe('<`id`>');
  });

  it('is not confused by quotes in comments', () => {
    const plan = planCommand(
      type(["# don't panic", 'printf "<%s>" $msg   # it\'s fine', "printf '(%s)' $msg"], { msg: 'String' }),
      { msg: 'x y' },
      {},
    );
    expect(run(plan)).toBe('<x y>(x y)');
  });

  it('substitutes inside an unquoted here-document, where quotes are literal', () => {
    const plan = planCommand(
      type(
        [
          'cat <<EOF',
          'msg: $msg "quoted"',
          'EOF',
          'cat <<-END',
          '\tagain: ${msg}',
          '\tEND',
          'echo after $msg',
        ],
        { msg: 'String' },
      ),
      { msg: 'a  b' },
      {},
    );
    expect(run(plan)).toBe('msg: a  b "quoted"\nagain: a  b\nafter a  b\n');
  });

  it('does not take a shift in arithmetic for a here-document', () => {
    const plan = planCommand(
      type(['n=$(( $msg << 2 ))', 'm=$((n<<x))', 'printf "%s %s" "$n" "$msg"'], { msg: 'Integer' }),
      { msg: 3 },
      {},
    );
    expect(run(plan)).toBe('12 3');
  });

  it('leaves a quoted here-document as written: the shell does not expand it', () => {
    const plan = planCommand(
      type(["cat <<'EOF'", 'literal $msg', 'EOF', 'echo "$msg"'], { msg: 'String' }),
      { msg: 'value' },
      {},
    );
    expect(run(plan)).toBe('literal $msg\nvalue\n');
  });
});

describe('rewriteShell', () => {
  const values = { a: '1', code: 'true' };
  const code = new Set(['code']);
  it.each([
    ['$a', '"${BATCHD_PARAM_a}"'],
    ['${a}x', '"${BATCHD_PARAM_a}"x'],
    ['"$a"', '"${BATCHD_PARAM_a}"'],
    ["'$a'", `''"\${BATCHD_PARAM_a}"''`],
    ['\\$a', '\\$a'],
    ['$ab $_ $1 $', '$ab $_ $1 $'],
    ['$code && $a', 'true && "${BATCHD_PARAM_a}"'],
    ['"$(echo "$a")"', '"$(echo "${BATCHD_PARAM_a}")"'],
    ["# $a it's\n$a", '# $a it\'s\n"${BATCHD_PARAM_a}"'],
    ['x#$a', 'x#"${BATCHD_PARAM_a}"'],
    ['$(( $a + 1 ))', '$(( ${BATCHD_PARAM_a} + 1 ))'],
    ['cat <<EOF\n"$a"\nEOF\n$a', 'cat <<EOF\n"${BATCHD_PARAM_a}"\nEOF\n"${BATCHD_PARAM_a}"'],
  ])('%j -> %j', (template, expected) => {
    expect(rewriteShell(template, values, code)).toBe(expected);
  });
});
