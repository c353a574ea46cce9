import { IncomingMessage } from 'node:http';

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
  const incoming = (c.env as { incoming?: unknown } | undefined)?.incoming;
  if (declared !== undefined && Number(declared) > max) {
    if (incoming instanceof IncomingMessage) await discardRest(incoming);
    throw tooLarge(max);
  }
  const bytes =
    incoming instanceof IncomingMessage ? await readIncoming(incoming, max) : await readWebBody(c, max);
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new BatchdError('BAD_JSON', 'The request body is not valid UTF-8');
  }
}

/**
 * Straight from Node's request (served by @hono/node-server): asking hono for the body builds a
 * WHATWG Request and a web stream around it first, about 100 µs a submission here. Past `max` it
 * stops keeping the data and drops the rest (`discardRest`) before the 413 is sent.
 */
function readIncoming(incoming: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (): void => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= max) return void chunks.push(chunk);
      done();
      void discardRest(incoming).then(() => reject(tooLarge(max)));
    };
    const onEnd = (): void => {
      done();
      resolve(Buffer.concat(chunks));
    };
    const onError = (error: Error): void => {
      done();
      reject(error);
    };
    if (incoming.readableEnded) return resolve(Buffer.alloc(0));
    incoming.on('data', onData);
    incoming.once('end', onEnd);
    incoming.once('error', onError);
  });
}

/** The most of a refused body read and dropped, and for how long, before the 413 is sent. */
const DISCARD_BYTES = 16 * 1024 * 1024;
const DISCARD_MS = 2000;

/**
 * Read and drop the rest of a refused body, within bounds, before the answer: the connection
 * closes after it, and closing it while the client still sends makes the kernel reset it, so the
 * client would see a broken pipe instead of the 413 and its message.
 */
function discardRest(incoming: IncomingMessage): Promise<void> {
  if (incoming.readableEnded || incoming.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let dropped = 0;
    const finish = (): void => {
      clearTimeout(timer);
      incoming.off('data', onData);
      incoming.off('end', finish);
      incoming.off('error', finish);
      incoming.off('close', finish);
      resolve();
    };
    const onData = (chunk: Buffer): void => {
      dropped += chunk.length;
      if (dropped > DISCARD_BYTES) finish();
    };
    const timer = setTimeout(finish, DISCARD_MS);
    incoming.on('data', onData);
    incoming.once('end', finish);
    incoming.once('error', finish);
    incoming.once('close', finish);
    incoming.resume();
  });
}

/** Through hono's Request (tests call the app directly, without a server). */
async function readWebBody(c: Context, max: number): Promise<Buffer> {
  const body = c.req.raw.body;
  if (body === null) return Buffer.alloc(0);
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
  return Buffer.concat(chunks);
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
