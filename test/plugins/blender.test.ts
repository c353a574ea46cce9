import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type ApiDaemon, startApiDaemon } from '../cli/api-daemon.ts';
import { jobsIn, waitFor } from '../helpers/env.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ADDON = path.join(ROOT, 'plugins', 'blender', 'batchd_render');
const BLENDER_TYPE = parse(
  readFileSync(path.join(ROOT, 'etc', 'jobtypes', 'blender.yaml'), 'utf8'),
) as unknown;

/** Run a Python script in a real, headless Blender; its printed `RESULT {json}` line is returned. */
function blender(script: string, env: Record<string, string>): Promise<{ result: unknown; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'blender',
      ['-b', '--factory-startup', '--python-exit-code', '3', '--python', script],
      {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      const line = output.split('\n').find((l) => l.startsWith('RESULT '));
      if (code !== 0 || line === undefined) reject(new Error(`blender exited ${code}:\n${output}`));
      else resolve({ result: JSON.parse(line.slice('RESULT '.length)) as unknown, output });
    });
  });
}

/** The add-on installed from a zip into a user scripts folder of the test's own, then used. */
function script(work: string, body: string): string {
  const file = path.join(work, `session-${Date.now()}.py`);
  writeFileSync(
    file,
    `import bpy, addon_utils, json, os, zipfile
work = ${JSON.stringify(work)}
archive = os.path.join(work, "batchd_render.zip")
with zipfile.ZipFile(archive, "w") as z:
    for name in sorted(os.listdir(${JSON.stringify(ADDON)})):
        if name.endswith(".py"):
            z.write(os.path.join(${JSON.stringify(ADDON)}, name), "batchd_render/" + name)
bpy.ops.preferences.addon_install(filepath=archive, overwrite=True)
addon_utils.enable("batchd_render", default_set=True)
prefs = bpy.context.preferences.addons["batchd_render"].preferences
scene = bpy.context.scene
scene.render.engine = "BLENDER_WORKBENCH"
scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 32, 24, 100
scene.frame_start, scene.frame_end = 1, 3
scene.render.filepath = os.path.join(work, "frames", "frame-####")
bpy.ops.wm.save_as_mainfile(filepath=os.path.join(work, "shot.blend"))
${body}
`,
  );
  return file;
}

describe('the Blender add-on, in a real Blender', () => {
  let d: ApiDaemon;
  let work: string;
  let userScripts: string;

  beforeAll(async () => {
    d = await startApiDaemon({
      queues: { default: null },
      jobTypes: { blender: BLENDER_TYPE },
      config: { dispatcher: { workers: 2 } },
    });
    work = path.join(d.env.root, 'blender');
    userScripts = path.join(work, 'scripts');
    mkdirSync(userScripts, { recursive: true });
  });

  afterAll(async () => {
    await d?.stop();
  });

  const env = (): Record<string, string> => ({ BLENDER_USER_SCRIPTS: userScripts, HOME: d.home });

  it('Submit renders the scene as a task of one job per frame, and the frames arrive', async () => {
    const { result } = await blender(
      script(
        work,
        `prefs.server_url = ${JSON.stringify(d.url)}
op = list(bpy.ops.batchd.submit())
# What the panel's background poll fills in (its timer does not run in a headless Blender).
import batchd_render
batchd_render._poll(prefs.queue, scene.batchd.last_task, batchd_render.api())
progress = batchd_render._progress.get(scene.batchd.last_task, {})
print("RESULT " + json.dumps({"op": op, "task": scene.batchd.last_task, "total": progress.get("total")}))`,
      ),
      env(),
    );
    const { op, task, total } = result as { op: string[]; task: string; total: number };
    expect(op).toEqual(['FINISHED']);
    expect(total).toBe(3);
    expect(task).toMatch(/^shot-\d{8}-\d{6}$/);
    const deadline = Date.now() + 90_000;
    let status: { total: number; done: number; resolved: boolean } | undefined;
    while (status?.resolved !== true && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      const res = await fetch(`${d.url}/queue/default/task/${task}`);
      if (res.ok) status = (await res.json()) as typeof status;
    }
    expect(status).toMatchObject({ total: 3, done: 3 });
    const frames = readdirSync(path.join(work, 'frames')).sort();
    expect(frames).toEqual(['frame-0001.png', 'frame-0002.png', 'frame-0003.png']);
    // Real PNG files.
    for (const f of frames)
      expect(
        readFileSync(path.join(work, 'frames', f))
          .subarray(1, 4)
          .toString(),
      ).toBe('PNG');
  });

  it('an unreachable or refusing daemon is a clear error; submit on save drops a valid job file into the spool', async () => {
    const incoming = path.join(d.env.spool, 'default', 'incoming');
    const { result } = await blender(
      script(
        work,
        `def submit():
    try:
        bpy.ops.batchd.submit()
    except RuntimeError as e:
        return str(e)
prefs.server_url = "http://127.0.0.1:9"
unreachable = submit()
prefs.server_url = ${JSON.stringify(d.url)}
prefs.job_type = "no-such-type"
refused = submit()
prefs.job_type = "blender"
scene.batchd.chunk = 2
prefs.submit_on_save = True
prefs.on_save_mode = "SPOOL"
prefs.spool_incoming = ${JSON.stringify(incoming)}
bpy.ops.wm.save_mainfile()
print("RESULT " + json.dumps({"unreachable": unreachable, "refused": refused}))`,
      ),
      env(),
    );
    const { unreachable, refused } = result as { unreachable: string; refused: string };
    expect(unreachable).toMatch(
      /batchd at http:\/\/127\.0\.0\.1:9 is unreachable: \[Errno 111\] Connection refused/,
    );
    expect(refused).toMatch(/batchd: job refused: .*Unknown job type "no-such-type"/);
    // Frames 1..3 in chunks of 2: two jobs, "1..2" and "3", accepted as one task.
    const ids = await waitFor(
      () => {
        const all = ['queued', 'running', 'done', 'failed'].flatMap((s) => jobsIn(d.env.spool, 'default', s));
        const mine = all.filter((id) => id.includes('shot-'));
        return mine.length === 2 ? mine : undefined;
      },
      30_000,
      'the dropped task accepted',
    );
    expect(ids).toHaveLength(2);
    const rejected = path.join(d.env.spool, 'default', 'rejected');
    expect(existsSync(rejected) ? readdirSync(rejected) : []).toEqual([]);
  });
});
