import { spawn } from 'node:child_process';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { BatchdError, type CommandResult, type CommandRunner } from '../../daemon/plugins/api.ts';
import type { SlurmConfig } from './config.ts';

export const SLURM_COMMANDS = ['sbatch', 'squeue', 'scancel', 'scontrol', 'sinfo'] as const;
export type SlurmCommand = (typeof SLURM_COMMANDS)[number];

export type { CommandResult } from '../../daemon/plugins/api.ts';

/** Runs one Slurm client command; `runner.calls` counts them (one squeue per poll is a promise). */
export interface SlurmRunner {
  run(
    command: SlurmCommand,
    args: readonly string[],
    options: { signal: AbortSignal; input?: string },
  ): Promise<CommandResult>;
  readonly calls: Readonly<Record<SlurmCommand, number>>;
}

export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * The argument vector that reaches Slurm: `[prefix…] env SLURM_CONF=… timeout -k 2 N sbatch …`,
 * or the same after `ssh … --` with every argument quoted for the login node's shell (so the
 * prefix runs on the login node). `timeout` runs where Slurm runs, because a controller that does
 * not answer makes its clients hang there.
 */
export function commandLine(config: SlurmConfig, command: SlurmCommand, args: readonly string[]): string[] {
  const binary = config.bin_dir === undefined ? command : path.posix.join(config.bin_dir, command);
  const env = config.slurm_conf === undefined ? [] : ['env', `SLURM_CONF=${config.slurm_conf}`];
  const slurm = [
    ...config.command_prefix,
    ...env,
    'timeout',
    '-k',
    '2',
    String(config.command_timeout),
    binary,
    ...args,
  ];
  const ssh = sshArgv(config);
  return ssh === undefined ? slurm : [...ssh, slurm.map(shellQuote).join(' ')];
}

/** `ssh … <login node> --`, to be followed by one command line for its shell; undefined without `ssh:`. */
export function sshArgv(config: SlurmConfig): string[] | undefined {
  if (config.ssh === undefined) return undefined;
  const { host, user, port, identity_file: identity, options } = config.ssh;
  return [
    'ssh',
    '-o',
    'BatchMode=yes',
    ...(port === undefined ? [] : ['-p', String(port)]),
    ...(identity === undefined ? [] : ['-i', identity]),
    ...options,
    user === undefined ? host : `${user}@${host}`,
    '--',
  ];
}

/**
 * `launch`: the daemon's way to start a short command (its job launcher, no fork of the daemon);
 * without it (a client made outside a daemon), Node's spawn.
 */
export function slurmRunner(config: SlurmConfig, controller: string, launch?: CommandRunner): SlurmRunner {
  const calls = Object.fromEntries(SLURM_COMMANDS.map((c) => [c, 0])) as Record<SlurmCommand, number>;
  return {
    calls,
    run(command, args, { signal, input }) {
      calls[command] += 1;
      const argv = commandLine(config, command, args);
      // Our own limit covers what `timeout` cannot: an SSH connection or a prefix that hangs.
      const limitMs = (config.command_timeout + 10) * 1000;
      const limited = AbortSignal.any([signal, AbortSignal.timeout(limitMs)]);
      const result =
        launch === undefined ? spawnCollect(argv, input, limited) : launch(argv, { signal: limited, input });
      return result.catch((error: unknown) => {
        throw new BatchdError(
          'PROVIDER_FAILED',
          `could not run ${command} (${argv[0] ?? ''}): ${(error as Error).message}`,
          { controller, command },
          { cause: error },
        );
      });
    },
  };
}

/**
 * Runs `argv` and collects its stdout and stderr. `input` is its stdin (text, or a stream such as
 * a file being uploaded); with `output`, stdout goes there instead (a file being downloaded), and
 * the result waits until `output` took all of it.
 */
export function spawnCollect(
  argv: string[],
  input: string | Readable | undefined,
  signal: AbortSignal,
  output?: Writable,
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const [file, ...args] = argv;
    if (file === undefined) {
      reject(new Error('empty command'));
      return;
    }
    const child = spawn(file, args, {
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      signal,
      killSignal: 'SIGKILL',
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const piped =
      output === undefined || child.stdout === null
        ? Promise.resolve()
        : pipeline(child.stdout, output).catch((error: unknown) => {
            child.kill('SIGKILL');
            reject(error instanceof Error ? error : new Error(String(error)));
          });
    if (output === undefined) child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => err.push(d));
    child.once('error', reject);
    const closed = (code: number | null, killed: NodeJS.Signals | null): void => {
      if (code === null) {
        reject(new Error(signal.aborted ? 'aborted or timed out' : `killed by ${killed ?? '?'}`));
        return;
      }
      resolve({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8').trim(),
      });
    };
    child.once('close', (code, killed) => void piped.then(() => closed(code, killed)));
    if (child.stdin !== null) {
      child.stdin.on('error', () => undefined);
      if (typeof input === 'object') {
        input.once('error', (error) => {
          child.kill('SIGKILL');
          reject(error);
        });
        input.pipe(child.stdin);
      } else child.stdin.end(input);
    }
  });
}
