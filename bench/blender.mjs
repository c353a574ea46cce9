#!/usr/bin/env node
// The Blender add-on's Submit, from the operator call to the task accepted, beside the same task
// POSTed with curl, in one run. Starts its own daemon from dist/ (run `npm run build` first) with
// the queue paused, so nothing renders; stops it by PID at the end.
//
//   node bench/blender.mjs [--rounds 5]
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { DAEMON_MAIN } from './lib/batchd.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROUNDS = Number(process.argv[process.argv.indexOf('--rounds') + 1] ?? 5) || 5;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const root = mkdtempSync(path.join(os.tmpdir(), 'batchd-bench-blender-'));
const etc = path.join(root, 'etc');
const spool = path.join(root, 'spool');
mkdirSync(path.join(etc, 'jobtypes'), { recursive: true });
mkdirSync(path.join(spool, 'default'), { recursive: true });
writeFileSync(path.join(spool, 'default', 'queue.yaml'), 'enabled: false\n');
writeFileSync(
  path.join(etc, 'batchd.yaml'),
  'manager: { enabled: true, host: 127.0.0.1, port: 0 }\nlogging: { level: warn, format: json }\n',
);
writeFileSync(
  path.join(etc, 'jobtypes', 'blender.yaml'),
  readFileSync(path.join(ROOT, 'etc', 'jobtypes', 'blender.yaml')),
);
const urlFile = path.join(root, 'api-url');
const daemon = spawn(
  process.execPath,
  [DAEMON_MAIN, '--config', etc, '--spool', spool, '--api-url-file', urlFile],
  {
    stdio: 'ignore',
  },
);
try {
  while (!existsSync(urlFile)) await sleep(50);
  const url = readFileSync(urlFile, 'utf8').trim();
  const work = path.join(root, 'blender');
  mkdirSync(path.join(work, 'scripts'), { recursive: true });
  const addon = path.join(ROOT, 'plugins', 'blender');
  const script = path.join(work, 'submit.py');
  writeFileSync(
    script,
    `import bpy, addon_utils, json, os, sys, time
sys.path.insert(0, ${JSON.stringify(addon)})
import batchd_render
addon_utils.enable("batchd_render", default_set=True)
prefs = bpy.context.preferences.addons["batchd_render"].preferences
prefs.server_url = ${JSON.stringify(url)}
scene = bpy.context.scene
scene.frame_start, scene.frame_end = 1, 3
scene.render.filepath = os.path.join(${JSON.stringify(work)}, "frames", "frame-####")
bpy.ops.wm.save_as_mainfile(filepath=os.path.join(${JSON.stringify(work)}, "shot.blend"))
times = []
for i in range(${ROUNDS}):
    t = time.perf_counter()
    bpy.ops.batchd.submit()
    times.append((time.perf_counter() - t) * 1000)
print("TIMES " + json.dumps(times))
`,
  );
  const output = execFileSync('blender', ['-b', '--factory-startup', '--python', script], {
    env: { ...process.env, BLENDER_USER_SCRIPTS: path.join(work, 'scripts') },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const addonMs = JSON.parse(
    output
      .split('\n')
      .find((l) => l.startsWith('TIMES '))
      .slice(6),
  );
  const job = {
    type: 'blender',
    params: {
      input: path.join(work, 'shot.blend'),
      output: path.join(work, 'frames', 'frame-####'),
      frames: { each: ['1', '2', '3'] },
    },
  };
  const curlMs = [];
  for (let i = 0; i < ROUNDS; i++) {
    writeFileSync(path.join(root, 'job.json'), JSON.stringify({ ...job, task: `curl-${i}` }));
    const t = performance.now();
    execFileSync('curl', [
      '-sf',
      '-X',
      'POST',
      '-H',
      'Content-Type: application/json',
      '--data-binary',
      `@${path.join(root, 'job.json')}`,
      `${url}/queue/default`,
    ]);
    curlMs.push(performance.now() - t);
  }
  const a = median(addonMs);
  const c = median(curlMs);
  console.log(`add-on Submit (save + POST), median of ${ROUNDS}: ${a.toFixed(1)} ms`);
  console.log(`curl POST of the same task, median of ${ROUNDS}: ${c.toFixed(1)} ms`);
  console.log(`ratio: ${(a / c).toFixed(2)}× (goal ≤ 1.5×)`);
} finally {
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.once('exit', r));
  rmSync(root, { recursive: true, force: true });
}
