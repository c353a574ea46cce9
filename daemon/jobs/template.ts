import type { JobType } from '../config/schema.ts';
import type { ParamValue } from './spec.ts';

/** Parameters reach the job's process as environment variables with this prefix. */
export const PARAM_ENV_PREFIX = 'BATCHD_PARAM_';

export type CommandPlan =
  /** A plain command of words: run directly, no shell. */
  | { kind: 'argv'; argv: string[]; env: Record<string, string> }
  /** Shell code run by `sh -c`; values are referenced through the environment, never pasted in. */
  | { kind: 'shell'; script: string; env: Record<string, string> }
  /** A multi-line template, written to a file and executed. */
  | { kind: 'script'; script: string; interpreter: string | undefined; env: Record<string, string> };

/**
 * Substitute parameters into a job type's template so that no value can run code.
 *
 * `$name` and `${name}` are rewritten to a quoted reference to an environment variable holding the
 * value (`"${BATCHD_PARAM_name}"`), chosen for the quoting context the reference sits in. The shell
 * expands a variable's value exactly once and never parses it again, so `; rm -rf /`, `$(…)`,
 * backticks, quotes and newlines arrive at the program as one argument, verbatim. Parameters of type
 * Script are the exception by definition: their value is shell code (the built-in `command` type).
 */
export function planCommand(
  type: JobType,
  params: Record<string, ParamValue>,
  variables: Record<string, string>,
): CommandPlan {
  const values: Record<string, string> = { ...variables };
  for (const [k, v] of Object.entries(params)) values[k] = String(v);
  const codeParams = new Set(type.params.filter((p) => p.type === 'Script').map((p) => p.name));
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(values)) if (!codeParams.has(k)) env[PARAM_ENV_PREFIX + k] = v;

  const template = Array.isArray(type.template) ? type.template.join('\n') : type.template;
  const lines = template.replace(/\n+$/, '').split('\n');
  if (lines.length > 1) {
    const shebang = lines[0]?.startsWith('#!') === true ? lines[0].slice(2).trim() : undefined;
    const isShell = shebang === undefined || /(^|\/)(env\s+)?(sh|bash|dash|ksh|zsh)(\s|$)/.test(shebang);
    // A script for another interpreter is left as written: it reads BATCHD_PARAM_* itself.
    const script = isShell ? rewriteShell(template, values, codeParams) : template;
    return { kind: 'script', script: script.endsWith('\n') ? script : script + '\n', interpreter: shebang, env };
  }
  const script = rewriteShell(template, values, codeParams).trim();
  const argv = plainWords(script);
  if (argv !== undefined) return { kind: 'argv', argv, env };
  return { kind: 'shell', script, env };
}

/** Shell words that are builtins or keywords: they need a shell even in a plain command. */
const SHELL_ONLY = new Set(
  'exit cd export set unset source . eval exec readonly shift trap wait ulimit umask alias read return break continue times type hash getopts command local if then else elif fi for while until do done case esac function select {'.split(
    ' ',
  ),
);

/** `make -j8 test` → argv, when nothing in it needs a shell. */
function plainWords(script: string): string[] | undefined {
  if (!/^[A-Za-z0-9_@%+=:,./-]+( +[A-Za-z0-9_@%+=:,./-]+)*$/.test(script)) return undefined;
  const argv = script.split(/ +/);
  if (SHELL_ONLY.has(argv[0] ?? '') || (argv[0] ?? '').includes('=')) return undefined;
  return argv;
}

type Context = 'plain' | 'single' | 'double';

export function rewriteShell(template: string, values: Record<string, string>, codeParams: Set<string>): string {
  let out = '';
  let context: Context = 'plain';
  let i = 0;
  while (i < template.length) {
    const ch = template[i] ?? '';
    if (context === 'single') {
      if (ch === "'") context = 'plain';
      else if (ch === '$') {
        const ref = readRef(template, i);
        if (ref !== undefined && ref.name in values) {
          out += codeParams.has(ref.name) ? `'${values[ref.name] ?? ''}'` : `'"\${${PARAM_ENV_PREFIX}${ref.name}}"'`;
          i = ref.end;
          continue;
        }
      }
      out += ch;
      i += 1;
      continue;
    }
    if (ch === '\\') {
      out += template.slice(i, i + 2);
      i += 2;
      continue;
    }
    if (ch === "'" && context === 'plain') context = 'single';
    else if (ch === '"') context = context === 'double' ? 'plain' : 'double';
    else if (ch === '$') {
      const ref = readRef(template, i);
      if (ref !== undefined && ref.name in values) {
        if (codeParams.has(ref.name)) out += values[ref.name] ?? '';
        else out += context === 'double' ? `\${${PARAM_ENV_PREFIX}${ref.name}}` : `"\${${PARAM_ENV_PREFIX}${ref.name}}"`;
        i = ref.end;
        continue;
      }
    }
    out += ch;
    i += 1;
  }
  return out;
}

function readRef(text: string, at: number): { name: string; end: number } | undefined {
  const braced = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}/.exec(text.slice(at, at + 70));
  if (braced?.[1] !== undefined) return { name: braced[1], end: at + braced[0].length };
  const bare = /^\$([A-Za-z_][A-Za-z0-9_]*)/.exec(text.slice(at, at + 70));
  if (bare?.[1] !== undefined) return { name: bare[1], end: at + bare[0].length };
  return undefined;
}
