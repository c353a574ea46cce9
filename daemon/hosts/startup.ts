import { spawn } from 'node:child_process';

import { BatchdError } from '../errors.ts';
import { shellQuote } from './shell-quote.ts';
import type { HostConfig } from './schema.ts';

/** Runs shell code on the host (over SSH, or through a provider's shell). */
export type RunOnHost = (command: string) => Promise<{ code: number | null; stderr: string }>;

const TAIL = 500;

/**
 * A host's startup commands, each time it comes up: first those on this machine, then those on the
 * host, in order, stopping at the first failure. They are shell code written by the administrator;
 * the variables (name, hostname, user, port, … and the host's and global `variables`) reach them as
 * environment variables, so `$hostname` works and no value is ever parsed as code.
 */
export async function runStartupCommands(
  name: string,
  host: HostConfig,
  runOnHost: RunOnHost,
  variables: Record<string, string>,
  signal: AbortSignal,
): Promise<void> {
  for (const command of host.startup_commands_on_dispatcher) {
    const { code, stderr } = await runHere(command, variables, signal);
    if (code !== 0) throw failure(name, 'on the dispatcher', command, code, stderr);
  }
  const exports = Object.entries(variables)
    .map(([k, v]) => `export ${k}=${shellQuote(v)}\n`)
    .join('');
  for (const command of host.startup_commands_on_host) {
    signal.throwIfAborted();
    const { code, stderr } = await runOnHost(`exec /bin/sh -c ${shellQuote(exports + command)}`);
    if (code !== 0) throw failure(name, 'on the host', command, code, stderr);
  }
}

function failure(
  name: string,
  where: string,
  command: string,
  code: number | null,
  stderr: string,
): BatchdError {
  const tail = stderr.trim().slice(-TAIL);
  return new BatchdError(
    'HOST_STARTUP_FAILED',
    `host ${name}: startup command ${where} failed (${code === null ? 'killed' : `exit code ${code}`}): ${command}${tail === '' ? '' : `: ${tail}`}`,
    { host: name, command },
  );
}

function runHere(
  command: string,
  variables: Record<string, string>,
  signal: AbortSignal,
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], {
      env: { ...process.env, ...variables },
      stdio: ['ignore', 'ignore', 'pipe'],
      signal,
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4 * TAIL)));
    child.once('error', (error) => resolve({ code: null, stderr: error.message }));
    child.once('close', (code) => resolve({ code, stderr }));
  });
}
