import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

/** Lookup order: `--config DIR`, `$BATCHD_CONFIG`, `~/.config/batchd`, `/etc/batchd`. */
export function locateConfigDir(flag: string | undefined, env = process.env): string | undefined {
  if (flag !== undefined) return path.resolve(flag);
  if (env.BATCHD_CONFIG !== undefined && env.BATCHD_CONFIG !== '') return path.resolve(env.BATCHD_CONFIG);
  for (const candidate of [path.join(homedir(), '.config', 'batchd'), '/etc/batchd']) {
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}
