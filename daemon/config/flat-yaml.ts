import { Document, isScalar, type ScalarTag } from 'yaml';

/**
 * The common job file, read without the full YAML parser: `key: value` lines, and one level of
 * `params:` below them, each value a single-line scalar. On a drop's way to its process the full
 * parser costs 0.1 ms warm and 0.3–0.5 ms when the CPU's caches are cold after a quiet moment, the
 * largest single step between the drop and the job's start (README, "Where the time goes").
 *
 * It reads only what it can read exactly as `yaml` does, and says `undefined` for anything else, which
 * then goes to the full parser: so the result never differs, and every error (with its line) still
 * comes from there. Exact by construction:
 * - the text is printable ASCII lines with no tab, no CR, no comment after a value, no flow or block
 *   collection, no anchor, alias, tag, directive or document marker, and no key twice;
 * - a plain value is resolved by the core schema's own tags of the `yaml` package, tried in its
 *   order, as its composer does; a plain value that could span lines, or holds `:` or ` #`, is not read;
 * - a quoted value holds no escape (`\` in double quotes, `''` in single quotes).
 * test/unit/flat-yaml.test.ts compares it with `yaml` on generated and hand-picked files.
 */
export function readFlatYaml(text: string): Record<string, unknown> | undefined {
  if (text.length > MAX_TEXT || !PRINTABLE.test(text)) return undefined;
  const top: Record<string, unknown> = {};
  // The `params:` block the lines below belong to, while they are indented by two spaces.
  let params: Record<string, unknown> | undefined;
  let block: Record<string, unknown> | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const match = LINE.exec(line);
    if (match === null) return undefined;
    const [, indent = '', key = '', raw = ''] = match;
    // Anything else indented would continue the value above it (a plain scalar over lines).
    const into = indent === '' ? top : indent === '  ' ? params : undefined;
    if (into === undefined || Object.hasOwn(into, key) || !isPlainKey(key)) return undefined;
    params = undefined;
    if (raw === '') {
      // Only `params:` opens a block; an empty value is null, for the full parser to say so.
      if (into !== top || key !== 'params') return undefined;
      params = block = {};
      top[key] = block;
      continue;
    }
    if (into !== top) params = into;
    const value = scalar(raw);
    if (value === NOT_READ) return undefined;
    into[key] = value;
  }
  if (Object.keys(top).length === 0) return undefined;
  // `params:` with nothing under it is null in YAML.
  if (block !== undefined && Object.keys(block).length === 0) return undefined;
  return top;
}

const MAX_TEXT = 4096;
const PRINTABLE = /^[\x20-\x7e\n]*$/;
/** An optional indent of spaces, a key, `:`, and a value (or nothing) with trailing spaces. */
const LINE = /^( *)([A-Za-z_][A-Za-z0-9_]*):(?: +(\S(?:.*\S)?))? *$/;
const DOUBLE = /^"([^"\\]*)"$/;
const SINGLE = /^'([^']*)'$/;
/** Plain: no indicator first, no ` #` (a comment), and no `:` at all (`: ` would start a mapping). */
const PLAIN = /^[A-Za-z0-9_./~$+=(<^][^:]*$/;

const NOT_READ = Symbol('not read');

/**
 * The tags of YAML 1.2's core schema, as `yaml` builds it for a document of that version, that a
 * plain scalar is tested against, in its order (a plain scalar none of them takes is a string).
 */
const TESTED_TAGS = new Document(null, { version: '1.2' }).schema.tags.filter(
  (t): t is ScalarTag => t.collection === undefined && t.default === true && t.test !== undefined,
);

function scalar(raw: string): unknown {
  const quoted = DOUBLE.exec(raw) ?? SINGLE.exec(raw);
  if (quoted !== null) return quoted[1];
  if (!PLAIN.test(raw) || raw.includes(' #')) return NOT_READ;
  const tag = TESTED_TAGS.find((t) => t.test?.test(raw) === true);
  if (tag === undefined) return raw;
  let failed = false;
  const resolved: unknown = tag.resolve(raw, () => (failed = true), {});
  if (failed) return NOT_READ;
  return isScalar(resolved) ? resolved.value : resolved;
}

/** A key the core schema reads as a string (not `null`, `true`…), and not one JavaScript treats specially. */
function isPlainKey(key: string): boolean {
  return key !== '__proto__' && typeof scalar(key) === 'string';
}
