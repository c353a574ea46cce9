import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { expect } from 'vitest';

import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { type EnvOptions, makeEnv, type TestEnv, waitFor } from '../helpers/env.ts';
import { type CliResult, runCli } from './run-cli.ts';

export interface ApiDaemon {
  env: TestEnv;
  daemon: DaemonProcess;
  /** Where the API listens (a free port on 127.0.0.1). */
  url: string;
  /** A HOME of its own for the CLI, so no real ~/.config/batchd is read. */
  home: string;
  /** Run `batch` against this daemon (BATCH_MANAGER_URL set; more env can be given). */
  batch(
    args: string[],
    options?: { env?: Record<string, string>; input?: string; onStdout?: (stdout: string) => void },
  ): Promise<CliResult>;
  stop(): Promise<void>;
}

/** A real batchd process with its HTTP API on a free loopback port, and a way to run the CLI at it. */
export async function startApiDaemon(
  options: EnvOptions & {
    manager?: Record<string, unknown>;
    beforeStart?: (env: TestEnv) => Promise<void>;
  } = {},
): Promise<ApiDaemon> {
  const env = makeEnv({
    ...options,
    config: { ...options.config, manager: { enabled: true, host: '127.0.0.1', port: 0, ...options.manager } },
  });
  await options.beforeStart?.(env);
  const daemon = await startDaemon(env.etc, env.spool);
  const url = await waitFor(
    () =>
      daemon
        .records()
        .find((r) => typeof r.url === 'string' && String(r.msg).startsWith('HTTP API listening'))?.url as
        string | undefined,
    10_000,
    'the HTTP API to listen',
  );
  const home = mkdtempSync(path.join(env.root, 'home-'));
  return {
    env,
    daemon,
    url,
    home,
    batch: (args, more = {}) =>
      runCli(args, {
        home,
        env: { BATCH_MANAGER_URL: url, ...more.env },
        ...(more.input === undefined ? {} : { input: more.input }),
        ...(more.onStdout === undefined ? {} : { onStdout: more.onStdout }),
      }),
    stop: async () => {
      await daemon.stop();
      env.cleanup();
    },
  };
}

export function tempHome(): string {
  return mkdtempSync(path.join(tmpdir(), 'batch-cli-home-'));
}

const JOB_ID = /^\d{8}T\d{6}\.\d{3}Z-[a-z0-9]{6}$/;

/** `batch enqueue ARGS`, which must succeed and print one job id, and nothing on stderr. */
export async function enqueueJob(d: ApiDaemon, args: string[]): Promise<string> {
  const result = await d.batch(['enqueue', ...args]);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const id = result.stdout.trim();
  expect(id).toMatch(JOB_ID);
  return id;
}
