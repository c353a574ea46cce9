/**
 * One shell word that stands for `value` exactly: single quotes, with each `'` written as `'\''`.
 * Inside single quotes a POSIX shell interprets nothing, so `$(…)`, backticks, `;`, newlines and
 * leading dashes (the word is an argument of `export`, never a command) stay text. Every command
 * line batchd builds for a shell (on a host, in a batch script, in the launcher) quotes with it.
 */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}
