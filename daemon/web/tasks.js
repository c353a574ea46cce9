/* global location */
// Tasks: progress by state, collect (every job's result, or every output file as one tar, in the
// task's order) and resume.
import { api, saveFile } from './api.js';
import { failed } from './app.js';
import { debounce, download, h, replace, time } from './dom.js';
import { can } from './perm.js';

const enc = encodeURIComponent;
const SHOWN = 20;
const PARTS = ['done', 'failed', 'cancelled', 'running', 'queued', 'missing'];

export async function tasksView(ctx) {
  const queues = (await api.get('/queue', ctx.signal)).filter((q) => can('ViewJobs', { queue: q.name }));
  if (queues.length === 0)
    return h(
      'section',
      null,
      h('h1', null, 'Tasks'),
      h('p', { class: 'panel' }, 'No queue whose jobs you may view.'),
    );
  const queue = ctx.params.get('queue') ?? queues[0].name;
  const only = ctx.params.get('task');
  const picker = h(
    'div',
    { class: 'field' },
    h('label', { for: 't-queue' }, 'Queue'),
    h(
      'select',
      {
        id: 't-queue',
        value: queue,
        onchange: (e) => (location.hash = `#/tasks?queue=${enc(e.target.value)}`),
      },
      queues.map((q) => h('option', { value: q.name }, q.title)),
    ),
  );
  const list = h('div', { class: 'cards' });
  const load = async () => {
    let tasks = await api.get(`/queue/${enc(queue)}/tasks`, ctx.signal);
    tasks =
      only === null
        ? tasks.sort((a, b) => String(b.submitted_at).localeCompare(String(a.submitted_at))).slice(0, SHOWN)
        : tasks.filter((t) => t.name === only);
    const statuses = await Promise.all(
      tasks.map((t) => api.get(`/queue/${enc(queue)}/task/${enc(t.name)}`, ctx.signal)),
    );
    replace(
      list,
      tasks.length === 0
        ? h('p', { class: 'muted' }, 'No tasks in this queue.')
        : tasks.map((t, i) => card(t, statuses[i])),
    );
  };
  const card = (t, s) => {
    const finished = s.done + s.failed + s.cancelled + s.missing;
    return h(
      'article',
      { class: 'card task', 'data-task': t.name },
      h(
        'header',
        { class: 'row' },
        h('h2', null, t.name),
        h(
          'span',
          { class: `badge ${s.resolved ? 's-done' : 's-running'}` },
          s.resolved ? 'resolved' : 'in progress',
        ),
      ),
      h('p', { class: 'muted' }, `${s.total} jobs, submitted `, time(t.submitted_at)),
      h(
        'div',
        {
          class: 'bar',
          role: 'progressbar',
          'aria-label': `${t.name}: ${finished} of ${s.total} finished`,
          'aria-valuemin': 0,
          'aria-valuemax': s.total,
          'aria-valuenow': finished,
        },
        PARTS.filter((p) => s[p] > 0).map((p) => segment(p, s[p])),
      ),
      h(
        'dl',
        { class: 'counts' },
        PARTS.map((p) => [h('dt', null, p), h('dd', { class: `s-${p}`, 'data-count': p }, String(s[p]))]),
      ),
      h(
        'div',
        { class: 'actions' },
        h('a', { class: 'button', href: `#/jobs?queue=${enc(queue)}&state=all&task=${enc(t.name)}` }, 'Jobs'),
        h(
          'button',
          {
            type: 'button',
            onclick: async () => {
              try {
                const results = await api.get(`/queue/${enc(queue)}/task/${enc(t.name)}/results`);
                download(`${t.name}-results.json`, JSON.stringify(results, null, 2), 'application/json');
              } catch (e) {
                failed(e);
              }
            },
          },
          'Collect results',
        ),
        h(
          'button',
          {
            type: 'button',
            onclick: async () => {
              try {
                await saveFile(`/queue/${enc(queue)}/task/${enc(t.name)}/outputs`, `${t.name}-outputs.tar`);
              } catch (e) {
                failed(e);
              }
            },
          },
          'Collect output files',
        ),
        can('ManageJobs', { queue }) && s.failed + s.cancelled > 0
          ? h(
              'button',
              {
                type: 'button',
                onclick: async () => {
                  try {
                    await api.post(`/queue/${enc(queue)}/task/${enc(t.name)}/resume`);
                    await load();
                  } catch (e) {
                    failed(e);
                  }
                },
              },
              `Resume ${s.failed + s.cancelled} failed or cancelled`,
            )
          : null,
      ),
    );
  };
  await load();
  const refresh = debounce(() => load().catch(() => undefined), 1000);
  ctx.on((type, e) => {
    if ((type.startsWith('job:') && e.queue === queue) || type === 'reconnected') refresh();
  });
  ctx.signal.addEventListener('abort', refresh.cancel);
  return h('section', null, h('h1', null, 'Tasks'), picker, list);
}

/** A part of the bar, as wide as its count (set through the DOM: the page's CSP allows no inline style). */
function segment(part, count) {
  const seg = h('span', { class: `seg s-${part}`, 'data-part': part, title: `${count} ${part}` });
  seg.style.flexGrow = String(count);
  return seg;
}
