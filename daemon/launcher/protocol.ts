/** Messages between the daemon and its launcher process (Node IPC, one object per message). */
export type LauncherRequest =
  | {
      op: 'spawn';
      key: number;
      file: string;
      args: string[];
      cwd: string;
      env: Record<string, string>;
      stdout: string;
      stderr: string;
      /** The Perl launcher's options (launcher.pl); the Node launcher has none of them. */
      options?: LaunchOption[] | undefined;
      /** cgroup.procs files the job's process enters before its exec (cgroup.ts). */
      join?: string[] | undefined;
    }
  | { op: 'kill'; key: number; signal: NodeJS.Signals };

/**
 * `mkdir`: make the working folder first; `result`: report on the job's BATCHD_RESULT file;
 * `lazy`: create the log files only when the job first writes to them; `cpu=`, `nofile=`,
 * `nproc=`, `as=`: the job's rlimits (seconds, count, count, bytes).
 */
export type LaunchOption = 'mkdir' | 'result' | 'lazy' | `${RlimitName}=${number}`;
export type RlimitName = 'cpu' | 'nofile' | 'nproc' | 'as';

export type LauncherEvent =
  | { op: 'started'; key: number; pid: number }
  | {
      op: 'exit';
      key: number;
      code: number | null;
      signal: string | null;
      error?: string | undefined;
      errno?: string | undefined;
      /** Asked for with the `result` option: the job's BATCHD_RESULT file is there, not empty. */
      result?: boolean | undefined;
    };

/**
 * A spawn whose output the Perl launcher sends back as data events (null) instead of writing it
 * to a file: for jobs on a remote host, whose log files are here.
 */
export type PipedSpawnRequest = Omit<
  Extract<LauncherRequest, { op: 'spawn' }>,
  'op' | 'stdout' | 'stderr'
> & {
  stdout: string | null;
  stderr: string | null;
};

/**
 * For the Perl launcher on a host: finished jobs' folders, an empty one kept aside for a later
 * `mkdir` there, the rest removed by one `rm -rf` that runs as job `key`.
 */
export interface RecycleRequest {
  op: 'recycle';
  key: number;
  paths: string[];
}

/** The Perl launcher's events: the common ones, its output data, and its start. */
export type WireEvent =
  LauncherEvent | { op: 'data'; key: number; fd: 1 | 2; data: Buffer } | { op: 'ready'; pid: number };
