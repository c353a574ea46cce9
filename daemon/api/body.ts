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
  const reader = (body as ReadableStream<Uint8Array>).getReader();
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
    return { text, format: 'yaml', data: text.trim() === '' ? {} : shallow(loadYaml(text)) };
  }
  if (text.trim() === '') return { text, format: 'json', data: {} };
  let data: unknown;
  try {
    data = JSON.parse(text) as unknown;
  } catch (error) {
    const why = error instanceof Error ? error.message : 'unreadable';
    throw new BatchdError('BAD_JSON', `Malformed JSON in the request body: ${why}`);
  }
  return { text, format: 'json', data: shallow(data) };
}

/** No request document of this API nests deeper than this; deeper ones are attacks on recursive code downstream. */
const MAX_DEPTH = 32;

function shallow(data: unknown): unknown {
  let level: unknown[] = [data];
  for (let depth = 0; level.length > 0; depth++) {
    if (depth > MAX_DEPTH)
      throw new BatchdError('BAD_JSON', `The request body nests deeper than ${MAX_DEPTH} levels`);
    const next: unknown[] = [];
    for (const value of level)
      if (value !== null && typeof value === 'object')
        for (const child of Object.values(value)) next.push(child);
    level = next;
  }
  return data;
}

/** The YAML library refuses alias bombs and the like by throwing plain errors: they are bad input too. */
function loadYaml(text: string): unknown {
  try {
    return loadText(text, 'request body');
  } catch (error) {
    if (error instanceof BatchdError) throw error;
    throw new BatchdError(
      'YAML_SYNTAX',
      `Unreadable YAML in the request body: ${error instanceof Error ? error.message : 'invalid'}`,
    );
  }
}

function tooLarge(max: number): BatchdError {
  return new BatchdError(
    'TOO_LARGE',
    `The request body is larger than ${max} bytes (manager.max_body_bytes)`,
    { max },
  );
}
