import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';

import { BatchdError, type ErrorCode, type Problem } from '../errors.ts';

/**
 * Parse YAML or JSON text and validate it with a schema; every problem names the file, the line
 * and the field. JSON goes through JSON.parse first: it is a YAML subset and a hundred times
 * faster, which matters for state files and busy drop folders.
 */
export function parseText<S extends z.ZodType>(
  text: string,
  schema: S,
  file: string,
  code: ErrorCode = 'CONFIG_INVALID',
  prepare: (data: unknown) => unknown = (data) => data,
): z.output<S> {
  const data = prepare(loadText(text, file));
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  const problems = locateIssues(text, result.error.issues, data);
  throw new BatchdError(code, formatProblems(file, problems), { file, line: problems[0]?.line }, { problems });
}

export function loadText(text: string, file: string): unknown {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // Fall through: YAML flow syntax also starts with { or [.
    }
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, version: '1.2' });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => {
      const pos = lineCounter.linePos(e.pos[0]);
      return { line: pos.line, message: `YAML syntax: ${e.message.split('\n')[0] ?? e.message}` };
    });
    throw new BatchdError('YAML_SYNTAX', formatProblems(file, problems), { file, line: problems[0]?.line }, { problems });
  }
  return doc.toJS({ maxAliasCount: 100 }) as unknown;
}

export function locateIssues(text: string, issues: readonly z.core.$ZodIssue[], data?: unknown): Problem[] {
  let doc: ReturnType<typeof parseDocument> | undefined;
  const lineCounter = new LineCounter();
  try {
    doc = parseDocument(text, { lineCounter });
  } catch {
    doc = undefined;
  }
  return issues.map((issue) => {
    const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
    // An unknown key is the field at fault, not the object holding it (which may be the root).
    const fieldPath = issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined ? [...path, issue.keys[0]] : path;
    const field = fieldPath.length === 0 ? undefined : fieldPath.map(String).join('.');
    let line: number | undefined;
    if (doc !== undefined) {
      // The deepest node that exists on the path: a missing field points at its parent.
      for (let depth = path.length; depth >= 0 && line === undefined; depth--) {
        const node = doc.getIn(path.slice(0, depth), true) as { range?: [number, number, number] } | undefined;
        if (node?.range !== undefined) line = lineCounter.linePos(node.range[0]).line;
      }
      // A key's own line reads better than its value's for unknown-key errors.
      if (issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined) {
        const parent: unknown = path.length === 0 ? doc.contents : doc.getIn(path, true);
        const pair = (parent as { items?: { key?: { value?: unknown; range?: [number, number, number] } }[] })
          ?.items?.find((i) => i.key?.value === issue.keys[0]);
        if (pair?.key?.range !== undefined) line = lineCounter.linePos(pair.key.range[0]).line;
      }
    }
    return { field, line, message: describeIssue(issue, data) };
  });
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let node = data;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

function describeIssue(issue: z.core.$ZodIssue, data: unknown): string {
  if (issue.code === 'unrecognized_keys') {
    return `Unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  }
  if (issue.code === 'invalid_type') {
    const got = valueAt(data, issue.path);
    if (got === undefined) return `Missing required field (expected ${issue.expected})`;
    return `Expected ${issue.expected}, got ${JSON.stringify(got)} (${Array.isArray(got) ? 'array' : typeof got})`;
  }
  return issue.message;
}

export function formatProblems(file: string, problems: readonly Problem[]): string {
  return problems
    .map((p) => {
      const where = [file, p.line === undefined ? undefined : `line ${p.line}`, p.field === undefined ? undefined : `field ${p.field}`]
        .filter((x) => x !== undefined)
        .join(', ');
      return `${where}: ${p.message}`;
    })
    .join('\n');
}
