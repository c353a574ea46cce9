import { TAG } from '../../daemon/plugins/api.ts';

/**
 * Linode tags are plain strings (3 to 50 characters), so batchd's key/value tags are written
 * `key=value` (`batchd.spool=3f9a…`, `batchd.host=render1`) and "created" as `batchd.created`.
 */
export function encodeTags(tags: Readonly<Record<string, string>>): string[] {
  return Object.entries(tags).map(([key, value]) => `${key}=${value}`);
}

export const CREATED_TAG = TAG.created;

export function tagValue(tags: readonly string[], key: string): string | undefined {
  const prefix = `${key}=`;
  return tags.find((t) => t.startsWith(prefix))?.slice(prefix.length);
}

/** Whether `tags` carry every one of `wanted` (the spool's). */
export function carries(tags: readonly string[], wanted: Readonly<Record<string, string>>): boolean {
  return encodeTags(wanted).every((t) => tags.includes(t));
}

/** `tags` without batchd's: what an instance batchd only booted had before. */
export function withoutOurs(tags: readonly string[]): string[] {
  const ours = Object.values(TAG);
  return tags.filter((t) => !ours.some((key) => t === key || t.startsWith(`${key}=`)));
}
