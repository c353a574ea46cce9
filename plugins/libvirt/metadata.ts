/**
 * batchd's mark on a domain: one element in the domain's `<metadata>`, in batchd's namespace,
 * whose attributes are the tags without their `batchd.` prefix:
 *
 *     <metadata>
 *       <batchd:owner xmlns:batchd="urn:batchd:libvirt:1" spool="…" host="render-1" created="true"/>
 *     </metadata>
 *
 * libvirt keeps foreign metadata as it is (re-serialised), so plain text handling of that one
 * element is enough; everything else in the XML is left untouched.
 */
export const NAMESPACE = 'urn:batchd:libvirt:1';
const PREFIX = 'batchd.';
const METADATA = /<metadata>([\s\S]*?)<\/metadata>|<metadata\/>/;
const ELEMENT = /<([A-Za-z_][\w.-]*):[A-Za-z_][\w.-]*(\s[^>]*?)?(\/>|>[\s\S]*?<\/\1:[A-Za-z_][\w.-]*>)/g;
const ATTRIBUTE = /([A-Za-z_][\w:.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;

/** The tags batchd put on the domain, or undefined when it carries no batchd element. */
export function readTags(xml: string): Record<string, string> | undefined {
  const found = ours(xml);
  if (found === undefined) return undefined;
  const tags: Record<string, string> = {};
  for (const [key, value] of Object.entries(found.attributes))
    if (!key.startsWith('xmlns')) tags[PREFIX + key] = value;
  return tags;
}

/** Whether `tags` carries every one of `wanted` (the spool's tags select what is ours). */
export function carries(
  tags: Record<string, string> | undefined,
  wanted: Readonly<Record<string, string>>,
): boolean {
  return tags !== undefined && Object.entries(wanted).every(([k, v]) => tags[k] === v);
}

/** The XML with batchd's element set to `tags` (replacing the one it had). */
export function withTags(xml: string, tags: Readonly<Record<string, string>>): string {
  const attributes = Object.entries(tags)
    .map(([key, value]) => ` ${attributeName(key)}="${escape(value)}"`)
    .join('');
  const element = `<batchd:owner xmlns:batchd="${NAMESPACE}"${attributes}/>`;
  const bare = withoutTags(xml);
  const block = METADATA.exec(bare);
  // Replacements are functions: a `$` in a value must not act as a replacement pattern.
  if (block === null)
    return bare.replace(/<\/domain>\s*$/, () => `  <metadata>\n    ${element}\n  </metadata>\n</domain>\n`);
  return bare.replace(block[0], () => `<metadata>\n    ${element}${block[1] ?? ''}</metadata>`);
}

/** The XML without batchd's element. */
export function withoutTags(xml: string): string {
  const found = ours(xml);
  return found === undefined ? xml : xml.replace(found.text, () => '');
}

function ours(xml: string): { text: string; attributes: Record<string, string> } | undefined {
  const inner = METADATA.exec(xml)?.[1];
  if (inner === undefined) return undefined;
  for (const match of inner.matchAll(ELEMENT)) {
    const prefix = match[1] ?? '';
    const attributes = parseAttributes(match[2] ?? '');
    if (attributes[`xmlns:${prefix}`] === NAMESPACE) return { text: match[0], attributes };
  }
  return undefined;
}

function parseAttributes(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(ATTRIBUTE)) out[m[1] ?? ''] = unescape(m[2] ?? m[3] ?? '');
  return out;
}

function attributeName(tag: string): string {
  const name = tag.startsWith(PREFIX) ? tag.slice(PREFIX.length) : '';
  if (!/^[A-Za-z_][\w.-]*$/.test(name) || name.startsWith('xmlns'))
    throw new Error(`tag "${tag}" cannot be kept in libvirt metadata (expected batchd.<name>)`);
  return name;
}

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

export function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}

function unescape(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|apos|#\d+|#x[\da-fA-F]+);/g, (entity, body: string) => {
    if (body.startsWith('#x')) return String.fromCodePoint(parseInt(body.slice(2), 16));
    if (body.startsWith('#')) return String.fromCodePoint(parseInt(body.slice(1), 10));
    return Object.entries(ENTITIES).find(([, e]) => e === entity)?.[0] ?? entity;
  });
}
