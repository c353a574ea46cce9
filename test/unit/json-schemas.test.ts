import { readFileSync } from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { jsonSchemas } from '../../daemon/json-schemas.ts';

describe('published JSON Schemas', () => {
  it('match the zod schemas that validate the files (run `npm run schemas` after a schema change)', () => {
    for (const [name, schema] of Object.entries(jsonSchemas())) {
      const published = JSON.parse(
        readFileSync(path.join(import.meta.dirname, '..', '..', 'schemas', name), 'utf8'),
      ) as unknown;
      expect(published, name).toEqual(JSON.parse(JSON.stringify(schema)));
    }
  });

  it('describe the job file fields users write', () => {
    const job = jsonSchemas()['job.schema.json'] as {
      properties: Record<string, unknown>;
      additionalProperties: boolean;
    };
    expect(Object.keys(job.properties)).toEqual(
      expect.arrayContaining(['type', 'command', 'params', 'priority', 'after', 'not_before']),
    );
    expect(job.additionalProperties).toBe(false);
  });
});
