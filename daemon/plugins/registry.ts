import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { BatchdError, coerceError } from '../errors.ts';
import type { BatchSystemPlugin, HookPlugin, Plugin, ProviderPlugin } from './api.ts';
import { BUILTIN_PLUGINS } from '../config/builtin-drivers.ts';

/** `<repo>/plugins`: two levels up from this module, in the source tree and in dist/ alike. */
const PLUGINS_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'plugins');

/**
 * Finds and loads plugins by their `driver:` name: a built-in name, a path (relative to the config
 * folder), or a package name (resolved from the config folder, then from batchd's own). Each
 * module is loaded once and checked to be a plugin of the expected kind.
 */
export class PluginRegistry {
  readonly #configDir: string;
  readonly #loaded = new Map<string, Promise<Plugin>>();
  readonly #ready = new Map<string, Plugin>();

  constructor(configDir: string | undefined) {
    this.#configDir = configDir ?? process.cwd();
  }

  /** A plugin already loaded for `driver`, or undefined (see `load`). */
  get(driver: string): Plugin | undefined {
    return this.#ready.get(driver);
  }

  provider(driver: string): ProviderPlugin<unknown> | undefined {
    const plugin = this.get(driver);
    return plugin?.kind === 'provider' ? plugin : undefined;
  }

  hook(driver: string): HookPlugin<unknown> | undefined {
    const plugin = this.get(driver);
    return plugin?.kind === 'hook' ? plugin : undefined;
  }

  batchSystem(driver: string): BatchSystemPlugin<unknown> | undefined {
    const plugin = this.get(driver);
    return plugin?.kind === 'batch-system' ? plugin : undefined;
  }

  load(driver: string): Promise<Plugin> {
    let loading = this.#loaded.get(driver);
    if (loading === undefined) {
      loading = this.#import(driver).then((plugin) => {
        this.#ready.set(driver, plugin);
        return plugin;
      });
      // A failed load is tried again when a file names the driver again.
      loading.catch(() => this.#loaded.delete(driver));
      this.#loaded.set(driver, loading);
    }
    return loading;
  }

  async #import(driver: string): Promise<Plugin> {
    const file = this.#locate(driver);
    let module: { default?: unknown };
    try {
      module = (await import(pathToFileURL(file).href)) as { default?: unknown };
    } catch (error) {
      throw new BatchdError(
        'PLUGIN_INVALID',
        `plugin "${driver}" (${file}) failed to load: ${coerceError(error).message}`,
        { driver, file },
        { cause: error },
      );
    }
    const plugin = module.default;
    if (!isPlugin(plugin)) {
      throw new BatchdError(
        'PLUGIN_INVALID',
        `plugin "${driver}" (${file}): its default export is not a batchd plugin (expected {kind: "provider" | "hook" | "batch-system", drivers, config, create})`,
        { driver, file },
      );
    }
    return plugin;
  }

  #locate(driver: string): string {
    const builtin = BUILTIN_PLUGINS[driver];
    if (builtin !== undefined) {
      const dir = path.join(PLUGINS_ROOT, builtin);
      // dist/ holds the compiled .js; the source tree (tests) the .ts.
      const file = ['index.js', 'index.ts'].map((f) => path.join(dir, f)).find((f) => existsSync(f));
      if (file === undefined)
        throw new BatchdError('PLUGIN_INVALID', `plugin "${driver}": ${dir} has no index.js or index.ts`, {
          driver,
        });
      return file;
    }
    if (driver.startsWith('.') || path.isAbsolute(driver)) return path.resolve(this.#configDir, driver);
    for (const from of [path.join(this.#configDir, 'x'), fileURLToPath(import.meta.url)]) {
      try {
        return createRequire(from).resolve(driver);
      } catch {
        // next place
      }
    }
    throw new BatchdError(
      'PLUGIN_INVALID',
      `Unknown driver "${driver}": not one of ${Object.keys(BUILTIN_PLUGINS).join(', ')}, nor a path or an installed package`,
      { driver },
    );
  }
}

function isPlugin(value: unknown): value is Plugin {
  if (value === null || typeof value !== 'object') return false;
  const p = value as Record<string, unknown>;
  const config = p.config as { safeParse?: unknown } | undefined;
  return (
    (p.kind === 'provider' || p.kind === 'hook' || p.kind === 'batch-system') &&
    Array.isArray(p.drivers) &&
    typeof config?.safeParse === 'function' &&
    typeof p.create === 'function'
  );
}
