import type { Context } from 'hono';

import { loadText } from '../config/parse.ts';
import { BatchdError } from '../errors.ts';

export interface RequestBody {
  text: string;
  format: 'json' | 'yaml';
  /** The parsed document; `{}` for an empty body. */
  data: unknown;
}

/** Read a request body up to `max` bytes (413 beyond), as text. */
export async function readBodyText(c: Context, max: number): Promise<string> {
  const declared = c.req.header('content-length');
  if (declared !== undefined && Number(declared) > max) throw tooLarge(max);
  const body = c.req.raw.body;
  if (body === null) return '';
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge(max);
    }
    chunks.push(value);
  }
  try {
    return UTF8.decode(Buffer.concat(chunks));
  } catch {
    throw new BatchdError('BAD_JSON', 'The request body is not valid UTF-8');
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Parse a body as JSON, or as YAML when the Content-Type says so and the route takes YAML. Any
 * other Content-Type is read as JSON: `curl -d` sends form encoding by default.
 */
export async function readBody(c: Context, max: number, yamlAllowed: boolean): Promise<RequestBody> {
  const text = await readBodyText(c, max);
  const type = (c.req.header('content-type') ?? '').toLowerCase();
  if (yamlAllowed && type.includes('yaml')) {
    return { text, format: 'yaml', data: text.trim() === '' ? {} : loadText(text, 'request body') };
  }
  if (text.trim() === '') return { text, format: 'json', data: {} };
  try {
    return { text, format: 'json', data: JSON.parse(text) as unknown };
  } catch (error) {
    const why = error instanceof Error ? error.message : 'unreadable';
    throw new BatchdError('BAD_JSON', `Malformed JSON in the request body: ${why}`);
  }
}

function tooLarge(max: number): BatchdError {
  return new BatchdError('TOO_LARGE', `The request body is larger than ${max} bytes (manager.max_body_bytes)`, { max });
}
