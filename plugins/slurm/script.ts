import { type BatchResources, type BatchScript, BatchdError } from '../../daemon/plugins/api.ts';
import { shellQuote } from './command.ts';

/** What a job asks of Slurm, and one job's script: the core's batch-system shapes. */
export type SlurmResources = BatchResources;
export type SlurmScript = BatchScript;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LINE = /^[^\n\r\0]*$/;
/** Interpreters that take their script as a `-c` string. */
const SHELLS = /^\/(usr\/)?bin\/(sh|bash|dash)$/;

/**
 * sbatch's options as arguments, never as `#SBATCH` lines: an argument reaches Slurm's option
 * parser whole, whereas a `#SBATCH` line is split by Slurm's own quoting rules.
 */
export function sbatchOptions(
  job: { name: string; comment: string; workdir?: string },
  resources: SlurmResources,
): string[] {
  const options = [
    '--parsable',
    `--job-name=${job.name}`,
    `--comment=${job.comment}`,
    // batchd decides about retries; a job Slurm requeued after a node failure would run twice.
    '--no-requeue',
    '--export=ALL',
  ];
  if (job.workdir !== undefined) options.push(`--chdir=${job.workdir}`);
  if (resources.partition !== undefined) options.push(`--partition=${resources.partition}`);
  if (resources.time_limit !== undefined) options.push(`--time=${Math.ceil(resources.time_limit / 60)}`);
  if (resources.cpus !== undefined) options.push(`--cpus-per-task=${resources.cpus}`);
  if (resources.memory_mb !== undefined) options.push(`--mem=${resources.memory_mb}M`);
  if (resources.gpus !== undefined) options.push(`--gpus=${resources.gpus}`);
  options.push(...(resources.extra ?? []));
  for (const option of options)
    if (!LINE.test(option))
      throw new BatchdError('PARAM_INVALID', `an sbatch option holds a newline: ${option}`, {
        field: 'slurm',
      });
  return options;
}

/**
 * The batch script for one job, or for an array whose element N runs `scripts[N]`. Every value
 * enters it single-quoted: a shell's body as its `-c` string, any other base64-encoded and run
 * from a file, so no text of a job can change the wrapper around it (`;;`, `esac`, quotes).
 */
export function batchScript(shell: string, header: string, scripts: readonly SlurmScript[]): string {
  const lines = [`#!${shell}`, `# ${header.replaceAll(/[\n\r]/g, ' ')}`];
  // A single job's output goes where sbatch's --output/--error say (Slurm's own messages, such as
  // a time-limit kill, land there too); an array element sends its own to its job's files.
  if (scripts.length === 1 && scripts[0] !== undefined) lines.push(...element(shell, scripts[0], false));
  else {
    lines.push('case "${SLURM_ARRAY_TASK_ID:-}" in');
    scripts.forEach((script, index) => {
      lines.push(`${index})`, ...element(shell, script, true).map((l) => `  ${l}`), '  ;;');
    });
    lines.push('*) echo "batchd: no job for array element ${SLURM_ARRAY_TASK_ID:-?}" >&2; exit 70 ;;');
    lines.push('esac');
  }
  return lines.join('\n') + '\n';
}

function element(shell: string, script: SlurmScript, redirect: boolean): string[] {
  const lines: string[] = [];
  for (const [name, value] of Object.entries(script.env ?? {})) {
    if (!ENV_NAME.test(name))
      throw new BatchdError('PARAM_INVALID', `not an environment variable name: ${name}`, {
        field: 'env',
      });
    lines.push(`export ${name}=${shellQuote(value)}`);
  }
  // Appended to, as sbatch's --open-mode=append does for a single job: a retry keeps earlier output.
  if (redirect) lines.push(`exec >>${shellQuote(script.stdout)} 2>>${shellQuote(script.stderr)}`);
  if (script.workdir !== undefined) lines.push(`cd ${shellQuote(script.workdir)} || exit 71`);
  const [program = shell, ...args] = interpreter(script.body, shell);
  if (args.length === 0 && SHELLS.test(program) && !script.body.includes('\0'))
    // A shell's body runs as its `-c` string, single-quoted: no temporary file and no decoding,
    // so an array element of `true` costs two processes, not six (Slurm runs them by the hundred).
    lines.push(`${shellQuote(program)} -c ${shellQuote(script.body)} ${shellQuote(program)}`, 'batchd_rc=$?');
  else
    lines.push(
      'batchd_file=$(mktemp) || exit 71',
      `printf '%s' '${Buffer.from(script.body, 'utf8').toString('base64')}' | base64 -d >"$batchd_file" || exit 71`,
      `${[program, ...args].map(shellQuote).join(' ')} "$batchd_file"`,
      'batchd_rc=$?',
      'rm -f "$batchd_file"',
    );
  // Written when the script ends, before Slurm can report the end: no reader sees it half-written.
  if (script.exitFile !== undefined)
    lines.push(`printf '%s\\n' "$batchd_rc" >${shellQuote(script.exitFile)}`);
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
