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
 * The program and arguments that run a plan, with no shell unless the plan is shell code. A
 * script plan runs from `scriptPath`, where the executor wrote it (here, or on a host).
 */
export function programOf(
  plan: CommandPlan,
  scriptPath: string | undefined,
): { file: string; args: string[] } {
  switch (plan.kind) {
    case 'argv':
      return { file: plan.argv[0] ?? 'true', args: plan.argv.slice(1) };
    case 'shell':
      return { file: '/bin/sh', args: ['-c', plan.script] };
    case 'script':
      if (scriptPath === undefined) throw new Error('a script job needs the path of its written script');
      return plan.interpreter === undefined
        ? { file: '/bin/sh', args: [scriptPath] }
        : { file: scriptPath, args: [] };
  }
}

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
    return {
      kind: 'script',
      script: script.endsWith('\n') ? script : script + '\n',
      interpreter: shebang,
      env,
    };
  }
  const script = rewriteShell(template, values, codeParams).trim();
  const argv = plainWords(script);
  if (argv !== undefined) return { kind: 'argv', argv, env };
  return { kind: 'shell', script, env };
}

/**
 * Shell words that are builtins or keywords: they need a shell even in a plain command. Those
 * that change the shell itself (bash's too) are here, so a plain command run as a batch script's
 * own words (plugins/slurm) cannot change the script around it.
 */
const SHELL_ONLY = new Set(
  [
    ': exit cd export set unset source . eval exec readonly shift trap wait ulimit umask alias unalias read return',
    'break continue times type hash getopts command local jobs fg bg fc if then else elif fi for while until do',
    'done case esac function select { declare typeset let shopt enable builtin mapfile readarray pushd popd',
    'dirs disown suspend logout history bind compgen complete caller help coproc',
  ]
    .join(' ')
    .split(' '),
);

/** `make -j8 test` → argv, when nothing in it needs a shell. */
function plainWords(script: string): string[] | undefined {
  if (!/^[A-Za-z0-9_@%+=:,./-]+( +[A-Za-z0-9_@%+=:,./-]+)*$/.test(script)) return undefined;
  const argv = script.split(/ +/);
  if (SHELL_ONLY.has(argv[0] ?? '') || (argv[0] ?? '').includes('=')) return undefined;
  return argv;
}

type Context = 'plain' | 'single' | 'double';

/** A command substitution, `$(…)` or backticks: quoting starts afresh inside it. */
interface Frame {
  outer: Context;
  close: ')' | '`';
  /** Open parentheses of the enclosing code, restored when the frame closes. */
  parens: number;
  /** `$((…))`: arithmetic, where `<<` is a shift, not a here-document. */
  arithmetic?: boolean;
}

interface HereDoc {
  delimiter: string;
  stripTabs: boolean;
  /** `<<'EOF'`: the body is not expanded, so nothing in it is substituted either. */
  quoted: boolean;
}

const HEREDOC = /^<<(-?)[ \t]*(?:'([^'\n]+)'|"([^"\n]+)"|\\?([A-Za-z_][A-Za-z0-9_.-]*))/;

/**
 * Rewrite `$name` references to parameters, following the shell's quoting as it reads: quotes,
 * backslashes, comments, command substitutions (fresh quoting inside) and here-documents (where
 * quotes are literal text).
 */
export function rewriteShell(
  template: string,
  values: Record<string, string>,
  codeParams: Set<string>,
): string {
  let out = '';
  let context: Context = 'plain';
  let parens = 0;
  const frames: Frame[] = [];
  const hereDocs: HereDoc[] = [];
  let i = 0;
  const reference = (ref: { name: string }, quoting: Context | 'heredoc'): string => {
    if (codeParams.has(ref.name)) return values[ref.name] ?? '';
    const variable = `\${${PARAM_ENV_PREFIX}${ref.name}}`;
    if (quoting === 'single') return `'"${variable}"'`;
    return quoting === 'plain' ? `"${variable}"` : variable;
  };
  while (i < template.length) {
    const ch = template[i] ?? '';
    if (ch === '\n' && context === 'plain' && hereDocs.length > 0) {
      out += ch;
      i += 1;
      for (const doc of hereDocs.splice(0)) {
        const body = readHereDoc(template, i, doc, (line) =>
          doc.quoted ? line : rewriteHereDocLine(line, values, reference),
        );
        out += body.text;
        i = body.end;
      }
      continue;
    }
    if (context === 'single') {
      if (ch === "'") context = 'plain';
      else if (ch === '$') {
        const ref = readRef(template, i);
        if (ref !== undefined && ref.name in values) {
          out += reference(ref, 'single');
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
    if (ch === '$') {
      if (template[i + 1] === '(') {
        frames.push({ outer: context, close: ')', parens, arithmetic: template[i + 2] === '(' });
        context = 'plain';
        parens = 0;
        out += '$(';
        i += 2;
        continue;
      }
      const ref = readRef(template, i);
      if (ref !== undefined && ref.name in values) {
        // Quotes are not allowed in arithmetic, and no word splitting happens there.
        out += reference(ref, frames.at(-1)?.arithmetic === true ? 'double' : context);
        i = ref.end;
        continue;
      }
    } else if (context === 'double') {
      if (ch === '"') context = 'plain';
      else if (ch === '`') {
        frames.push({ outer: 'double', close: '`', parens });
        context = 'plain';
        parens = 0;
      }
    } else if (ch === '#' && (i === 0 || /[\s;&|()<>]/.test(template[i - 1] ?? ''))) {
      const eol = template.indexOf('\n', i);
      const stop = eol < 0 ? template.length : eol;
      out += template.slice(i, stop);
      i = stop;
      continue;
    } else if (ch === "'") context = 'single';
    else if (ch === '"') context = 'double';
    else if (ch === '(') parens += 1;
    else if (ch === ')' || ch === '`') {
      const frame = frames.at(-1);
      if (ch === ')' && parens > 0) parens -= 1;
      else if (frame?.close === ch) {
        frames.pop();
        context = frame.outer;
        parens = frame.parens;
      } else if (ch === '`') {
        frames.push({ outer: 'plain', close: '`', parens });
        parens = 0;
      }
    } else if (ch === '<') {
      const shift = template.startsWith('<<<', i) || frames.some((f) => f.arithmetic === true);
      const op = shift ? undefined : HEREDOC.exec(template.slice(i, i + 200));
      if (op !== undefined && op !== null) {
        const delimiter = op[2] ?? op[3] ?? op[4] ?? '';
        hereDocs.push({
          delimiter,
          stripTabs: op[1] === '-',
          quoted: op[4] === undefined || op[0].includes('\\'),
        });
        out += op[0];
        i += op[0].length;
        continue;
      }
    }
    out += ch;
    i += 1;
  }
  return out;
}

/** A here-document's body and its delimiter line, from `at` (a line start). */
function readHereDoc(
  text: string,
  at: number,
  doc: HereDoc,
  rewrite: (line: string) => string,
): { text: string; end: number } {
  let out = '';
  let i = at;
  while (i < text.length) {
    const eol = text.indexOf('\n', i);
    const stop = eol < 0 ? text.length : eol + 1;
    const line = text.slice(i, stop);
    const bare = line.replace(/\n$/, '');
    i = stop;
    if ((doc.stripTabs ? bare.replace(/^\t+/, '') : bare) === doc.delimiter) {
      out += line;
      break;
    }
    out += rewrite(line);
  }
  return { text: out, end: i };
}

/** In a here-document quotes are text and values need no quoting: word splitting does not happen. */
function rewriteHereDocLine(
  line: string,
  values: Record<string, string>,
  reference: (ref: { name: string }, quoting: 'heredoc') => string,
): string {
  let out = '';
  let i = 0;
  while (i < line.length) {
    const ch = line[i] ?? '';
    if (ch === '\\') {
      out += line.slice(i, i + 2);
      i += 2;
      continue;
    }
    const ref = ch === '$' ? readRef(line, i) : undefined;
    if (ref !== undefined && ref.name in values) {
      out += reference(ref, 'heredoc');
      i = ref.end;
      continue;
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
