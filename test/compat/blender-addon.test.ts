import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { UserStore } from '../../daemon/auth/store.ts';
import { type ApiDaemon, startApiDaemon } from '../cli/api-daemon.ts';
import { lastJson, original, runPython } from './original.ts';

type Json = Record<string, unknown>;
const AUTH = `Basic ${Buffer.from('artist:artistpassword').toString('base64')}`;

/**
 * batchd's Blender add-on (python/batchd/blenderclient.py), run inside a real Blender in the
 * background. Two things of it cannot run as they are on Blender 3 and with the client library of
 * the same commit, and the driver adapts exactly those: its preferences are read with Blender
 * 2.7x's `bpy.context.user_preferences` (the driver hands it the values its preferences panel would
 * hold), and its operator calls `do_enqueue(queue, type, params)` while client.py takes
 * `do_enqueue(queue, type, host, params)` (the driver passes host None, the queue's default). The
 * rest is the add-on's own code: the client it builds, its queue and type look-ups, pack_all, the
 * .blend's path and the render path, and the params it sends, `frame` included.
 */
const DRIVER = `
import json, os, sys
import bpy
sys.path.insert(0, os.environ['BATCHD_PYTHON'])
from batchd import blenderclient as addon
from batchd import client

class Preferences:
    manager_url = os.environ['MANAGER_URL']
    username = 'artist'
    password = 'artistpassword'
    batchd_queue = os.environ['QUEUE']
    job_type_name = os.environ['JOB_TYPE']
addon.get_preferences = lambda: Preferences

sent = []
library_enqueue = client.Client.do_enqueue
def addon_enqueue(self, qname, typename, params):
    sent.append(dict(queue=qname, type=typename, params=params))
    return library_enqueue(self, qname, typename, None, params)
client.Client.do_enqueue = addon_enqueue

scene = bpy.context.scene
scene.render.engine = 'CYCLES'
scene.cycles.samples = 1
scene.cycles.use_denoising = False
scene.render.resolution_x = 32
scene.render.resolution_y = 24
scene.render.resolution_percentage = 100
scene.render.filepath = os.environ['OUTPUT']
bpy.ops.wm.save_as_mainfile(filepath=os.environ['BLEND'])

queues = addon.queues_from_batchd(None, bpy.context)
types = addon.types_from_batchd(None, bpy.context)
bpy.utils.register_class(addon.EnqueueOperator)
result = bpy.ops.batchd.enqueue()
print('ADDON-REPORT ' + json.dumps(dict(result=sorted(result), queues=[q[0] for q in queues], types=[t[0] for t in types], sent=sent)))
`;

function runBlender(
  script: string,
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('blender', ['-b', '--factory-startup', '--python', script], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("batchd's Blender add-on through the batchd face", () => {
  let d: ApiDaemon;
  let base: string;
  let work: string;
  const get = async <T>(url: string): Promise<T> => {
    const r = await fetch(`${base}${url}`, { headers: { authorization: AUTH } });
    expect(r.status, `GET ${url}`).toBe(200);
    return (await r.json()) as T;
  };

  beforeAll(async () => {
    d = await startApiDaemon({
      manager: { auth: { basic: true } },
      jobTypes: {
        // A render type with the add-on's three parameters: the job renders the frame it was sent.
        render: {
          template: 'blender -b --factory-startup $input -o $output -F PNG -f $frame',
          params: [
            { name: 'input', type: 'String' },
            { name: 'output', type: 'String' },
            { name: 'frame', type: 'Integer' },
          ],
        },
        // batchd's sample blender type, as it is: it declares input and output, not frame.
        blender: readFileSync(original('sample-configs', 'jobtypes', 'blender.yaml'), 'utf8'),
      },
      queues: { renders: { parallel: 1 }, held: { enabled: false } },
      beforeStart: async (env) => {
        await new UserStore(path.join(env.etc, 'users.yaml')).addUser('artist', 'artistpassword', {
          superuser: true,
        });
      },
    });
    base = `${d.url}/batchd`;
    work = path.join(d.env.root, 'work');
    mkdirSync(work);
  }, 60_000);

  afterAll(async () => {
    await d?.stop();
  });

  it('submits the open scene from Blender, and the job renders the frame the add-on sent', async () => {
    const script = path.join(work, 'drive-addon.py');
    writeFileSync(script, DRIVER);
    const blend = path.join(work, 'scene.blend');
    const output = path.join(work, 'out', 'frame-####');
    const run = await runBlender(script, {
      BATCHD_PYTHON: original('python'),
      MANAGER_URL: base,
      QUEUE: 'renders',
      JOB_TYPE: 'render',
      BLEND: blend,
      OUTPUT: output,
    });
    // Blender prints its own lines after the script's: the report is the line with the marker.
    const line = run.stdout.split('\n').find((l) => l.startsWith('ADDON-REPORT '));
    expect(line, `${run.stdout}\n${run.stderr}`).toBeDefined();
    const report = JSON.parse(String(line).slice('ADDON-REPORT '.length)) as {
      result: string[];
      queues: string[];
      types: string[];
      sent: Json[];
    };
    expect(report.result, run.stderr).toEqual(['FINISHED']);
    expect(report.queues).toEqual(expect.arrayContaining(['renders', 'held']));
    expect(report.types).toEqual(expect.arrayContaining(['render', 'blender', 'command']));
    expect(report.sent).toEqual([
      { queue: 'renders', type: 'render', params: { input: blend, output, frame: '1' } },
    ]);

    const [job] = await get<Json[]>('/queue/renders/jobs?status=all');
    expect(job).toMatchObject({
      type: 'render',
      user_name: 'artist',
      params: { input: blend, output, frame: '1' },
    });
    const deadline = Date.now() + 60_000;
    let ended = await get<Json>(`/job/${String(job?.id)}`);
    while (ended.status === 'New' || ended.status === 'Processing') {
      if (Date.now() > deadline) throw new Error('the render job did not end in time');
      await new Promise((r) => setTimeout(r, 200));
      ended = await get<Json>(`/job/${String(job?.id)}`);
    }
    expect(ended, String(ended.stderr)).toMatchObject({ status: 'Done', exit_code: 0 });
    expect(existsSync(path.join(work, 'out', 'frame-0001.png'))).toBe(true);
    expect(existsSync(path.join(work, 'out', 'frame-0002.png'))).toBe(false);
  }, 120_000);

  it("accepts the add-on's params for batchd's sample blender type, whose template has no frame", async () => {
    const input = path.join(work, 'sample.blend');
    writeFileSync(input, 'BLENDER');
    const result = await runPython(
      `
import json
from batchd import client
c = client.Client(${JSON.stringify(base)}, 'artist', 'artistpassword')
c.do_enqueue('held', 'blender', None, dict(input=${JSON.stringify(input)}, output='/renders/out-####', frame='1'))
print(json.dumps(c.get_jobs('held')))
`,
      {},
    );
    const jobs = lastJson<Json[]>(result);
    // batchd stored the extra `frame` and its template never used it; here it is left out.
    expect(jobs).toEqual([
      expect.objectContaining({
        type: 'blender',
        status: 'New',
        params: { input, output: '/renders/out-####' },
      }),
    ]);
  });
});
