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
  write(text: string): void;
  /** Messages for people (progress, hints): stderr, so stdout stays parseable. */
  note(text: string): void;
}

export function makeOutput(options: { json: boolean; quiet: boolean; verbose: boolean }): Output {
  const tty = process.stdout.isTTY;
  const color = tty && process.env.NO_COLOR === undefined && process.env.TERM !== 'dumb';
  return {
    ...options,
    tty,
    color,
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

export function printTable(out: Output, head: string[], rows: Cell[][]): void {
  const text = rows.map((row) => row.map(cellText));
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

const STATUS_COLORS: Record<string, string> = { done: '32', failed: '31', cancelled: '33', running: '36' };

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
