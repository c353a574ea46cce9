// The shell loops that submit jobs: one client call per job, as a person's script would do it.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { runOk } from './proc.mjs';

/** Write a bash script under the run's folder; returns its path. */
export function writeScript(ctx, name, body) {
  const dir = path.join(ctx.root, 'scripts');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.sh`);
  writeFileSync(file, `#!/usr/bin/env bash\nset -u\n${body}\n`);
  return file;
}

/** Run a script where the session's peer lives (its env, its argv prefix); output to `<script>.log`. */
export function runScript(session, file, vars = {}, timeoutMs = 600_000) {
  const argv = [...session.prefix, 'bash', file];
  return runOk(argv[0], argv.slice(1), {
    env: { ...session.env, ...vars },
    timeoutMs,
    outputFile: file.replace(/\.sh$/, '.log'),
  });
}

/** N submissions of `true`, one client call each. */
export function throughputLoop(session) {
  return `for ((i = 1; i <= N; i++)); do\n  ${session.prepareTrue}\n  ${session.submitTrue}\ndone`;
}

/**
 * Sequential latency samples: each job writes `date +%s%N` into its stamp file. The loop notes the
 * time right before the submit command (t0) and right after it returned (t1), waits for the stamp,
 * then leaves the scheduler idle for GAP seconds. `read -t` on an idle FIFO is a sleep without a fork.
 */
export function latencyLoop(session) {
  return `exec 9<>"$FIFO"
for ((i = 1; i <= N; i++)); do
  f="$STAMPS/r\${ROUND}-$i"
  JOB="date +%s%N > $f"
  ${session.prepareShell}
  t0=$EPOCHREALTIME
  ${session.submitShell}
  t1=$EPOCHREALTIME
  printf '%s %s %s\\n' "$i" "$t0" "$t1" >> "$TIMES"
  deadline=$((SECONDS + WAIT_S))
  until [ -s "$f" ]; do
    read -t 0.001 -u 9 || :
    if ((SECONDS > deadline)); then echo "job $i did not start within $WAIT_S s" >&2; exit 3; fi
  done
  read -t "$GAP" -u 9 || :
done
wait`;
}
