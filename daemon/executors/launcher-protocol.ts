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
    }
  | { op: 'kill'; key: number; signal: NodeJS.Signals };

export type LauncherEvent =
  | { op: 'started'; key: number; pid: number }
  | {
      op: 'exit';
      key: number;
      code: number | null;
      signal: string | null;
      error?: string | undefined;
      errno?: string | undefined;
    };
