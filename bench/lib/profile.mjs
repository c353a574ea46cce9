// Where the daemon's CPU time goes, from a V8 .cpuprofile (node --cpu-prof): self time by
// function and by file, as shares of the time the main thread was busy.
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { REPO } from './batchd.mjs';

const IDLE = new Set(['(idle)', '(program)']);

export function summarizeProfile(file, top = 20) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const byFunction = new Map();
  const byFile = new Map();
  let busyUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const frame = nodes.get(id)?.callFrame;
    if (frame === undefined) continue;
    const name = frame.functionName || '(anonymous)';
    if (IDLE.has(name)) {
      idleUs += us;
      continue;
    }
    busyUs += us;
    const where = shortUrl(frame.url);
    const fnKey = `${name} ${where}${frame.url ? `:${frame.lineNumber + 1}` : ''}`;
    byFunction.set(fnKey, (byFunction.get(fnKey) ?? 0) + us);
    byFile.set(where, (byFile.get(where) ?? 0) + us);
  }
  const rank = (map) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: Math.round(us / 1000), share: Number((us / busyUs).toFixed(3)) }));
  return {
    file: path.basename(file),
    busyMs: Math.round(busyUs / 1000),
    idleMs: Math.round(idleUs / 1000),
    functions: rank(byFunction),
    files: rank(byFile),
  };
}

function shortUrl(url) {
  if (!url) return '(native)';
  const p = url.replace(/^file:\/\//, '');
  return p.startsWith(REPO) ? path.relative(REPO, p) : p;
}
