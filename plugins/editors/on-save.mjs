#!/usr/bin/env node
// What an editor runs when a file is saved: finds the project's `.batchd-on-save.yaml` (in the
// file's folder or above), and for the first rule whose pattern matches the file, submits a job
// with the file as a parameter: a job file dropped into a spool folder (written, then renamed in),
// or `batch enqueue` through the daemon's API. Prints `queued <id>` (or `dropped <file>`), and with
// --wait, `<id> <status>` once the job ended. Prints nothing when no rule matches. Never prompts.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { parse } from 'yaml';

export const CONFIG_FILE = '.batchd-on-save.yaml';
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BATCH = path.join(REPO, 'dist', 'daemon', 'cli', 'main.js');

/** The nearest config file at or above `dir`. */
export function findConfig(dir) {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const file = path.join(d, CONFIG_FILE);
    if (existsSync(file)) return file;
    if (path.dirname(d) === d) return undefined;
  }
}

/** `*` and `?` within a path segment, `**` across segments; a pattern without `/` matches the base name. */
export function globToRegExp(pattern) {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*' && pattern[i + 1] === '*') {
      re += pattern[i + 2] === '/' ? '(?:.*/)?' : '.*';
      i += pattern[i + 2] === '/' ? 2 : 1;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** The job for a saved file, or undefined when no rule matches. */
export function jobFor(configFile, savedFile) {
  const config = parse(readFileSync(configFile, 'utf8')) ?? {};
  const root = path.dirname(configFile);
  const rel = path.relative(root, path.resolve(savedFile)).split(path.sep).join('/');
  if (rel.startsWith('../')) return undefined;
  for (const rule of config.rules ?? []) {
    const pattern = String(rule.match ?? '');
    const target = pattern.includes('/') ? rel : path.posix.basename(rel);
    if (!globToRegExp(pattern).test(target)) continue;
    const params = { ...(rule.params ?? {}), [rule.param ?? 'file']: path.resolve(savedFile) };
    const job = { ...(rule.type === undefined ? {} : { type: rule.type }), params, notes: `saved ${rel}` };
    const spool = rule.spool ?? config.spool;
    return {
      job,
      queue: rule.queue ?? config.queue ?? 'default',
      spool: spool === undefined ? undefined : path.resolve(root, spool),
      name: path.posix.basename(rel),
    };
  }
  return undefined;
}

function slugOf(name) {
  return `save-${name.replace(/[^A-Za-z0-9_-]+/g, '-').slice(0, 40)}-${Date.now().toString(36)}`;
}

/** Drop the job into `<spool>/<queue>/incoming/` (Maildir style: a dotfile, then a rename). */
function drop(plan) {
  const incoming = path.join(plan.spool, plan.queue, 'incoming');
  const slug = slugOf(plan.name);
  const temp = path.join(incoming, `.${slug}.tmp`);
  writeFileSync(temp, `${JSON.stringify(plan.job, null, 1)}\n`);
  renameSync(temp, path.join(incoming, `${slug}.json`));
  return slug;
}

/** The job's id and state folder, once the daemon has taken the drop. */
function findDropped(plan, slug) {
  const queue = path.join(plan.spool, plan.queue);
  for (const state of ['queued', 'running', 'done', 'failed', 'cancelled']) {
    const folder = path.join(queue, state);
    let entries;
    try {
      entries = readdirSync(folder);
    } catch {
      continue;
    }
    // Finished jobs are sharded by date: one level deeper.
    const ids = ['done', 'failed', 'cancelled'].includes(state)
      ? entries.flatMap((day) => {
          try {
            return readdirSync(path.join(folder, day));
          } catch {
            return [];
          }
        })
      : entries;
    const id = ids.find((e) => e.endsWith(`-${slug}`));
    if (id !== undefined) return { id, state };
  }
  return undefined;
}

function batch(args, input) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BATCH, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => resolve({ code, out, err }));
    child.stdin.end(input ?? '');
  });
}

async function main(argv) {
  const wait = argv.includes('--wait');
  const file = argv.find((a) => !a.startsWith('--'));
  if (file === undefined) {
    process.stderr.write('usage: on-save.mjs [--wait] FILE\n');
    return 2;
  }
  const config = findConfig(path.dirname(path.resolve(file)));
  if (config === undefined) return 0;
  const plan = jobFor(config, file);
  if (plan === undefined) return 0;
  if (plan.spool !== undefined) {
    const slug = drop(plan);
    if (!wait) {
      process.stdout.write(`dropped ${slug}\n`);
      return 0;
    }
    let shown = false;
    for (;;) {
      const found = findDropped(plan, slug);
      if (found !== undefined && !shown) {
        process.stdout.write(`queued ${found.id}\n`);
        shown = true;
      }
      if (found !== undefined && ['done', 'failed', 'cancelled'].includes(found.state)) {
        process.stdout.write(`${found.id} ${found.state}\n`);
        return found.state === 'done' ? 0 : 1;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const sent = await batch(['enqueue', '-q', plan.queue, '-f', '-'], JSON.stringify(plan.job));
  if (sent.code !== 0) {
    process.stderr.write(sent.err);
    return sent.code ?? 1;
  }
  const id = sent.out.trim().split('\n')[0];
  process.stdout.write(`queued ${id}\n`);
  if (!wait) return 0;
  await batch(['wait', id]);
  const shown = await batch(['job', id, '--json']);
  const status = shown.code === 0 ? JSON.parse(shown.out).status : 'unknown';
  process.stdout.write(`${id} ${status}\n`);
  return status === 'done' ? 0 : 1;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error) => {
      process.stderr.write(`batchd on-save: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
