import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { drop, jobDir, jobsIn, makeEnv, readLog, type TestEnv, waitFor } from '../helpers/env.ts';

/**
 * Parameter values that would run code if pasted into shell text. Each must reach the program as
 * the exact bytes given, in every template position, and none may create the canary file.
 */
function hostileValues(canary: string): string[] {
  return [
    `; touch ${canary}`,
    `$(touch ${canary})`,
    `\`touch ${canary}\``,
    `'; touch ${canary}; '`,
    `"; touch ${canary}; "`,
    `a\nb\ntouch ${canary}`,
    `|| touch ${canary}`,
    `&& touch ${canary}`,
    `> ${canary}`,
    `x; rm -rf "$HOME/nothing-here"`,
    '--help',
    '-rf',
    '-',
    '$HOME',
    '${HOME}',
    '$BATCHD_PARAM_v',
    '$((6*7))',
    '*',
    '?',
    '[a-z]*',
    '~',
    '{a,b}',
    '\\',
    '\\n',
    '',
    ' ',
    ' leading and trailing ',
    'tab\there  two  spaces',
    '%s %n %%',
    'ünïcødé ✓ 日本語 🚀',
  ];
}

describe('hostile parameter values', () => {
  let env: TestEnv;
  let daemon: DaemonProcess;
  let canary: string;
  let values: string[];

  /** Each type's template and the argv records (one per program call) it must produce for `v`. */
  const templates: Record<
    string,
    { template: (argv: string) => string[]; expect: (v: string) => string[][] }
  > = {
    unquoted: { template: (a) => [`${a} $v`], expect: (v) => [[v]] },
    'single-quoted': { template: (a) => [`${a} 'pre $v post'`], expect: (v) => [[`pre ${v} post`]] },
    'double-quoted': {
      template: (a) => [`${a} "pre $v post" "\${v}"`],
      expect: (v) => [[`pre ${v} post`, v]],
    },
    adjacent: {
      template: (a) => [`${a} x$v \${v}y --opt=$v`],
      expect: (v) => [[`x${v}`, `${v}y`, `--opt=${v}`]],
    },
    'multi-line': {
      template: (a) => [
        'set -eu',
        `${a} $v`,
        'x=$v',
        `${a} "$x" "\${v}" '$v'`,
        `if [ -n "$v" ]; then ${a} nonempty; else ${a} empty; fi`,
        // Unquoted $v is one word too: no splitting, no globbing.
        `for word in $v; do ${a} "$word"; done`,
      ],
      expect: (v) => [[v], [v, v, v], [v === '' ? 'empty' : 'nonempty'], [v]],
    },
  };

  beforeAll(async () => {
    env = makeEnv({ queues: { default: null }, config: { dispatcher: { workers: 4 } } });
    canary = path.join(env.root, 'canary');
    values = hostileValues(canary);
    // The program: writes each argument followed by NUL, then \x01 to end the call.
    const argv = path.join(env.root, 'argv.sh');
    writeFileSync(
      argv,
      '#!/bin/sh\nfor a in "$@"; do printf \'%s\\0\' "$a"; done >> "$BATCHD_JOB_DIR/argv.bin"\nprintf \'\\001\' >> "$BATCHD_JOB_DIR/argv.bin"\n',
    );
    chmodSync(argv, 0o755);
    for (const [name, t] of Object.entries(templates)) {
      env.writeConfig(`jobtypes/${name}.yaml`, {
        template: t.template(argv),
        params: [{ name: 'v', type: 'String' }],
      });
    }
    // Another interpreter: the template is left as written and reads the value from the environment.
    env.writeConfig('jobtypes/node-script.yaml', {
      template: [
        '#!/usr/bin/env node',
        "require('node:fs').appendFileSync(process.env.BATCHD_JOB_DIR + '/argv.bin', process.env.BATCHD_PARAM_v + '\\0\\x01');",
      ],
      params: [{ name: 'v', type: 'String' }],
    });
    daemon = await startDaemon(env.etc, env.spool);
  });
  afterAll(async () => {
    await daemon.stop();
    env.cleanup();
  });

  const expected = (records: string[][]): Buffer =>
    Buffer.from(records.map((r) => r.map((a) => `${a}\0`).join('') + '\x01').join(''));

  /** Drop one task (a job per value) of a type and return each job's value and argv bytes. */
  async function runAll(type: string): Promise<{ value: string; bytes: Buffer; stderr: string }[]> {
    drop(env.spool, 'default', { type, params: { v: values } }, `${type}.yaml`);
    const ids = await waitFor(
      () => {
        const done = jobsIn(env.spool, 'default', 'done').filter((id) => id.endsWith(`-${type}`));
        return done.length === values.length ? done : undefined;
      },
      30_000,
      `every ${type} job to finish`,
      50,
    ).catch((error: unknown) => {
      const failed = jobsIn(env.spool, 'default', 'failed').filter((id) => id.endsWith(`-${type}`));
      throw new Error(`${String(error)}; failed: ${failed.length}`);
    });
    return ids.map((id) => {
      const dir = jobDir(env.spool, 'default', 'done', id);
      const spec = JSON.parse(readFileSync(path.join(dir, 'job.yaml'), 'utf8')) as { params: { v: string } };
      return {
        value: spec.params.v,
        bytes: readFileSync(path.join(dir, 'argv.bin')),
        stderr: readLog(dir, 'stderr.log'),
      };
    });
  }

  for (const [type, t] of Object.entries(templates)) {
    it(`reach the program verbatim and execute nothing: ${type} template`, async () => {
      const runs = await runAll(type);
      expect(runs.map((r) => r.value).sort()).toEqual([...values].sort());
      for (const run of runs) {
        const records = t.expect(run.value);
        expect(run.bytes.toString('utf8'), JSON.stringify(run.value)).toBe(
          expected(records).toString('utf8'),
        );
        expect(run.bytes.equals(expected(records)), JSON.stringify(run.value)).toBe(true);
        expect(run.stderr, JSON.stringify(run.value)).toBe('');
      }
      expect(existsSync(canary)).toBe(false);
    });
  }

  it('reach a script for another interpreter verbatim through the environment', async () => {
    const runs = await runAll('node-script');
    for (const run of runs)
      expect(run.bytes.equals(Buffer.from(`${run.value}\0\x01`)), JSON.stringify(run.value)).toBe(true);
    expect(existsSync(canary)).toBe(false);
  });

  it('left nothing behind that an injection would have made', () => {
    expect(existsSync(canary)).toBe(false);
    expect(readdirSync(env.root).sort()).toEqual(['argv.sh', 'etc', 'spool']);
    expect(jobsIn(env.spool, 'default', 'failed')).toEqual([]);
  });
});
