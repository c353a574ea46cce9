import type { WriteStream } from 'node:fs';

import type { RunOutcome } from '../jobs/executor.ts';

/** Makes the outcome of an attempt that started now. */
export type End = (outcome: RunOutcome['outcome'], error?: string, extra?: Partial<RunOutcome>) => RunOutcome;

/**
 * The two ways a remote attempt ends that every executor words the same: with an outcome of its
 * own (`end`), or stopped from outside (`stopped`: cancelled, or interrupted by the daemon's stop).
 */
export function attemptEnd(signal: AbortSignal): { end: End; stopped: () => RunOutcome } {
  const startedAt = new Date().toISOString();
  const end: End = (outcome, error, extra = {}) => ({
    outcome,
    error,
    startedAt,
    endedAt: new Date().toISOString(),
    ...extra,
  });
  const stopped = (): RunOutcome =>
    signal.reason === 'shutdown' ? end('interrupted', 'the daemon shut down') : end('cancelled', 'cancelled');
  return { end, stopped };
}

/** Close a log file once everything written to it is out. */
export function finish(stream: WriteStream): Promise<void> {
  return new Promise((resolve) => stream.end(() => resolve()));
}
