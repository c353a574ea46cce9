import { escape, withTags } from './metadata.ts';

/**
 * The XML to define a host's domain from its template file: named after the host's domain id,
 * without the template's `<uuid>` (libvirt gives each definition its own), carrying `tags`.
 */
export function domainFromTemplate(
  template: string,
  name: string,
  tags: Readonly<Record<string, string>>,
): string {
  const open = /<domain[\s>][^>]*>/.exec(template);
  if (open === null) throw new Error('the template is not a libvirt domain XML (no <domain> element)');
  const named = `<name>${escape(name)}</name>`;
  let xml = template.replace(/<uuid>[^<]*<\/uuid>\s*/, '');
  xml = /<name>[^<]*<\/name>/.test(xml)
    ? xml.replace(/<name>[^<]*<\/name>/, () => named)
    : xml.replace(open[0], (tag) => `${tag}\n  ${named}`);
  return withTags(xml, tags);
}
