import { readFileSync } from 'node:fs';

/**
 * The package's version, for `batch --version` and `batchd --version`. Read from package.json, found
 * from this file upwards: two folders up in the sources (daemon/cli/), three in the build (dist/daemon/cli/).
 */
export function packageVersion(): string {
  for (const relative of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as {
        name?: unknown;
        version?: unknown;
      };
      if (pkg.name === 'batchd' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // Not there: try the next candidate.
    }
  }
  return 'unknown';
}
