import { createRequire } from 'node:module';

import type TableType from 'cli-table3';

/** Loaded only for a terminal: piped output, the common case in scripts, never needs it. */
const loadTable = (): typeof TableType => createRequire(import.meta.url)('cli-table3') as typeof TableType;

/** How results are shown: JSON for scripts, a boxed table on a terminal, aligned text in a pipe. */
export interface Output {
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  /** stdout is a terminal. */
  tty: boolean;
  color: boolean;
  /** The columns a table may take (the terminal's, or $COLUMNS); undefined: no limit (a pipe, --wide). */
  width: number | undefined;
  write(text: string): void;
  /** Messages for people (progress, hints): stderr, so stdout stays parseable. */
  note(text: string): void;
}

export function makeOutput(options: {
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  wide?: boolean;
}): Output {
  const tty = process.stdout.isTTY;
  const color = tty && process.env.NO_COLOR === undefined && process.env.TERM !== 'dumb';
  return {
    json: options.json,
    quiet: options.quiet,
    verbose: options.verbose,
    tty,
    color,
    width: options.wide === true ? undefined : tableWidth(tty),
    write: (text) => void process.stdout.write(text.endsWith('\n') ? text : text + '\n'),
    note: (text) => {
      if (!options.quiet) process.stderr.write(text.endsWith('\n') ? text : text + '\n');
    },
  };
}

export function printJson(out: Output, value: unknown): void {
  out.write(JSON.stringify(value, null, 2));
}

export type Cell = string | number | boolean | null | undefined;

/** $COLUMNS wins (set by the user, or exported by the shell); else a terminal's own width. */
function tableWidth(tty: boolean): number | undefined {
  const columns = Number(process.env.COLUMNS);
  if (Number.isInteger(columns) && columns > 0) return columns;
  return tty ? process.stdout.columns : undefined;
}

export function printTable(out: Output, fullHead: string[], rows: Cell[][]): void {
  const [head = fullHead, ...text] = fitToWidth(
    [fullHead, ...rows.map((row) => row.map(cellText))],
    out.width,
    // A boxed cell takes its text, a space on each side and a border; a plain one two spaces.
    out.tty ? { perColumn: 3, fixed: 1 } : { perColumn: 2, fixed: -2 },
  );
  if (out.tty) {
    const Table = loadTable();
    const table = new Table({
      head,
      style: { head: out.color ? ['bold'] : [], border: [] },
      wordWrap: false,
    });
    table.push(...text);
    out.write(table.toString());
    return;
  }
  out.write(alignColumns([head.map((h) => h.toUpperCase()), ...text]));
}

/**
 * Columns of free text, which may be cut to fit the terminal. Ids, names, states and numbers are
 * never cut: a cut id could not be given back to another command.
 */
const FREE_TEXT = new Set([
  'title',
  'name / notes',
  'notes',
  'params',
  'reason',
  'error',
  'result',
  'allowed',
  'default',
]);

/**
 * Shorten the widest free-text columns (cells cut with `…`) until the table fits `width`; a column
 * keeps at least 6 characters, and a table too wide without its free text is left as it is.
 */
export function fitToWidth(
  rows: string[][],
  width: number | undefined,
  border: { perColumn: number; fixed: number },
): string[][] {
  if (width === undefined || rows.length === 0) return rows;
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, visibleLength(cell))));
  const total = (): number =>
    widths.reduce((sum, w) => sum + w, 0) + widths.length * border.perColumn + border.fixed;
  const MIN = 6;
  const cuttable = (rows[0] ?? []).map((header) => FREE_TEXT.has(header.toLowerCase()));
  while (total() > width) {
    const candidates = widths.map((w, i) => (cuttable[i] === true ? w : 0));
    const widest = candidates.indexOf(Math.max(...candidates));
    const current = candidates[widest] ?? 0;
    if (current <= MIN) break;
    // Down to the next widest at most, so the cut is shared among the wide columns.
    const next = Math.max(0, ...candidates.filter((_, i) => i !== widest));
    const target = Math.max(MIN, next, current - (total() - width));
    widths[widest] = target < current ? target : current - 1;
  }
  return rows.map((row) => row.map((cell, i) => truncate(cell, widths[i] ?? cell.length)));
}

function truncate(cell: string, width: number): string {
  if (visibleLength(cell) <= width) return cell;
  return `${cell.replace(ANSI, '').slice(0, width - 1)}…`;
}

/** `docker ps`-style plain text: columns padded to their widest cell, two spaces apart. */
export function alignColumns(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, visibleLength(cell))));
  return rows
    .map((row) =>
      row
        .map((cell, i) =>
          i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - visibleLength(cell)),
        )
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** `key: value` lines with the values aligned. */
export function printFields(out: Output, fields: [string, Cell][]): void {
  const shown = fields.filter(([, v]) => v !== undefined && v !== null && v !== '');
  const width = Math.max(0, ...shown.map(([k]) => k.length));
  out.write(shown.map(([k, v]) => `${(k + ':').padEnd(width + 1)} ${cellText(v)}`).join('\n'));
}

function cellText(cell: Cell): string {
  if (cell === null || cell === undefined) return '';
  return String(cell).replace(/\s*\n\s*/g, ' ⏎ ');
}

// eslint-disable-next-line no-control-regex -- ANSI colour codes start with ESC
const ANSI = /\u001b\[[0-9;]*m/g;

function visibleLength(text: string): number {
  return text.replace(ANSI, '').length;
}

const STATUS_COLORS: Record<string, string> = {
  done: '32',
  failed: '31',
  cancelled: '33',
  running: '36',
  paused: '35',
};

/** A job's status as people read it: a running job that is paused shows as paused. */
export function jobStatus(job: { status: string; paused_at?: string | undefined }): string {
  return job.status === 'running' && job.paused_at !== undefined ? 'paused' : job.status;
}

export function paintStatus(out: Output, status: string): string {
  const code = STATUS_COLORS[status];
  return out.color && code !== undefined ? `\u001b[${code}m${status}\u001b[0m` : status;
}

/** `2026-11-21T09:30:00.123Z` → `2026-11-21 10:30:00` in local time: what people read. */
export function shortTime(iso: string | null | undefined): string {
  if (iso === null || iso === undefined) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

export function formatParams(params: Record<string, unknown> | undefined): string {
  if (params === undefined) return '';
  return Object.entries(params)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
}

/** A one-line counter on stderr, redrawn in place; only on a terminal (never into a pipe or a log). */
export interface Progress {
  show(text: string): void;
  /** Clear the line before the final output. */
  end(): void;
}

export function makeProgress(out: Output, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (out.quiet || stream.isTTY !== true) return { show: () => undefined, end: () => undefined };
  let shown = false;
  return {
    show: (text) => {
      stream.write(`\r\u001b[K${text}`);
      shown = true;
    },
    end: () => {
      if (shown) stream.write('\r\u001b[K');
      shown = false;
    },
  };
}
