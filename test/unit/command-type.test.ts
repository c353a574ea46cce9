import { describe, expect, it } from 'vitest';

import { adaptCommandType } from '../../daemon/config/command-type.ts';
import { jobTypeSchema } from '../../daemon/config/schema.ts';

const type = (template: string, name = 'command'): ReturnType<typeof jobTypeSchema.parse> =>
  jobTypeSchema.parse({
    name,
    template,
    params: [
      { name: 'command', type: 'String' },
      { name: 'args', type: 'String' },
    ],
  });

describe('a jobtypes/command.yaml that replaces the built-in command type', () => {
  it("batchd's sample ($command as the program) runs its command line: String read as Script", () => {
    const { item, note } = adaptCommandType(type('$command $args'));
    expect(item.params.map((p) => [p.name, p.type, p.default])).toEqual([
      ['command', 'Script', ''],
      ['args', 'Script', ''],
    ]);
    expect(note).toMatch(/replaces the built-in command type/);
  });

  it('a template that only prints $command keeps it a quoted String (no shell code from a parameter)', () => {
    const printed = type("printf '%s\\n' $command");
    expect(adaptCommandType(printed)).toEqual({ item: printed });
  });

  it('another type name is never adapted', () => {
    const other = type('$command $args', 'run');
    expect(adaptCommandType(other)).toEqual({ item: other });
  });
});
