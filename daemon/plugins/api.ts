/**
 * The whole surface a plugin may import from batchd (`batchd/plugin` for a package, or this file
 * by path for the plugins shipped in `plugins/`). The core owns these interfaces; plugins
 * implement them, and no core module imports a plugin.
 */
import type { z } from 'zod';

import type { BatchSystem } from '../hosts/batch-system.ts';
import type { HostProvider } from '../hosts/provider.ts';

export { z } from 'zod';
export { BatchdError } from '../errors.ts';
/** Seconds (`90`) or a duration (`90s`, `15m`, `1h30m`) as milliseconds, like every other setting. */
export { durationMs } from '../config/duration.ts';
export type {
  HostAddress,
  HostProvider,
  HostShell,
  OwnedHost,
  ProviderHost,
  ShellChannel,
  ShellExit,
} from '../hosts/provider.ts';
export type {
  BatchArray,
  BatchJob,
  BatchResources,
  BatchScript,
  BatchStatus,
  BatchSystem,
  OwnedBatchJob,
} from '../hosts/batch-system.ts';
export type { HookEvent, HookEventName } from '../config/hook-events.ts';
export type { CommandResult, CommandRunner } from '../executors/short-command.ts';
import type { CommandRunner } from '../executors/short-command.ts';
import type { HookEvent } from '../config/hook-events.ts';

/** The tag (label) names every provider puts on what it creates or starts. */
export const TAG = {
  /** The spool's identity: leftovers of another batchd on the same engine are not ours. */
  spool: 'batchd.spool',
  /** The batchd host the resource serves. */
  host: 'batchd.host',
  /** Present when batchd created the resource (and so may delete it). */
  created: 'batchd.created',
} as const;

export interface PluginLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface PluginContext {
  /** The controller's or hook's name in the configuration. */
  name: string;
  log: PluginLogger;
  /** Paths in configuration files are relative to the config folder. */
  resolve(p: string): string;
}

export interface ProviderContext extends PluginContext {
  /** Tags that select what this daemon's spool owns (`TAG.spool`); put them on everything. */
  tags: Readonly<Record<string, string>>;
}

/**
 * A host-provider plugin: the default export of `plugins/<name>/index.ts`. `config` validates the
 * controller file's own fields (everything but `driver`, `name` and `enable_start_stop`), `host`
 * the host file's block named after the controller or the driver.
 */
export interface ProviderPlugin<C = unknown> {
  readonly kind: 'provider';
  /** The `driver:` names it answers to (batchd's first). */
  readonly drivers: readonly string[];
  readonly config: z.ZodType<C>;
  readonly host?: z.ZodType;
  create(config: C, context: ProviderContext): HostProvider;
}

/** A lifecycle hook: told of every event it subscribed to, one at a time, in order. */
export interface Hook {
  handle(event: HookEvent, signal: AbortSignal): Promise<void>;
  close?(): Promise<void>;
}

/** A lifecycle-hook plugin (`plugins/hook-command`, `plugins/hook-webhook`). */
export interface HookPlugin<C = unknown> {
  readonly kind: 'hook';
  readonly drivers: readonly string[];
  readonly config: z.ZodType<C>;
  create(config: C, context: PluginContext): Hook;
}

export interface BatchSystemContext extends PluginContext {
  /** The spool's id (`TAG.spool`'s value): carried by every submitted job, so recovery adopts only ours. */
  spool: string;
  /**
   * Runs a short command (`sbatch`, `squeue`: argv, never a shell line) through the daemon's job
   * launcher, which starts it without forking the daemon; undefined where the daemon has none
   * (the plugin then spawns it itself).
   */
  run?: CommandRunner | undefined;
}

/**
 * A batch-system plugin (`plugins/slurm`): a host whose controller it serves hands its jobs to the
 * cluster's scheduler; nothing is started, stopped or reached over SSH.
 */
export interface BatchSystemPlugin<C = unknown> {
  readonly kind: 'batch-system';
  readonly drivers: readonly string[];
  readonly config: z.ZodType<C>;
  create(config: C, context: BatchSystemContext): BatchSystem;
}

export type Plugin = ProviderPlugin<never> | HookPlugin<never> | BatchSystemPlugin<never>;

/** Helps a plugin file keep its types: `export default defineProvider({...})`. */
export function defineProvider<C>(plugin: ProviderPlugin<C>): ProviderPlugin<C> {
  return plugin;
}

export function defineBatchSystem<C>(plugin: BatchSystemPlugin<C>): BatchSystemPlugin<C> {
  return plugin;
}

export function defineHook<C>(plugin: HookPlugin<C>): HookPlugin<C> {
  return plugin;
}
