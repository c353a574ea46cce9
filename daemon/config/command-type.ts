import type { JobType } from './schema.ts';

/**
 * A `jobtypes/command.yaml` replaces the built-in `command` type, whose one parameter is shell code
 * (Script), so that `command: make test` alone is a job. batchd's sample-configs have one
 * (`$command $args`, both String): batchd inserted every parameter into the template as written,
 * and left out a missing one. Read the same way, its String parameters are Script here (shell code,
 * inserted as written) and default to empty, so a `command:` job file runs its command whichever
 * `command` type is in force. Only a type named `command` whose template starts by running
 * `$command` as its program: there the parameter is a command line by design. Any other template
 * (`printf '%s' $command`, say) keeps its String quoting: a parameter never becomes shell code
 * unless the template already made it the program.
 */
export function adaptCommandType(type: JobType): { item: JobType; note?: string } {
  const strings = type.params.filter((p) => p.type === 'String');
  const runsCommand = typeof type.template === 'string' && /^\s*\$\{?command\b/.test(type.template);
  if (type.name !== 'command' || !runsCommand || !strings.some((p) => p.name === 'command'))
    return { item: type };
  const names = strings.map((p) => p.name).join(', ');
  return {
    item: {
      ...type,
      params: type.params.map((p) =>
        p.type === 'String' ? { ...p, type: 'Script' as const, default: p.default ?? '' } : p,
      ),
    },
    note:
      `replaces the built-in command type; its String parameters (${names}) are inserted as shell code, ` +
      'as batchd inserted them, and default to empty, so `command:` job files keep running their command',
  };
}
