import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { ESLint, type Linter } from 'eslint';
import ts from 'typescript';
import tseslint from 'typescript-eslint';
import { beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const daemonDir = path.join(root, 'daemon');

interface Boundaries {
  LAYERS: Record<string, readonly string[]>;
  FILE_PARTS: readonly string[];
  KNOWN_VIOLATIONS: Record<string, { modules: readonly string[]; why: string }>;
  partOf: (pathInDaemon: string) => string;
  boundaryConfigs: () => Linter.Config[];
}

/** One import from a part of daemon/ to another: the importing file and the module imported. */
interface Import {
  file: string;
  /** The module's path inside the imported part (`atomic.ts` of spool/). */
  module: string;
}

/** The imports between parts: from -> to -> imports. */
type Graph = Map<string, Map<string, Import[]>>;

let boundaries: Boundaries;
let graph: Graph;

beforeAll(async () => {
  // A computed path: the module is plain JavaScript (eslint.config.js imports it), typed here.
  boundaries = (await import(pathToFileURL(path.join(root, 'eslint.boundaries.js')).href)) as Boundaries;
  graph = importGraph(boundaries.partOf);
});

/** Every import of every TypeScript file under daemon/ (static, type-only, re-exports and `import()`). */
function importGraph(partOf: (p: string) => string): Graph {
  const out: Graph = new Map();
  const files = readdirSync(daemonDir, { recursive: true, encoding: 'utf8' }).filter((f) =>
    /\.c?ts$/.test(f),
  );
  for (const file of files) {
    const rel = file.split(path.sep).join('/');
    const from = partOf(rel);
    const info = ts.preProcessFile(readFileSync(path.join(daemonDir, file), 'utf8'), true, true);
    for (const { fileName } of info.importedFiles) {
      if (!fileName.startsWith('.')) continue; // a package
      const target = path.relative(daemonDir, path.resolve(daemonDir, path.dirname(file), fileName));
      if (target.startsWith('..')) continue; // outside daemon/ (package.json)
      const inDaemon = target.split(path.sep).join('/');
      const to = partOf(inDaemon);
      if (to === from) continue;
      const edges = out.get(from) ?? new Map<string, Import[]>();
      out.set(from, edges);
      const module = inDaemon.split('/').slice(1).join('/');
      edges.set(to, [...(edges.get(to) ?? []), { file: `daemon/${rel}`, module }]);
    }
  }
  return out;
}

/** The cycles among the parts, each once, as "a -> b -> a" (a depth-first search from each part). */
function cycles(edges: (from: string) => Iterable<string>, parts: readonly string[]): string[] {
  const found = new Set<string>();
  const stack: string[] = [];
  const visit = (part: string, start: string): void => {
    for (const next of edges(part)) {
      if (next === start) {
        // Keep a cycle only from its smallest part, so each is reported once.
        if (stack.every((p) => p >= start)) found.add([...stack, start].join(' -> '));
      } else if (!stack.includes(next) && next > start) {
        stack.push(next);
        visit(next, start);
        stack.pop();
      }
    }
  };
  for (const part of [...parts].sort()) {
    stack.push(part);
    visit(part, part);
    stack.pop();
  }
  return [...found];
}

const edgesOf =
  (g: Graph) =>
  (from: string): string[] => [...(g.get(from)?.keys() ?? [])];

describe('the layering of daemon/', () => {
  it('names every part of daemon/, and its table has no cycle', () => {
    const parts = Object.keys(boundaries.LAYERS);
    const unknown = [...graph.keys()].filter((p) => !parts.includes(p));
    expect(unknown, 'parts of daemon/ missing from LAYERS in eslint.boundaries.js').toEqual([]);
    // The lint tells a top-level file from a folder by this list.
    const files = readdirSync(daemonDir, { withFileTypes: true })
      .filter((e) => e.isFile() && /\.c?ts$/.test(e.name))
      .map((e) => boundaries.partOf(e.name));
    expect([...boundaries.FILE_PARTS].sort()).toEqual(files.sort());
    for (const [part, allowed] of Object.entries(boundaries.LAYERS))
      for (const other of allowed) expect(parts, `${part} may import ${other}`).toContain(other);
    const table = (from: string): readonly string[] => boundaries.LAYERS[from] ?? [];
    expect(cycles(table, parts)).toEqual([]);
  });

  it('every import between parts follows the layering (or is a known violation still to remove)', () => {
    const wrong: string[] = [];
    for (const [from, edges] of graph) {
      for (const [to, imports] of edges) {
        if (boundaries.LAYERS[from]?.includes(to) === true) continue;
        const known = boundaries.KNOWN_VIOLATIONS[`${from} -> ${to}`]?.modules ?? [];
        const unknown = imports.filter((i) => !known.includes(i.module));
        if (unknown.length > 0)
          wrong.push(
            `${from} -> ${to}:\n    ${unknown.map((i) => `${i.file} imports ${to}/${i.module}`).join('\n    ')}`,
          );
      }
    }
    expect(wrong.join('\n'), 'imports against the layering').toBe('');
  });

  it('each known violation still exists (the list shrinks as they are removed)', () => {
    const gone = Object.entries(boundaries.KNOWN_VIOLATIONS).flatMap(([edge, { modules }]) => {
      const [from = '', to = ''] = edge.split(' -> ');
      const imported = new Set(
        graph
          .get(from)
          ?.get(to)
          ?.map((i) => i.module),
      );
      return modules.filter((m) => !imported.has(m)).map((m) => `${edge}: ${m}`);
    });
    expect(gone, 'remove these from KNOWN_VIOLATIONS in eslint.boundaries.js').toEqual([]);
  });

  it('the parts import each other without a cycle, apart from those through known violations', () => {
    const parts = [...new Set([...graph.keys(), ...Object.keys(boundaries.LAYERS)])];
    const all = cycles(edgesOf(graph), parts);
    const known = new Set(Object.keys(boundaries.KNOWN_VIOLATIONS));
    const through = (cycle: string): boolean => {
      const p = cycle.split(' -> ');
      return p.slice(1).some((to, i) => known.has(`${p[i]} -> ${to}`));
    };
    // Printed so the remaining cycles stay visible in the test output.
    if (all.length > 0) console.info(`cycles through known violations:\n  ${all.join('\n  ')}`);
    expect(all.filter((c) => !through(c))).toEqual([]);
  });

  it('finds a cycle when there is one, and prints it', () => {
    const g: Graph = new Map([
      ['api', new Map([['service', []]])],
      ['service', new Map([['spool', []]])],
      ['spool', new Map([['api', []]])],
    ]);
    expect(cycles(edgesOf(g), ['api', 'service', 'spool'])).toEqual(['api -> service -> spool -> api']);
  });
});

describe('the boundary rule in the linter', () => {
  /** ESLint with the boundary rules exactly as eslint.config.js adds them (no type information needed). */
  const lint = async (file: string, code: string): Promise<Linter.LintMessage[]> => {
    const eslint = new ESLint({
      cwd: root,
      overrideConfigFile: true,
      overrideConfig: [
        { files: ['**/*.ts', '**/*.cts'], languageOptions: { parser: tseslint.parser } },
        ...boundaries.boundaryConfigs(),
      ],
    });
    const [result] = await eslint.lintText(code, { filePath: path.join(root, file) });
    return result?.messages ?? [];
  };

  it('eslint.config.js applies it to the files of daemon/', async () => {
    const eslint = new ESLint({ cwd: root });
    const config = (await eslint.calculateConfigForFile(path.join(root, 'daemon/spool/layout.ts'))) as {
      rules?: Record<string, unknown>;
    };
    expect(JSON.stringify(config.rules?.['no-restricted-imports'])).toContain(
      'daemon/spool must not import daemon/api',
    );
  });

  it('fails a deliberate import against the layering, with the rule’s message', async () => {
    const messages = await lint(
      'daemon/spool/cross-import-fixture.ts',
      [
        "import type { Api } from '../api/app.ts';",
        "import { Daemon } from '../daemon.ts';",
        'export type A = Api;',
        'export const d = Daemon;',
      ].join('\n'),
    );
    expect(messages.map((m) => [m.ruleId, m.message])).toEqual([
      ['no-restricted-imports', expect.stringContaining('daemon/spool must not import daemon/api') as string],
      [
        'no-restricted-imports',
        expect.stringContaining('daemon/spool must not import daemon/daemon') as string,
      ],
    ]);
  });

  it('fails the API reaching past its port, from any depth', async () => {
    const messages = await lint(
      'daemon/api/routes/cross-import-fixture.ts',
      "import type { SpoolLayout } from '../../spool/layout.ts';\nexport type L = SpoolLayout;\n",
    );
    expect(messages.map((m) => m.message)).toEqual([
      expect.stringContaining('daemon/api must not import daemon/spool') as string,
    ]);
  });

  it('lets imports that follow the layering through', async () => {
    expect(
      await lint(
        'daemon/api/routes/cross-import-fixture.ts',
        "import type { DaemonPort } from '../../service/port.ts';\nimport { route } from './jobs.ts';\nexport type P = DaemonPort;\nexport const r = route;\n",
      ),
    ).toEqual([]);
    // The CLI's own main.ts is not the daemon's main.ts.
    expect(await lint('daemon/cli/cross-import-fixture.ts', "export { run } from './main.ts';\n")).toEqual(
      [],
    );
  });
});
