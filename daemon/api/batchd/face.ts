import type { Context } from 'hono';

import { BatchdError } from '../../errors.ts';
import { readBodyText } from '../body.ts';
import type { ApiContext, ApiEnv } from '../context.ts';
import type { Native } from './forward.ts';
import type { JobNumbers } from './numbers.ts';

export type FaceCtx = Context<ApiEnv>;

/** What the batchd face's routes share. */
export interface Face {
  ctx: ApiContext;
  native: Native;
  numbers: JobNumbers;
}

/**
 * A batchd client's request body: JSON whatever the Content-Type says (its Python client and CLI
 * send none); an empty body is `{}`.
 */
export async function batchdBody(face: Face, c: FaceCtx): Promise<Record<string, unknown>> {
  const text = await readBodyText(c, face.ctx.settings.max_body_bytes);
  if (text.trim() === '') return {};
  let data: unknown;
  try {
    data = JSON.parse(text) as unknown;
  } catch (error) {
    throw new BatchdError(
      'BAD_JSON',
      `Malformed JSON in the request body: ${error instanceof Error ? error.message : 'unreadable'}`,
    );
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data))
    throw new BatchdError('BAD_JSON', 'Expected a JSON object in the request body');
  return data as Record<string, unknown>;
}

/** Only the fields batchd's document has (the native API refuses unknown ones; batchd ignored them). */
export function pick(body: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields) if (body[f] !== undefined) out[f] = body[f];
  return out;
}

/** A path segment for a native URL. */
export function seg(value: string): string {
  return encodeURIComponent(value);
}

/** The job id behind a batchd job number in the path; 404 (batchd's answer) when there is none. */
export function jobIdOf(face: Face, raw: string): string {
  const number = /^\d{1,15}$/.test(raw) ? Number(raw) : undefined;
  const id = number === undefined ? undefined : face.numbers.idOf(number);
  if (id === undefined) throw new BatchdError('UNKNOWN_JOB', `Job not found: ${raw}`, { jobId: raw });
  return id;
}

/** batchd answers a change with "done". */
export function done(c: FaceCtx): Response {
  return c.json('done', 200);
}
