import { randomFillSync } from 'node:crypto';

/**
 * Job ids sort by submission time and are unique across dispatchers and machines:
 * `20261121T093000.123Z-k3f9qa`, optionally followed by `-slug` from the dropped file's name.
 * The first eight characters are the submission date, which also names the shard of the
 * finished-job folders (`done/20261121/<id>`).
 */
const ID_PATTERN = /^\d{8}T\d{6}\.\d{3}Z-[a-z0-9]{6}(-[a-z0-9][a-z0-9-]{0,39})?$/;
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

let issuedMs = 0;
const issued = new Set<string>();

/** Random bytes drawn 4 KiB at a time instead of a call per id (4 µs each here, on every acceptance). */
const RANDOM = Buffer.alloc(4096);
let randomAt = RANDOM.length;

function randomPart(): string {
  if (randomAt + 6 > RANDOM.length) {
    randomFillSync(RANDOM);
    randomAt = 0;
  }
  let random = '';
  for (const end = randomAt + 6; randomAt < end; randomAt++)
    random += ALPHABET[(RANDOM[randomAt] as number) % ALPHABET.length];
  return random;
}

let lastMs = 0;
let counter = 0;

export function newJobId(slugSource?: string, now = new Date()): string {
  return idAt(now.getTime(), slugSuffix(slugSource));
}

/**
 * Ids for the jobs of one submission (a task's thousands), each as newJobId would make it at the
 * moment it is asked for: the slug is made once, the time stamp once per millisecond.
 */
export function jobIdMaker(slugSource?: string): () => string {
  const suffix = slugSuffix(slugSource);
  return () => idAt(Date.now(), suffix);
}

function slugSuffix(slugSource: string | undefined): string {
  const slug = slugSource === undefined ? '' : slugify(slugSource);
  return slug === '' ? '' : '-' + slug;
}

let stampMs = Number.NaN;
let stampText = '';

/** `20261121T093000.123Z` for a time in milliseconds (the last one kept: a task asks for thousands). */
function stampOf(ms: number): string {
  if (ms !== stampMs) {
    const iso = new Date(ms).toISOString(); // 2026-11-21T09:30:00.123Z
    stampText =
      iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 13) + iso.slice(14, 16) + iso.slice(17, 23) + 'Z';
    stampMs = ms;
  }
  return stampText;
}

function idAt(ms: number, suffix: string): string {
  const stamp = stampOf(ms);
  // Random across processes; never repeated within this process in the same millisecond.
  if (ms !== issuedMs) {
    issuedMs = ms;
    issued.clear();
  }
  let random: string;
  do random = randomPart();
  while (issued.has(random));
  issued.add(random);
  return `${stamp}-${random}${suffix}`;
}

export function slugify(text: string): string {
  return text
    .toLowerCase()
    .replace(/\.(ya?ml|json)$/, '')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/, '');
}

export function isJobId(value: string): boolean {
  return ID_PATTERN.test(value);
}

/** The shard a finished job lives in: its submission date. */
export function shardOf(id: string): string {
  return id.slice(0, 8);
}

/**
 * A number that orders jobs by submission within one process, and roughly across processes:
 * microseconds since the epoch, made strictly increasing here.
 */
export function nextOrder(nowMs = Date.now()): number {
  if (nowMs > lastMs) {
    lastMs = nowMs;
    counter = 0;
  } else {
    counter += 1;
    if (counter >= 1000) {
      lastMs += 1;
      counter = 0;
    }
  }
  return lastMs * 1000 + counter;
}

/**
 * The first of `count` consecutive order numbers, as `count` calls of nextOrder would give them
 * within one millisecond (the jobs of a task): the next call of nextOrder gives a larger one.
 */
export function reserveOrders(count: number, nowMs = Date.now()): number {
  const first = nextOrder(nowMs);
  const last = first + Math.max(count, 1) - 1;
  lastMs = Math.floor(last / 1000);
  counter = last % 1000;
  return first;
}
