import type { HostShell, ProviderHost } from './provider.ts';

const KEEP = 64 * 1024;

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a short command through a provider's shell and collect its output (the tail of each stream). */
export async function shellRun(
  shell: HostShell,
  host: ProviderHost,
  script: string,
  signal: AbortSignal,
): Promise<RunResult> {
  const channel = await shell.exec(host, script, signal);
  let stdout = '';
  let stderr = '';
  channel.stdout.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(-KEEP)));
  channel.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-KEEP)));
  // The command reads nothing; end-of-file on its stdin is what a short command expects.
  channel.end();
  const exit = await channel.exit;
  return { code: exit.code, stdout, stderr };
}
