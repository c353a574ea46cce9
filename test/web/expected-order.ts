/** A sort column's value of a job, as the job list documents it (null: the job has none). */
export type SortValue<J> = (job: J) => string | number | null;

/**
 * The job list's documented order: by value (jobs without one last, either way), then by id, all
 * reversed by a leading `-`.
 */
export function expectedOrder<J extends { id: string }>(
  jobs: readonly J[],
  sort: string,
  values: Record<string, SortValue<J>>,
): string[] {
  const desc = sort.startsWith('-');
  const value = values[desc ? sort.slice(1) : sort];
  if (value === undefined) throw new Error(`no value for sort ${sort}`);
  const sign = desc ? -1 : 1;
  return [...jobs]
    .sort((a, b) => {
      const [va, vb] = [value(a), value(b)];
      if (va !== vb) {
        if (va === null) return 1;
        if (vb === null) return -1;
        return (va < vb ? -1 : 1) * sign;
      }
      return (a.id < b.id ? -1 : 1) * sign;
    })
    .map((j) => j.id);
}
