/** At most this many distinct names are kept (a spool has a handful of queues, types and hosts). */
const KEPT = 10_000;

const names = new Map<string, string>();

/**
 * One string per distinct queue, type, host or owner name: each job's record read from disk brings
 * its own copies, and a deep queue keeps 100,000 records' worth in memory.
 */
export function interned(name: string): string {
  const kept = names.get(name);
  if (kept !== undefined) return kept;
  if (names.size < KEPT) names.set(name, name);
  return name;
}
