import { randomBytes } from 'node:crypto';

import { shellQuote } from '../hosts/shell-quote.ts';
import type { CommandPlan } from '../jobs/template.ts';
import { perlLauncherSource } from './launcher.ts';

const launcherCommands = new Map<string, string>();

/**
 * The exec request that starts batchd's Perl launcher on a host (hosts/remote-launcher.ts) under
 * /bin/sh, whatever the user's login shell is. Made once per `perl`: it carries the whole source.
 */
export function launcherCommand(perl: string): string {
  let command = launcherCommands.get(perl);
  if (command === undefined) {
    command = `exec /bin/sh -c ${shellQuote(`exec ${shellQuote(perl)} -e ${shellQuote(perlLauncherSource())}`)}`;
    launcherCommands.set(perl, command);
  }
  return command;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function isEnvName(name: string): boolean {
  return ENV_NAME.test(name);
}

/** The job's command as shell code for the wrapper, from the same plan a local run uses. */
export function commandFor(plan: CommandPlan, scriptPath: string | undefined): string {
  switch (plan.kind) {
    case 'argv':
      return plan.argv.map(shellQuote).join(' ');
    case 'shell':
      return `/bin/sh -c ${shellQuote(plan.script)}`;
    case 'script':
      if (scriptPath === undefined) throw new Error('a script job needs its uploaded script');
      return plan.interpreter === undefined ? `/bin/sh ${shellQuote(scriptPath)}` : shellQuote(scriptPath);
  }
}

export interface WrapperInput {
  /** Marks the wrapper's report on stderr; random per run. */
  nonce: string;
  /** The job's folder on the host (absolute), made by the daemon; the wrapper enters it. */
  jobDir: string;
  env: Record<string, string>;
  command: string;
  /** Make the job's folder first (where nothing was copied into it), saving a command of its own. */
  mkdir?: boolean;
  /** Remove the job's folder at the end unless the job wrote a result to fetch (nothing else to fetch). */
  removeAfter?: boolean;
}

export function newNonce(): string {
  return `batchd-${randomBytes(9).toString('hex')}`;
}

/**
 * The remote side of a job, as one exec. The command runs in the background with stdin closed,
 * in a session of its own (setsid, where the host has it); the wrapper keeps the channel's stdin
 * as a control line: `TERM` or `KILL` signals the job's whole process group and the wrapper's
 * (it ignores TERM itself to report the end), `STOP` and `CONT` the job's group only (pause and
 * resume; without setsid they cannot, and the first line on stderr, `<nonce> start setsid|none`,
 * tells the daemon so before the job starts), and end-of-file — the daemon or the connection went
 * away — kills the group, so no job outlives its connection to run twice after recovery.
 * The last line on stderr is `<nonce> exit <status> <result?>` (or `<nonce> setup …` if the job
 * folder is not there); the daemon strips it from the log. Every process the wrapper starts costs
 * the host a fork and an exec, so it starts only the job and one subshell: the daemon makes the
 * job folder over SFTP and removes folders in batches (hosts/sweeper.ts).
 *
 * Values reach the job as exported variables in single quotes, never as code (OpenSSH passes
 * only the environment that AcceptEnv allows, so `export` it is).
 */
export function wrapperScript(input: WrapperInput): string {
  const n = shellQuote(input.nonce);
  const lines = [
    `d=${shellQuote(input.jobDir)}`,
    ...(input.mkdir === true ? ['mkdir -p -- "$d" 2>/dev/null'] : []),
    `if ! cd -- "$d"; then printf '%s setup 1 0\\n' ${n} >&2; exit 125; fi`,
    // The folder may have been given relative to where the command started.
    'd=$PWD',
  ];
  for (const [name, value] of Object.entries(input.env)) {
    if (!isEnvName(name)) throw new Error(`"${name}" is not a valid environment variable name`);
    lines.push(`export ${name}=${shellQuote(value)}`);
  }
  lines.push(
    'export BATCHD_JOB_DIR="$PWD" BATCHD_RESULT="$PWD/result.json"',
    'exec 3<&0',
    // The job in a process group of its own where setsid is there, so that STOP and CONT reach
    // the job and all it started but not this wrapper and its control reader.
    'g=; command -v setsid >/dev/null 2>&1 && g=setsid',
    // The first line on stderr: whether STOP and CONT can reach the job (the daemon refuses a pause otherwise).
    `printf '%s start %s\\n' ${n} "\${g:-none}" >&2`,
    `$g ${input.command} </dev/null 3<&- &`,
    'p=$!',
    "trap '' TERM",
    '( while IFS= read -r o <&3; do case $o in TERM|KILL) [ -n "$g" ] && kill -s "$o" -- -"$p" 2>/dev/null; kill -s "$o" 0;; STOP|CONT) [ -n "$g" ] && kill -s "$o" -- -"$p";; esac; done; [ -n "$g" ] && kill -s KILL -- -"$p" 2>/dev/null; kill -s KILL 0 ) </dev/null >/dev/null 2>&1 &',
    'w=$!',
    'exec 3<&-',
    // A shell that returns from wait when the job is stopped (bash does) waits again.
    'wait "$p"; s=$?',
    'while kill -0 "$p" 2>/dev/null; do sleep 1; wait "$p"; s=$?; done',
    'kill -s KILL "$w" 2>/dev/null',
    'r=0; [ -s result.json ] && r=1',
    ...(input.removeAfter === true ? ['[ "$r" = 0 ] && cd / && rm -rf -- "$d"'] : []),
    `printf '%s exit %s %s\\n' ${n} "$s" "$r" >&2`,
    'exit "$s"',
  );
  return lines.join('\n') + '\n';
}

/** The exec request: the wrapper under /bin/sh whatever the user's login shell is. */
export function remoteCommand(input: WrapperInput): string {
  return `exec /bin/sh -c ${shellQuote(wrapperScript(input))}`;
}

export interface WrapperReport {
  kind: 'exit' | 'setup';
  status: number;
  /** The job wrote `$BATCHD_RESULT`: the daemon fetches it. */
  result: boolean;
}

/** Find and cut the wrapper's report off the end of stderr. */
export function takeReport(tail: Buffer, nonce: string): { report: WrapperReport | undefined; rest: Buffer } {
  const at = tail.lastIndexOf(nonce);
  if (at < 0) return { report: undefined, rest: tail };
  const match = /^ (exit|setup) (\d+) ([01])\n$/.exec(tail.subarray(at + nonce.length).toString('latin1'));
  if (match === null) return { report: undefined, rest: tail };
  return {
    report: { kind: match[1] as WrapperReport['kind'], status: Number(match[2]), result: match[3] === '1' },
    rest: tail.subarray(0, at),
  };
}

/** Bytes held back from the end of stderr until the channel closes: enough for the report. */
export const REPORT_HOLDBACK = 64;
/** The start line is at most this long: more without a newline is not the wrapper's. */
const START_LINE_MAX = 80;

/**
 * The wrapper's stderr as it arrives: the start line (whether the job can be paused) cut off its
 * head and passed to `onStart`, the report held back at its end; the job's own stderr between is
 * what `push` and `end` return, to write to the job's log.
 */
export class WrapperStderr {
  readonly #nonce: string;
  readonly #onStart: (pausable: boolean) => void;
  /** Until the start line is read (undefined after). */
  #head: Buffer | undefined = Buffer.alloc(0);
  #held: Buffer = Buffer.alloc(0);

  constructor(nonce: string, onStart: (pausable: boolean) => void) {
    this.#nonce = nonce;
    this.#onStart = onStart;
  }

  /** A chunk of stderr in; what of the job's stderr can be written now out. */
  push(chunk: Buffer): Buffer {
    if (this.#head !== undefined) {
      const head = Buffer.concat([this.#head, chunk]);
      const eol = head.indexOf(0x0a);
      if (eol < 0 && head.length < START_LINE_MAX) {
        this.#head = head;
        return Buffer.alloc(0);
      }
      this.#head = undefined;
      const match = eol < 0 ? null : /^ start (setsid|none)$/.exec(this.#lineAfterNonce(head, eol));
      if (match !== null) this.#onStart(match[1] === 'setsid');
      chunk = match === null ? head : head.subarray(eol + 1);
    }
    this.#held = this.#held.length === 0 ? chunk : Buffer.concat([this.#held, chunk]);
    if (this.#held.length <= REPORT_HOLDBACK) return Buffer.alloc(0);
    const out = this.#held.subarray(0, this.#held.length - REPORT_HOLDBACK);
    this.#held = this.#held.subarray(this.#held.length - REPORT_HOLDBACK);
    return out;
  }

  /** The channel closed: the wrapper's report, and the rest of the job's stderr. */
  end(): { report: WrapperReport | undefined; rest: Buffer } {
    const tail = this.#head === undefined ? this.#held : Buffer.concat([this.#head, this.#held]);
    return takeReport(tail, this.#nonce);
  }

  #lineAfterNonce(head: Buffer, eol: number): string {
    const line = head.subarray(0, eol).toString('latin1');
    return line.startsWith(this.#nonce) ? line.slice(this.#nonce.length) : '';
  }
}
