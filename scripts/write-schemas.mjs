// Writes schemas/*.schema.json from the built zod schemas (npm run schemas). A unit test checks they are current.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { jsonSchemas } = await import(path.join(root, 'dist/daemon/json-schemas.js'));
const out = path.join(root, 'schemas');
mkdirSync(out, { recursive: true });
for (const [name, schema] of Object.entries(jsonSchemas())) {
  writeFileSync(path.join(out, name), JSON.stringify(schema, null, 2) + '\n');
}
console.log(`wrote ${Object.keys(jsonSchemas()).length} schemas to ${out}`);
