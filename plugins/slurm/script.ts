import { type BatchResources, type BatchScript, BatchdError } from '../../daemon/plugins/api.ts';
import { compactArray } from './array-script.ts';
import { elementLines, literalWords, NO_ELEMENT, runOf } from './element.ts';

/** What a job asks of Slurm, and one job's script: the core's batch-system shapes. */
export type SlurmResources = BatchResources;
export type SlurmScript = BatchScript;

const LINE = /^[^\n\r\0]*$/;

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
 * The batch script for one job, or for an array whose element N runs `scripts[N]`: one script
 * that holds once what the elements share and a word for what differs (array-script.ts), or, for
 * elements that do not run alike, a branch of a `case` each. Every value enters it single-quoted:
 * a shell's body as its `-c` string, any other base64-encoded and run from a file, so no text of
 * a job can change the wrapper around it (`;;`, `esac`, quotes).
 */
export function batchScript(shell: string, header: string, scripts: readonly SlurmScript[]): string {
  const lines = [`#!${shell}`, `# ${header.replaceAll(/[\n\r]/g, ' ')}`];
  // A single job's output goes where sbatch's --output/--error say (Slurm's own messages, such as
  // a time-limit kill, land there too); an array element sends its own to its job's files.
  const only = scripts.length === 1 ? scripts[0] : undefined;
  if (only !== undefined) {
    const run = runOf(shell, only);
    lines.push(...elementLines(literalWords(only, run), run, false));
  } else {
    const compact = compactArray(shell, scripts);
    if (compact !== undefined) lines.push(...compact);
    else {
      lines.push('case "${SLURM_ARRAY_TASK_ID:-}" in');
      scripts.forEach((script, index) => {
        const run = runOf(shell, script);
        const element = elementLines(literalWords(script, run), run, true);
        lines.push(`${index})`, ...element.map((l) => `  ${l}`), '  ;;');
      });
      lines.push(`*) ${NO_ELEMENT} ;;`, 'esac');
    }
  }
  return lines.join('\n') + '\n';
}
