import { spawn } from 'node:child_process';

import { BatchdError, defineHook, type HookEvent, type PluginContext, z } from '../../daemon/plugins/api.ts';
import { eventEnvironment } from './environment.ts';

const config = z
  .object({
    /** An argv list (run as is), or a line of shell run by /bin/sh -c. */
    command: z.union([
      z.string().min(1, 'Expected a command line or an argv list'),
      z.array(z.string().min(1)).min(1, 'Expected a command line or an argv list'),
    ]),
    /** More variables for the command (the event's are added after, and win). */
    environment: z
      .record(
        z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'Expected a variable name'),
        z.union([z.string(), z.number(), z.boolean()]).transform(String),
      )
      .default({}),
    /** Where the command runs; relative to the config folder. Default: the config folder. */
    workdir: z.string().optional(),
    /** Seconds between SIGTERM and SIGKILL when the hook's timeout ends a command. */
    kill_grace: z.number().min(0).max(600).default(2),
  })
  .strict();
type CommandConfig = z.infer<typeof config>;

/** How much of the end of the command's stderr goes into the log line of a failure. */
const STDERR_TAIL = 2048;

/**
 * Runs a command for each event: the event as one line of JSON on stdin and, field by field, in
 * environment variables. Nothing of the event is ever put into the command line, so a queue or
 * task name cannot become shell code. The command gets its own process group, which the hook's
 * timeout kills whole.
 */
class CommandHook {
  readonly #config: CommandConfig;
  readonly #context: PluginContext;

  constructor(settings: CommandConfig, context: PluginContext) {
    this.#config = settings;
    this.#context = context;
  }

  handle(event: HookEvent, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const { command, environment, workdir, kill_grace: killGrace } = this.#config;
    const argv = typeof command === 'string' ? ['/bin/sh', '-c', command] : command;
    const [file = '/bin/sh', ...args] = argv;
    const child = spawn(file, args, {
      cwd: this.#context.resolve(workdir ?? '.'),
      env: eventEnvironment(event, environment),
      stdio: ['pipe', 'ignore', 'pipe'],
      detached: true, // its own process group: the timeout kills everything it started
    });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-STDERR_TAIL)));
    // A command that does not read stdin closes it: that is no failure.
    child.stdin.on('error', () => undefined);
    child.stdin.end(`${JSON.stringify(event)}\n`);

    let killTimer: NodeJS.Timeout | undefined;
    const kill = (): void => {
      killGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), killGrace * 1000);
    };
    signal.addEventListener('abort', kill, { once: true });

    return new Promise<void>((resolve, reject) => {
      child.once('error', (error) => {
        signal.removeEventListener('abort', kill);
        reject(
          new BatchdError('HOOK_FAILED', `could not run ${file}: ${error.message}`, {
            hook: this.#context.name,
            event: event.event,
          }),
        );
      });
      child.once('close', (code, killedBy) => {
        signal.removeEventListener('abort', kill);
        clearTimeout(killTimer);
        if (signal.aborted) {
          reject(
            new BatchdError('HOOK_FAILED', `${file} stopped: ${String(signal.reason)}`, {
              event: event.event,
            }),
          );
          return;
        }
        if (code === 0) {
          resolve();
          return;
        }
        const how = code === null ? `was killed by ${killedBy ?? 'a signal'}` : `exited with ${code}`;
        const tail = stderr.trim();
        reject(
          new BatchdError(
            'HOOK_FAILED',
            `${file} ${how}${tail === '' ? '' : `; stderr ends: ${tail.split('\n').slice(-5).join(' | ')}`}`,
            { hook: this.#context.name, event: event.event, exitCode: code },
          ),
        );
      });
    });
  }
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

export default defineHook({
  kind: 'hook',
  drivers: ['command'],
  config,
  create: (settings, context) => new CommandHook(settings, context),
});
