import { readFileSync } from 'node:fs';

/**
 * The package's version, for `batch --version` and `batchd --version`. Read from package.json, found
 * from this file upwards: three folders up in the build (dist/daemon/cli/), two in the sources
 * (daemon/cli/). The build first: every `batch` start reads it, and a miss costs an exception.
 */
export function packageVersion(): string {
  for (const relative of ['../../../package.json', '../../package.json']) {
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
