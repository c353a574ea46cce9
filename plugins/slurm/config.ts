import { durationMs, z } from '../../daemon/plugins/api.ts';

/** A value that ends up in one argument or one line: a newline or NUL there is always a mistake. */
const oneLine = z.string().regex(/^[^\n\r\0]*$/, 'Expected one line (no newline or NUL)');

/** A host or user name `ssh` must not read as an option (`-oProxyCommand=…`). */
const sshWord = oneLine.regex(/^[^-\s][^\s]*$/, 'Expected a name not starting with "-", without spaces');

/** `etc/controllers/<name>.yaml` with `driver: slurm`: how batchd reaches a Slurm controller. */
export const slurmConfig = z
  .object({
    /**
     * Put before every Slurm command where it runs (here, or on the login node after SSH), e.g.
     * `[nsenter, --net=/run/x]` or `[sudo, -u, batch]`. Empty: the commands run as they are.
     */
    command_prefix: z.array(oneLine.min(1)).default([]),
    /**
     * A login node reached with OpenSSH (`ssh -o BatchMode=yes`): the Slurm command is quoted
     * argument by argument for the remote shell, so no value is ever read as shell code.
     */
    ssh: z
      .object({
        host: sshWord,
        user: sshWord.optional(),
        port: z.int().min(1).max(65535).optional(),
        identity_file: oneLine.min(1).optional(),
        /** More `ssh` options, e.g. `[-o, StrictHostKeyChecking=yes]`. */
        options: z.array(oneLine).default([]),
      })
      .strict()
      .optional(),
    /**
     * How a job's files reach the cluster. `shared` (the default): the login node and the compute
     * nodes see this machine's spool at the same path, and Slurm writes the logs into the job's
     * folder itself. `copy`: they do not; each attempt gets a folder of its own under
     * `work_directory` (where `ssh:` leads, or here without it), inputs go there before `sbatch`,
     * and logs, exit status, result.json and outputs come back into the job's folder after its end.
     */
    staging: z.enum(['shared', 'copy']).default('shared'),
    /**
     * With `staging: copy`: the folder for the attempts' folders, an absolute path on the login
     * node on a file system its compute nodes share (as an SSH host's `work_directory`).
     */
    work_directory: oneLine
      .startsWith('/', "Expected an absolute path (the login node's, which Slurm also uses)")
      .refine((p) => !p.split('/').includes('..'), 'Expected a path without ".."')
      .optional(),
    /** `SLURM_CONF` for the client commands; default: the one the commands find themselves. */
    slurm_conf: oneLine.min(1).optional(),
    /** Seconds one Slurm command may take (`timeout` on the far side, a kill on ours). */
    command_timeout: z.int().min(1).max(600).default(30),
    /**
     * How often the daemon asks for the state of its Slurm jobs (one `squeue` for all of them).
     * Slurm forgets a finished job `MinJobAge` after its end (default 300 s): keep this well below.
     */
    poll_interval: durationMs.prefault(2),
    /** The folder Slurm's binaries are in, when they are not on the PATH. */
    bin_dir: oneLine.min(1).optional(),
    /**
     * Interpreter line of the batch scripts batchd writes (their code is POSIX; a job's body runs
     * under its own `#!` line). Slurm starts one per job or array element: dash starts in about
     * half the CPU time bash takes, which is a tenth of a trivial job's cost in Slurm.
     */
    shell: oneLine.startsWith('/', 'Expected an absolute path').default('/bin/sh'),
    /** Defaults for every job through this controller (a job type, queue or job overrides them). */
    defaults: z
      .object({
        partition: oneLine.min(1).optional(),
        time_limit: z.int().min(1).optional(),
        cpus: z.int().min(1).optional(),
        memory_mb: z.int().min(1).optional(),
        gpus: z.union([z.int().min(1), oneLine.min(1)]).optional(),
        extra: z.array(oneLine.min(1)).default([]),
      })
      .strict()
      .default({ extra: [] }),
  })
  .strict()
  .refine((c) => c.staging !== 'copy' || c.work_directory !== undefined, {
    message: 'staging: copy needs work_directory (the folder for job files on the login node)',
    path: ['work_directory'],
  });
export type SlurmConfig = z.output<typeof slurmConfig>;
