/**
 * batchd's rule for positional values (`batch enqueue -t render a.blend out.png`, or a submission's
 * `args: [...]`): they fill the job type's parameters in the order it declares them, and a trailing
 * Script parameter (the command type's `command`) takes the rest, joined with spaces as ssh does.
 * The server applies it (jobs/validate.ts); the CLI sends the values as they were typed.
 */
export interface PositionalTarget {
  name: string;
  params: readonly { name: string; type: string }[];
}

/**
 * The parameters the values fill and, when there are more values than parameters, why they do not
 * fit (the parameters are still filled from the first values, so that is the only problem reported).
 */
export function positionalParams(
  type: PositionalTarget,
  args: readonly string[],
): { params: Record<string, string>; error?: string } {
  const declared = type.params;
  const last = declared[declared.length - 1];
  const params: Record<string, string> = {};
  declared.forEach((param, i) => {
    if (i >= args.length) return;
    params[param.name] =
      param === last && param.type === 'Script' ? args.slice(i).join(' ') : (args[i] ?? '');
  });
  if (args.length > declared.length && last?.type !== 'Script') {
    const names = declared.length === 0 ? 'none' : declared.map((p) => p.name).join(', ');
    return {
      params,
      error: `type "${type.name}" takes ${declared.length} parameter(s) (${names}), got ${args.length} values`,
    };
  }
  return { params };
}
