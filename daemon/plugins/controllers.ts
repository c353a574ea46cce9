import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { z } from 'zod';

import { DEFAULTS } from '../config/defaults.ts';
import { loadText } from '../config/parse.ts';
import { name } from '../config/schema.ts';
import type { CommandRunner } from '../executors/short-command.ts';
import type { ConfigStore } from '../config/store.ts';
import { BatchdError, coerceError } from '../errors.ts';
import type { EventBus } from '../events.ts';
import type { BatchSystem } from '../hosts/batch-system.ts';
import type { ProviderSource } from '../hosts/layer.ts';
import type { HostProvider } from '../hosts/provider.ts';
import type { HostConfig } from '../hosts/schema.ts';
import type { Logger } from '../log.ts';
import { type ProviderPlugin, TAG } from './api.ts';
import type { PluginRegistry } from './registry.ts';

export const CONTROLLERS_FOLDER = 'controllers';

/** `etc/controllers/<name>.yaml` once validated: batchd's fields, and the plugin's own, parsed. */
export interface ControllerConfig {
  name: string;
  driver: string;
  /** batchd's switch: false leaves the hosts as they are (never started or stopped). */
  enable_start_stop: boolean;
  settings: unknown;
}

const OWN_FIELDS = new Set(['name', 'driver', 'enable_start_stop']);

interface Instance {
  config: ControllerConfig;
  provider: HostProvider;
}

/**
 * The controllers of `etc/controllers/`: each names a provider plugin by `driver:` and carries
 * its settings, validated by the plugin's schema with file, line and field like every other file.
 * A provider is created once per version of its file and closed when the file changes.
 */
export class Controllers implements ProviderSource {
  readonly #config: ConfigStore;
  readonly #registry: PluginRegistry;
  readonly #log: Logger;
  readonly tags: Readonly<Record<string, string>>;
  readonly #instances = new Map<string, Instance>();
  readonly #batchSystems = new Map<string, { config: ControllerConfig; system: BatchSystem }>();

  readonly #run: CommandRunner | undefined;

  constructor(
    config: ConfigStore,
    registry: PluginRegistry,
    events: EventBus,
    log: Logger,
    tags: Readonly<Record<string, string>>,
    /** Batch systems' short commands, through the daemon's job launcher. */
    run?: CommandRunner,
  ) {
    this.#config = config;
    this.#registry = registry;
    this.#log = log;
    this.tags = tags;
    this.#run = run;
    events.on('config:invalid', ({ file }) => this.#retryAfterLoad(file));
  }

  /** Load the plugins the controller files name, then read the files (the schema needs them). */
  async start(): Promise<void> {
    const drivers = new Set(this.#files().map((f) => driverOf(f)));
    drivers.delete(undefined);
    await Promise.all(
      [...drivers].map((driver) =>
        this.#registry.load(driver as string).catch((error: unknown) => {
          this.#log.error({ driver, err: coerceError(error) }, `plugin for driver "${driver}" not loaded`);
        }),
      ),
    );
    this.#config.register({ folder: CONTROLLERS_FOLDER, schema: this.#schema() });
  }

  get(controller: string): ControllerConfig | undefined {
    return this.#config.get<ControllerConfig>(CONTROLLERS_FOLDER, controller);
  }

  list(): ControllerConfig[] {
    return this.#config.list<ControllerConfig>(CONTROLLERS_FOLDER);
  }

  plugin(controller: string): ProviderPlugin<unknown> | undefined {
    const config = this.get(controller);
    return config === undefined ? undefined : this.#registry.provider(config.driver);
  }

  /** The provider for a controller, as its file says now (undefined: no such file or plugin). */
  provider(controller: string): HostProvider | undefined {
    const config = this.get(controller);
    const existing = this.#instances.get(controller);
    if (existing !== undefined && existing.config === config) return existing.provider;
    if (existing !== undefined) {
      this.#instances.delete(controller);
      this.#close(controller, existing.provider);
    }
    if (config === undefined) return undefined;
    const plugin = this.#registry.provider(config.driver);
    if (plugin === undefined) return undefined;
    const made = plugin.create(config.settings, {
      name: controller,
      log: this.#log.child({ controller, driver: config.driver }),
      resolve: (p) => this.#config.resolve(p),
      tags: this.tags,
    });
    const provider = config.enable_start_stop ? made : withoutStartStop(made);
    this.#instances.set(controller, { config, provider });
    return provider;
  }

  /**
   * The batch system (Slurm) of a controller whose plugin is one, as its file says now; undefined
   * for a provider's controller, a missing file or plugin. Made once per version of the file.
   */
  batchSystem(controller: string): BatchSystem | undefined {
    const config = this.get(controller);
    const existing = this.#batchSystems.get(controller);
    if (existing !== undefined && existing.config === config) return existing.system;
    if (existing !== undefined) {
      this.#batchSystems.delete(controller);
      existing.system.close?.().catch((error: unknown) => {
        this.#log.warn({ controller, err: coerceError(error) }, 'closing a batch system failed');
      });
    }
    if (config === undefined) return undefined;
    const plugin = this.#registry.batchSystem(config.driver);
    if (plugin === undefined) return undefined;
    const system = plugin.create(config.settings, {
      name: controller,
      log: this.#log.child({ controller, driver: config.driver }),
      resolve: (p) => this.#config.resolve(p),
      spool: this.tags[TAG.spool] ?? '',
      run: this.#run,
    });
    this.#batchSystems.set(controller, { config, system });
    return system;
  }

  /**
   * The host file's block for its controller (named after the controller, else its driver),
   * validated by the plugin's `host` schema; a bad block fails the host's jobs with file and field.
   */
  settings(host: HostConfig): unknown {
    const config = this.get(host.controller);
    if (config === undefined) return undefined;
    const fields = host as unknown as Record<string, unknown>;
    const block = fields[host.controller] !== undefined ? host.controller : config.driver;
    const schema = this.#registry.provider(config.driver)?.host;
    if (schema === undefined) return fields[block];
    const parsed = schema.safeParse(fields[block] ?? {});
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0];
    const field = [block, ...(issue?.path ?? []).map(String)].join('.');
    const file = this.#config.resolve(`hosts/${host.name}.yaml`);
    throw new BatchdError('CONFIG_INVALID', `${file}: field ${field}: ${issue?.message ?? 'invalid'}`, {
      file,
      field,
      host: host.name,
    });
  }

  /** Every provider in use, with its controller's name (for reaping). */
  providers(): { controller: string; provider: HostProvider }[] {
    return this.list().flatMap((c) => {
      const provider = this.provider(c.name);
      return provider === undefined ? [] : [{ controller: c.name, provider }];
    });
  }

  async close(): Promise<void> {
    const instances = [...this.#instances.entries()];
    this.#instances.clear();
    await Promise.allSettled(instances.map(([, i]) => i.provider.close?.() ?? Promise.resolve()));
    const systems = [...this.#batchSystems.values()];
    this.#batchSystems.clear();
    await Promise.allSettled(systems.map((b) => b.system.close?.() ?? Promise.resolve()));
  }

  #close(controller: string, provider: HostProvider): void {
    provider.close?.().catch((error: unknown) => {
      this.#log.warn({ controller, err: coerceError(error) }, 'closing a provider failed');
    });
  }

  #schema(): z.ZodType<ControllerConfig> {
    return z
      .looseObject({
        name,
        driver: z
          .string()
          .min(1, 'Expected the name of a provider plugin, e.g. docker, libvirt, awsec2, linode, slurm'),
        enable_start_stop: z.boolean().default(DEFAULTS.controller.enable_start_stop),
      })
      .transform((raw, ctx) => {
        const plugin = this.#registry.provider(raw.driver) ?? this.#registry.batchSystem(raw.driver);
        if (plugin === undefined) {
          const hook = this.#registry.hook(raw.driver) !== undefined;
          ctx.addIssue({
            code: 'custom',
            path: ['driver'],
            message: hook
              ? `"${raw.driver}" is a hook plugin, not a host provider`
              : `No provider plugin loaded for driver "${raw.driver}" (see the log for why)`,
          });
          return z.NEVER;
        }
        const own: Record<string, unknown> = {};
        for (const [key, value] of Object.entries(raw)) if (!OWN_FIELDS.has(key)) own[key] = value;
        const parsed = plugin.config.safeParse(own);
        if (!parsed.success) {
          for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, code: 'custom' });
          return z.NEVER;
        }
        return {
          name: raw.name,
          driver: raw.driver,
          enable_start_stop: raw.enable_start_stop,
          settings: parsed.data,
        };
      });
  }

  #files(): string[] {
    if (this.#config.dir === undefined) return [];
    const dir = path.join(this.#config.dir, CONTROLLERS_FOLDER);
    try {
      return listFiles(dir).map((f) => path.join(dir, f));
    } catch {
      return [];
    }
  }

  /** A file that names a driver not loaded yet (added while running): load it, read the file again. */
  #retryAfterLoad(file: string): void {
    if (path.basename(path.dirname(file)) !== CONTROLLERS_FOLDER) return;
    const driver = driverOf(file);
    if (driver === undefined || this.#registry.get(driver) !== undefined) return;
    this.#registry.load(driver).then(
      () => this.#config.reloadFile(file),
      (error: unknown) =>
        this.#log.error(
          { file, driver, err: coerceError(error) },
          `plugin for driver "${driver}" not loaded`,
        ),
    );
  }
}

/** batchd's `enable_start_stop: false`: the hosts are used as they are, never started, stopped or reaped. */
function withoutStartStop(made: HostProvider): HostProvider {
  // Methods are called on the provider itself: a plugin's class keeps its private fields.
  const shell = made.shell;
  return {
    name: made.name,
    ...(shell === undefined ? {} : { shell }),
    ...(made.locate === undefined ? {} : { locate: (host, signal) => made.locate!(host, signal) }),
    ...(made.owned === undefined ? {} : { owned: (signal) => made.owned!(signal) }),
    ...(made.close === undefined ? {} : { close: () => made.close!() }),
  };
}

function listFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f) && !f.startsWith('.'));
}

/** The `driver:` a controller file names, read leniently (the schema reports the rest). */
function driverOf(file: string): string | undefined {
  try {
    const data = loadText(readFileSync(file, 'utf8'), file) as { driver?: unknown } | null;
    return typeof data?.driver === 'string' && data.driver !== '' ? data.driver : undefined;
  } catch {
    return undefined;
  }
}
