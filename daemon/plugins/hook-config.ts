import type { z } from 'zod';

import { formatProblems, loadText, locateIssues } from '../config/parse.ts';
import type { HookConfig } from '../config/schema.ts';
import { BatchdError, coerceError } from '../errors.ts';
import type { HookPlugin } from './api.ts';
import { HOOK_EVENTS, type HookEventName } from '../config/hook-events.ts';
import type { PluginRegistry } from './registry.ts';

/** A hook entry once its plugin has validated its own fields. */
export interface HookSpec {
  name: string;
  driver: string;
  plugin: HookPlugin<unknown>;
  /** The plugin's fields, as its `config` schema returned them. */
  settings: unknown;
  events: ReadonlySet<HookEventName>;
  /** Job and task events of other queues are not for this hook (a queue.yaml hook: its queue). */
  queues: ReadonlySet<string> | undefined;
  timeoutMs: number;
  /** The entry as written: an unchanged entry keeps its running hook (and its backlog) on reload. */
  fingerprint: string;
}

/** Where the entries come from: the file (for line numbers) and, for queue.yaml, its queue. */
export interface HookSource {
  file: string;
  text: string;
  queue?: string | undefined;
}

/** batchd's own fields of an entry; the plugin's schema sees the others. */
const OWN_FIELDS = new Set(['driver', 'name', 'events', 'queues', 'timeout']);

/** Load the plugins the entries name (each once); returns why each driver that failed did. */
export async function loadHookDrivers(
  registry: PluginRegistry,
  entries: readonly HookConfig[],
): Promise<Map<string, string>> {
  const failed = new Map<string, string>();
  const drivers = new Set(entries.map((e) => e.driver));
  await Promise.all(
    [...drivers].map((d) =>
      registry.load(d).catch((error: unknown) => failed.set(d, coerceError(error).message)),
    ),
  );
  return failed;
}

/**
 * Validate each entry's plugin fields with its plugin's schema. Every problem is reported with
 * file, line and field (`hooks.<n>.<field>`), as for any other configuration file.
 */
export function resolveHooks(
  registry: PluginRegistry,
  entries: readonly HookConfig[],
  source: HookSource,
  loadErrors: ReadonlyMap<string, string> = new Map(),
): HookSpec[] {
  const issues: z.core.$ZodIssue[] = [];
  const specs: HookSpec[] = [];
  entries.forEach((entry, index) => {
    const at = (path: PropertyKey[], message: string): void => {
      issues.push({ code: 'custom', path: ['hooks', index, ...path], message, input: undefined });
    };
    const plugin = registry.hook(entry.driver);
    if (plugin === undefined) {
      at(['driver'], driverProblem(registry, entry.driver, loadErrors));
      return;
    }
    if (source.queue !== undefined) {
      if (entry.queues !== undefined)
        at(['queues'], 'Not used in queue.yaml: a queue’s hooks see only its own events');
      const host = entry.events?.find((e) => e.startsWith('host:'));
      if (host !== undefined)
        at(['events'], `"${host}" is not a queue’s event: host events go to hooks in batchd.yaml`);
    }
    const own: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(entry)) if (!OWN_FIELDS.has(key)) own[key] = value;
    const parsed = plugin.config.safeParse(own);
    if (!parsed.success) {
      for (const issue of parsed.error.issues)
        issues.push({ ...issue, path: ['hooks', index, ...issue.path] });
      return;
    }
    const events =
      source.queue === undefined
        ? (entry.events ?? HOOK_EVENTS)
        : (entry.events ?? HOOK_EVENTS.filter((e) => !e.startsWith('host:')));
    const queues = source.queue === undefined ? entry.queues : [source.queue];
    specs.push({
      name: entry.name ?? `${source.queue === undefined ? '' : `${source.queue}:`}${entry.driver}#${index}`,
      driver: entry.driver,
      plugin,
      settings: parsed.data,
      events: new Set(events),
      queues: queues === undefined ? undefined : new Set(queues),
      timeoutMs: entry.timeout,
      fingerprint: JSON.stringify(entry),
    });
  });
  if (issues.length > 0) {
    const problems = locateIssues(source.text, issues, safeLoad(source));
    throw new BatchdError(
      'CONFIG_INVALID',
      formatProblems(source.file, problems),
      { file: source.file, line: problems[0]?.line, field: problems[0]?.field },
      { problems },
    );
  }
  return specs;
}

function driverProblem(
  registry: PluginRegistry,
  driver: string,
  loadErrors: ReadonlyMap<string, string>,
): string {
  if (registry.provider(driver) !== undefined) return `"${driver}" is a host provider, not a hook plugin`;
  return loadErrors.get(driver) ?? `No hook plugin loaded for driver "${driver}"`;
}

function safeLoad(source: HookSource): unknown {
  try {
    return loadText(source.text, source.file);
  } catch {
    return undefined;
  }
}
