import { posix } from 'node:path';

import type { BatchScript as SlurmScript } from '../../daemon/plugins/api.ts';
import { shellQuote } from './command.ts';
import { bodyText, type BodyRun, elementLines, type ElementWords, NO_ELEMENT, runOf } from './element.ts';

/**
 * The part of an array's script after its header, in a size that grows with the few values that
 * differ between its elements rather than with their whole scripts. Slurm sends the whole batch
 * script with every element it starts and each element's shell parses all of it, so a `case` of
 * N full branches costs N × N: here an array of 1,000 `true`s as such a `case` (950 KB) took 1.7 ×
 * as long as with one element's script (677 bytes), and 900 KB of comment lines after an `exit`
 * made a plain `true` 1.8 × slower.
 *
 * Each value of an element (its environment, files, folder, body) is the same in every element
 * (written once), its folder (that of its stdout) followed by a text common to all, the last part
 * of that folder (its key: the job's id), or a word of its own. The keys and the words of their
 * own go in one `set --`, `width` per element; element k shifts k × width of them away and reads
 * its own. Undefined when the elements do not run alike (another interpreter, other environment
 * names, a file one has and another has not): each then gets a branch of a `case`.
 */
export function compactArray(shell: string, scripts: readonly SlurmScript[]): string[] | undefined {
  const first = scripts[0];
  if (first === undefined) return undefined;
  const run = runOf(shell, first);
  const names = Object.keys(first.env ?? {});
  // The script's own variables are `batchd_…`: an environment variable of that name would change them.
  if (names.some((name) => name.startsWith('batchd_'))) return undefined;
  if (!scripts.every((script) => alike(shell, script, first, run, names))) return undefined;

  const dirs = scripts.map((s) => posix.dirname(s.stdout));
  const prefix = commonFolder(dirs);
  const keys = dirs.map((d) => d.slice(prefix.length));
  const columns: string[][] = [];
  let keyed = false;
  const word = (values: string[]): string => {
    const [one = '', ...rest] = values;
    if (rest.every((v) => v === one)) return shellQuote(one);
    if (values.every((v, k) => v === keys[k])) {
      keyed = true;
      return '"$batchd_key"';
    }
    const dir = dirs[0] ?? '';
    const suffix = one.startsWith(dir) ? one.slice(dir.length) : undefined;
    if (suffix !== undefined && values.every((v, k) => v === `${dirs[k] ?? ''}${suffix}`)) {
      keyed = true;
      return `"$batchd_dir"${suffix === '' ? '' : shellQuote(suffix)}`;
    }
    columns.push(values);
    return `"$batchd_${columns.length}"`;
  };
  const optional = (values: (string | undefined)[]): string | undefined =>
    values[0] === undefined ? undefined : word(values.map((v) => v ?? ''));
  const words: ElementWords = {
    env: names.map((name) => [name, word(scripts.map((s) => s.env?.[name] ?? ''))] as const),
    stdout: word(scripts.map((s) => s.stdout)),
    stderr: word(scripts.map((s) => s.stderr)),
    exitFile: optional(scripts.map((s) => s.exitFile)),
    workdir: optional(scripts.map((s) => s.workdir)),
    body: word(scripts.map((s) => bodyText(run, s.body))),
    command: Array.from({ length: run.words }, (_, at) => word(scripts.map((s) => s.command?.[at] ?? ''))),
  };

  const table = keyed ? [keys, ...columns] : columns;
  const width = table.length;
  const lines: string[] = [];
  if (width > 0) {
    lines.push('set -- \\');
    scripts.forEach((_, k) => {
      const row = table.map((column) => shellQuote(column[k] ?? '')).join(' ');
      lines.push(`  ${row}${k === scripts.length - 1 ? '' : ' \\'}`);
    });
  }
  // An index that is no number, or has a leading zero (octal in `$((…))`), names no element.
  lines.push(`case "\${SLURM_ARRAY_TASK_ID:-}" in ''|*[!0-9]*|0?*) ${NO_ELEMENT} ;; esac`);
  lines.push(`[ "$SLURM_ARRAY_TASK_ID" -lt ${scripts.length} ] || { ${NO_ELEMENT}; }`);
  if (width > 0) {
    lines.push(`shift $((SLURM_ARRAY_TASK_ID * ${width}))`);
    const own = keyed
      ? ['batchd_key', ...columns.map((_, c) => `batchd_${c + 1}`)]
      : columns.map((_, c) => `batchd_${c + 1}`);
    lines.push(own.map((name, at) => `${name}=\${${at + 1}}`).join(' '));
    if (keyed) lines.push(`batchd_dir=${prefix === '' ? '' : shellQuote(prefix)}"$batchd_key"`);
    lines.push('set --');
  }
  lines.push(...elementLines(words, run, true));
  return lines;
}

/** The script runs its body as `first` does and has the same environment names and files. */
function alike(
  shell: string,
  script: SlurmScript,
  first: SlurmScript,
  run: BodyRun,
  names: string[],
): boolean {
  const own = runOf(shell, script);
  if (
    own.how !== run.how ||
    own.words !== run.words ||
    own.program !== run.program ||
    own.args.join('\0') !== run.args.join('\0')
  )
    return false;
  const envNames = Object.keys(script.env ?? {});
  if (envNames.length !== names.length || envNames.some((n, i) => n !== names[i])) return false;
  return (
    (script.exitFile === undefined) === (first.exitFile === undefined) &&
    (script.workdir === undefined) === (first.workdir === undefined)
  );
}

/** The longest folder (ending in `/`) every path starts with; '' when none. */
function commonFolder(paths: readonly string[]): string {
  let common = paths[0] ?? '';
  for (const p of paths) {
    let n = 0;
    while (n < common.length && n < p.length && common[n] === p[n]) n++;
    common = common.slice(0, n);
  }
  return common.slice(0, common.lastIndexOf('/') + 1);
}
