import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type ApiDaemon, startApiDaemon } from '../cli/api-daemon.ts';
import { original } from './original.ts';
import { readFileSync } from 'node:fs';

/**
 * The REST calls of batchd's web client (web/batch.html, web/monitor.html) replayed as jquery.rest
 * sends them: every URL ends with "/", `read(id, {status})` adds a query, `create` sends the
 * JSON-stringified object (stringifyData) and jQuery asks for JSON back.
 */
const JQUERY_HEADERS = {
  accept: 'application/json, text/javascript, */*; q=0.01',
  'x-requested-with': 'XMLHttpRequest',
};

interface WebJob {
  id: number;
  seq: number;
  type: string;
  host_name: string | null;
  status: string;
  create_time: string;
  result_time: string | null;
  user_name: string;
  try_count: number;
  params: Record<string, string>;
}

describe("the web client's REST calls", () => {
  let d: ApiDaemon;
  let base: string;
  const read = async <T>(path: string): Promise<T> => {
    const response = await fetch(`${base}${path}`, { headers: JQUERY_HEADERS });
    expect(response.status, `GET ${path}: ${await response.clone().text()}`).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    return (await response.json()) as T;
  };

  beforeAll(async () => {
    d = await startApiDaemon({
      jobTypes: {
        echo: {
          title: 'Echo',
          template: "printf '%s\\n' $message",
          params: [{ name: 'message', type: 'String', title: 'Message', default: 'hi' }],
        },
      },
    });
    base = `${d.url}/batchd`;
  }, 60_000);

  afterAll(async () => {
    await d?.stop();
  });

  it('uses the calls that batch.html makes (as read from the page itself)', () => {
    const page = readFileSync(original('web', 'batch.html'), 'utf8');
    for (const call of [
      '$.batchd.queue.read()',
      '$.batchd.queue.read(qname)',
      "$.batchd.queue.jobs.read(qname, {'status': status})",
      '$.batchd.queue.type.read(qname)',
      '$.batchd.queue.type.host.read(qname, type)',
      '$.batchd.type.read(type)',
      '$.batchd.stats.read(qname)',
      '$.batchd.job.results.read(id)',
      '$.batchd.queue.create(qname, job)',
    ])
      expect(page).toContain(call);
    expect(readFileSync(original('web', 'monitor.html'), 'utf8')).toContain(
      '$.batchd.monitor.query.read(prefix, {last: 60})',
    );
  });

  it('fills the queue list, queue info, job types, enqueue form, hosts and stats', async () => {
    const queues = await read<{ name: string; title: string; enabled: boolean }[]>('/queue/');
    expect(queues.map((v) => `${v.enabled ? '[*]' : '[ ]'} ${v.title}`)).toEqual(['[*] default']);
    const queue = await read<{ schedule_name: string; host_name: string | null }>('/queue/default/');
    expect(queue).toMatchObject({ schedule_name: 'anytime', host_name: null });
    const types = await read<{ name: string; title: string }[]>('/queue/default/type/');
    expect(types.map((t) => [t.name, t.title])).toEqual([
      ['command', 'Shell command'],
      ['echo', 'Echo'],
    ]);
    const type = await read<{ params: { name: string; title: string; default: string }[] }>('/type/echo/');
    expect(type.params).toEqual([{ name: 'message', type: 'String', title: 'Message', default: 'hi' }]);
    expect(await read('/queue/default/type/echo/host/')).toEqual(['__default__']);
    expect(await read('/stats/default/')).toEqual({});
    for (const status of ['all', 'new', 'waiting', 'processing', 'done', 'failed', 'postponed'])
      expect(await read(`/queue/default/jobs/?status=${status}`)).toEqual([]);
  });

  it('enqueues through the form, then shows the job row and its output', async () => {
    const job = { queue: 'default', type: 'echo', params: { message: 'from the web' } };
    const created = await fetch(`${base}/queue/default/`, {
      method: 'POST',
      headers: { ...JQUERY_HEADERS, 'content-type': 'application/json' },
      body: JSON.stringify(job),
    });
    expect(created.status).toBe(200);
    const id = (await created.json()) as number;
    expect(Number.isInteger(id)).toBe(true);

    // Polled as the page does (every 5 s there; faster here).
    let rows: WebJob[] = [];
    const deadline = Date.now() + 20_000;
    while (rows[0]?.status !== 'Done') {
      if (Date.now() > deadline) throw new Error(`the job is not Done: ${JSON.stringify(rows)}`);
      await new Promise((r) => setTimeout(r, 100));
      rows = await read<WebJob[]>('/queue/default/jobs/?status=all');
    }
    expect(rows).toHaveLength(1);
    const row = rows[0];
    expect(row).toMatchObject({
      id,
      seq: id,
      type: 'echo',
      host_name: null,
      status: 'Done',
      user_name: 'anonymous',
    });
    expect(row.params).toEqual({ message: 'from the web' });
    expect(row.result_time).not.toBeNull();
    expect(await read(`/queue/default/jobs/?status=done`)).toHaveLength(1);
    expect(await read('/stats/default/')).toEqual({ done: 1 });

    const results = await read<{ stdout: string; stderr: string }[]>(`/job/${id}/results/`);
    expect(results.map((r) => r.stdout).filter(Boolean)).toEqual(['from the web\n']);
    expect(results.map((r) => r.stderr).filter(Boolean)).toEqual([]);
  });

  it("answers monitor.html's four metric queries with records of name, time and value", async () => {
    for (const prefix of [
      'rts.gc.current_bytes_used',
      'batchd.wai.response_status_',
      'batchd.hosts',
      'batchd.jobs',
    ]) {
      const records = await read<{ name: string; time: string; value: number | null }[]>(
        `/monitor/${prefix}/query/?last=60`,
      );
      expect(records.length, prefix).toBeGreaterThan(0);
      for (const r of records) {
        expect(r.name.startsWith(prefix)).toBe(true);
        expect(Number.isNaN(Date.parse(r.time))).toBe(false);
        expect(typeof r.value).toBe('number');
      }
    }
    const jobs = await read<{ name: string; value: number }[]>('/monitor/batchd.jobs/query/?last=60');
    expect(jobs.at(-1)).toBeDefined();
    expect(jobs.filter((r) => r.name === 'batchd.jobs.Done').at(-1)?.value).toBe(1);
  });
});
