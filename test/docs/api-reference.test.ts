import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type InProcessApi, startApi } from '../api/api-helpers.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const API_MD = path.join(ROOT, 'docs', 'api.md');
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS'] as const;

/**
 * The routes docs/api.md documents: each `METHOD /path` code span in the first column of its
 * endpoint table, the one headed "method and path" (one method and one path per span, path
 * parameters as `:name`).
 */
function documentedRoutes(): Set<string> {
  const lines = readFileSync(API_MD, 'utf8').split('\n');
  const header = lines.findIndex((l) => l.startsWith('| method and path |'));
  if (header < 0) throw new Error('docs/api.md has no "| method and path |" table');
  const rows: string[] = [];
  for (let i = header + 2; (lines[i] ?? '').startsWith('|'); i++) rows.push(lines[i] ?? '');
  const routes = new Set<string>();
  for (const row of rows) {
    const first = row.split(' | ')[0] ?? '';
    for (const span of first.matchAll(/`([^`]+)`/g)) {
      const route = span[1] ?? '';
      if (!new RegExp(`^(${METHODS.join('|')}) /\\S*$`).test(route))
        throw new Error(`docs/api.md: "${route}" is not one METHOD and one /path (row: ${row.slice(0, 80)})`);
      routes.add(route);
    }
  }
  return routes;
}

let api: InProcessApi;
beforeAll(async () => {
  api = await startApi();
});
afterAll(async () => {
  await api?.close();
});

/** The routes of the OpenAPI document the daemon serves, as `METHOD /path/:param`. */
async function openApiRoutes(): Promise<Set<string>> {
  const { status, body } = await api.json<{ paths: Record<string, Record<string, unknown>> }>(
    'GET',
    '/openapi.json',
  );
  expect(status).toBe(200);
  const routes = new Set<string>();
  for (const [route, operations] of Object.entries(body.paths)) {
    for (const method of Object.keys(operations))
      routes.add(`${method.toUpperCase()} ${route.replace(/\{([^}]+)\}/g, ':$1')}`);
  }
  return routes;
}

describe('docs/api.md against the OpenAPI document', () => {
  it('documents every route of the OpenAPI document', async () => {
    const documented = documentedRoutes();
    const missing = [...(await openApiRoutes())].filter((r) => !documented.has(r)).sort();
    expect(missing, 'routes served but not in docs/api.md').toEqual([]);
  });

  it('documents no route the OpenAPI document lacks', async () => {
    const served = await openApiRoutes();
    const extra = [...documentedRoutes()].filter((r) => !served.has(r)).sort();
    expect(extra, 'routes in docs/api.md that the daemon does not serve').toEqual([]);
  });
});
