import { coerceError } from '../errors.ts';

/** Resolves after `ms`, or rejects with the signal's reason when it is aborted first. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Between tries of `retryUntil`. */
const RETRY_EVERY_MS = 1_000;

/**
 * `attempt` until it succeeds or `patienceMs` has passed (then its last error is thrown); with no
 * patience, once. For a machine that was just started and may take a while to answer.
 */
export async function retryUntil<T>(
  patienceMs: number,
  signal: AbortSignal,
  attempt: () => Promise<T>,
): Promise<T> {
  const deadline = Date.now() + patienceMs;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (signal.aborted || Date.now() + RETRY_EVERY_MS > deadline) throw coerceError(error);
    }
    await sleep(RETRY_EVERY_MS, signal);
  }
}
