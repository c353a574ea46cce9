import { statSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { expect } from 'vitest';

import type { ApiDaemon } from '../cli/api-daemon.ts';
import { findJob, jobDir, readLog, readState, type StateFile, waitFor } from '../helpers/env.ts';

/** What the pause tests (pause*.test.ts, cli-pause.test.ts) share: a counting job and ways to watch it. */
export type PausedState = StateFile & { paused_at?: string; paused_seconds?: number };

/** Prints 0, 1, … every 0.1 s: its output grows as long as it runs. */
export const counter = (count: number): string =>
  `i=0; while [ $i -lt ${count} ]; do echo $i; i=$((i+1)); sleep 0.1; done`;

/** The numbers 0 … count-1, one a line: the job ran to its end, none skipped or doubled. */
export function fullCount(count: number): string {
  return Array.from({ length: count }, (_, i) => `${i}\n`).join('');
}

/** An API answer: the fields these tests read. */
export interface Reply {
  status: number;
  body: { jobs?: unknown[]; error?: { message: string }; [key: string]: unknown };
}

/** Calls to a daemon's API and looks at its jobs' folders. */
export function probe(d: ApiDaemon) {
  const call = async (method: string, url: string, body?: unknown): Promise<Reply> => {
    const response = await fetch(`${d.url}${url}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: (text === '' ? {} : JSON.parse(text)) as Reply['body'] };
  };

  const submit = async (queue: string, job: Record<string, unknown>): Promise<string> => {
    const { status, body } = await call('POST', `/queue/${queue}`, job);
    expect(status).toBe(201);
    return body.jobs?.[0] as string;
  };

  const where = (id: string): { queue: string; state: string } => {
    const found = findJob(d.env.spool, id);
    if (found.length !== 1) throw new Error(`job ${id} is in ${found.length} places`);
    return found[0] as { queue: string; state: string };
  };

  const dirOf = (id: string): string => {
    const { queue, state } = where(id);
    return jobDir(d.env.spool, queue, state, id);
  };

  const stateOf = (id: string): PausedState => {
    const { queue, state } = where(id);
    const record: PausedState = readState(d.env.spool, queue, state, id);
    return record;
  };

  const stdoutSize = (id: string): number => {
    try {
      return statSync(path.join(dirOf(id), 'stdout.log')).size;
    } catch {
      return 0;
    }
  };

  /** A running job that has printed a few lines. */
  const runningCounter = async (
    queue: string,
    count: number,
    more: Record<string, unknown> = {},
  ): Promise<string> => {
    const id = await submit(queue, { command: counter(count), ...more });
    await waitFor(() => stdoutSize(id) >= 6, 15_000, `job ${id} to print`);
    return id;
  };

  /** Its output does not grow: two samples a second apart (once the freeze has surely taken hold). */
  const expectNoProgress = async (id: string): Promise<void> => {
    await sleep(300);
    const before = stdoutSize(id);
    await sleep(1000);
    expect(stdoutSize(id)).toBe(before);
    expect(where(id).state).toBe('running');
  };

  return {
    call,
    submit,
    where,
    stateOf,
    stdoutSize,
    stdoutOf: (id: string): string => readLog(dirOf(id), 'stdout.log'),
    runningCounter,
    expectNoProgress,
  };
}
