import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { programOf } from '../jobs/template.ts';
import type { Logger } from '../log.ts';
import { STDERR_FILE, STDOUT_FILE } from '../spool/state-file.ts';
import { Launcher } from './launcher.ts';
import { StopControl } from './stops.ts';
import type { Executor, RunOutcome, RunRequest } from './types.ts';

export const SCRIPT_FILE = 'script.sh';

/** Runs jobs on this machine, each in its own process group, through the launcher process. */
export class LocalExecutor implements Executor {
  readonly name = 'local';
  readonly #launcher: Launcher;

  constructor(log: Logger) {
    this.#launcher = new Launcher(log);
  }

  run(request: RunRequest, signal: AbortSignal): Promise<RunOutcome> {
    const startedAt = new Date().toISOString();
    const { file, args } = commandLine(request);
    return new Promise<RunOutcome>((resolve) => {
      let key = 0;
      const control = new StopControl(request, (sig) => this.#launcher.kill(key, sig));
      key = this.#launcher.spawn(
        {
          file,
          args,
          cwd: request.cwd,
          env: request.env,
          stdout: path.join(request.dir, STDOUT_FILE),
          stderr: path.join(request.dir, STDERR_FILE),
          // A job that prints nothing leaves no empty log files behind (two file creations less).
          options: ['lazy'],
        },
        {
          onStarted: () => control.started(),
          onExit: (event) => {
            control.ended();
            const endedAt = new Date().toISOString();
            const base = { exitCode: event.code, signal: event.signal, startedAt, endedAt };
            const stopping = control.stopping;
            if (stopping === 'timeout') {
              const limit = `${(request.timeoutMs ?? 0) / 1000} s`;
              resolve({ ...base, outcome: 'timeout', error: `timed out after ${limit}` });
            } else if (stopping === 'cancel') resolve({ ...base, outcome: 'cancelled', error: 'cancelled' });
            else if (stopping === 'shutdown')
              resolve({ ...base, outcome: 'interrupted', error: 'the daemon shut down' });
            else if (event.error !== undefined && event.errno !== 'ENOENT')
              resolve({ ...base, outcome: 'spawn-failed', error: event.error });
            else if (event.code === 0) resolve({ ...base, outcome: 'success' });
            else if (event.signal !== null)
              resolve({ ...base, outcome: 'signal', error: `killed by ${event.signal}` });
            else resolve({ ...base, outcome: 'exit-code', error: event.error ?? `exit code ${event.code}` });
          },
        },
      );
      control.watch(signal);
    });
  }

  async close(): Promise<void> {
    await this.#launcher.close();
  }
}

/** The job's program; a script plan is first written into the job folder. */
function commandLine(request: RunRequest): { file: string; args: string[] } {
  const plan = request.plan;
  if (plan.kind !== 'script') return programOf(plan, undefined);
  const script = path.join(request.dir, SCRIPT_FILE);
  writeFileSync(script, plan.script);
  if (plan.interpreter !== undefined) chmodSync(script, 0o755);
  return programOf(plan, script);
}
