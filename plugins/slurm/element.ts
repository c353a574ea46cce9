import { type BatchScript as SlurmScript, BatchdError } from '../../daemon/plugins/api.ts';
import { shellQuote } from './command.ts';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Interpreters that take their script as a `-c` string. */
const SHELLS = /^\/(usr\/)?bin\/(sh|bash|dash)$/;

/** The line an element runs when its index names no job. */
export const NO_ELEMENT = 'echo "batchd: no job for array element ${SLURM_ARRAY_TASK_ID:-?}" >&2; exit 70';

/**
 * One array element's values as shell words: each a single-quoted literal, or (compactArray) an
 * expression of the few values that differ between elements.
 */
export interface ElementWords {
  env: readonly (readonly [string, string])[];
  stdout: string;
  stderr: string;
  exitFile?: string | undefined;
  workdir?: string | undefined;
  /** The shell's `-c` string, or the body base64-encoded; '' when the command's words run. */
  body: string;
  /** A plain command's words (`run.how` is `command`). */
  command: readonly string[];
}

/**
 * How an element runs its job: a plain command's words as they are (`command`), the body as a
 * shell's `-c` string (`inline`), or the body from a temporary file under `program` (`file`).
 */
export interface BodyRun {
  how: 'command' | 'inline' | 'file';
  program: string;
  args: readonly string[];
  /** With `command`: how many words. */
  words: number;
}

/** The body as it reaches the script: its `-c` string, its text base64-encoded, or nothing. */
export function bodyText(run: BodyRun, body: string): string {
  if (run.how === 'command') return '';
  return run.how === 'inline' ? body : Buffer.from(body, 'utf8').toString('base64');
}

export function runOf(shell: string, script: Pick<SlurmScript, 'body' | 'command'>): BodyRun {
  const { body, command } = script;
  if (command !== undefined && command.length > 0)
    return { how: 'command', program: '', args: [], words: command.length };
  const [program = shell, ...args] = interpreter(body, shell);
  const inline = args.length === 0 && SHELLS.test(program) && !body.includes('\0');
  return { how: inline ? 'inline' : 'file', program, args, words: 0 };
}

function checkEnvName(name: string): void {
  if (!ENV_NAME.test(name))
    throw new BatchdError('PARAM_INVALID', `not an environment variable name: ${name}`, {
      field: 'env',
    });
}

export function literalWords(script: SlurmScript, run: BodyRun): ElementWords {
  return {
    env: Object.entries(script.env ?? {}).map(([name, value]) => [name, shellQuote(value)] as const),
    stdout: shellQuote(script.stdout),
    stderr: shellQuote(script.stderr),
    exitFile: script.exitFile === undefined ? undefined : shellQuote(script.exitFile),
    workdir: script.workdir === undefined ? undefined : shellQuote(script.workdir),
    body: shellQuote(bodyText(run, script.body)),
    command: run.how === 'command' ? (script.command ?? []).map(shellQuote) : [],
  };
}

export function elementLines(words: ElementWords, run: BodyRun, redirect: boolean): string[] {
  const lines: string[] = [];
  for (const [name, value] of words.env) {
    checkEnvName(name);
    lines.push(`export ${name}=${value}`);
  }
  // Appended to, as sbatch's --open-mode=append does for a single job: a retry keeps earlier output.
  if (redirect) lines.push(`exec >>${words.stdout} 2>>${words.stderr}`);
  if (words.workdir !== undefined) lines.push(`cd ${words.workdir} || exit 71`);
  if (run.how === 'command')
    // The words as the script's own command, as `sbatch --wrap` runs them: no shell of the job's
    // own, and a builtin of the name (`true`, `echo`) instead of the program. Quoted words are
    // never keywords, and a plain command holds no builtin that changes the shell (`cd`, `exit`).
    lines.push(words.command.join(' '), 'batchd_rc=$?');
  else if (run.how === 'inline')
    // A shell's body runs as its `-c` string, single-quoted: no temporary file and no decoding,
    // so an array element of `true` costs two processes, not six (Slurm runs them by the hundred).
    lines.push(`${shellQuote(run.program)} -c ${words.body} ${shellQuote(run.program)}`, 'batchd_rc=$?');
  else
    lines.push(
      'batchd_file=$(mktemp) || exit 71',
      `printf '%s' ${words.body} | base64 -d >"$batchd_file" || exit 71`,
      `${[run.program, ...run.args].map(shellQuote).join(' ')} "$batchd_file"`,
      'batchd_rc=$?',
      'rm -f "$batchd_file"',
    );
  // Written when the script ends, before Slurm can report the end: no reader sees it half-written.
  if (words.exitFile !== undefined) lines.push(`printf '%s\\n' "$batchd_rc" >${words.exitFile}`);
  lines.push('exit "$batchd_rc"');
  return lines;
}

/**
 * A body with a `#!` line runs under that interpreter (with its one optional argument, as the
 * kernel reads it); any other under `shell`. The file needs no exec bit, so a noexec TMPDIR works.
 */
function interpreter(body: string, shell: string): string[] {
  if (!body.startsWith('#!')) return [shell];
  const end = body.indexOf('\n');
  const line = body.slice(2, end === -1 ? undefined : end).trim();
  if (line === '') return [shell];
  const space = line.search(/\s/);
  return space === -1 ? [line] : [line.slice(0, space), line.slice(space).trim()];
}
