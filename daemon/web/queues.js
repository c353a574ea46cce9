// Queues: counts by state, enabled or paused, whether the schedule lets jobs start now.
import { api } from './api.js';
import { failed } from './app.js';
import { absTime, debounce, h, replace } from './dom.js';
import { can } from './perm.js';

const STATES = ['queued', 'running', 'done', 'failed', 'cancelled'];

export async function queuesView(ctx) {
  const body = h('div', { class: 'cards' });
  const load = async () => {
    const queues = await api.get('/queue', ctx.signal);
    replace(
      body,
      queues.length === 0 ? h('p', { class: 'muted' }, 'No queues you may view.') : queues.map(card),
    );
  };
  const card = (q) =>
    h(
      'article',
      { class: 'card', 'aria-labelledby': `q-${q.name}` },
      h(
        'header',
        { class: 'row' },
        h(
          'h2',
          { id: `q-${q.name}` },
          h('a', { href: `#/jobs?queue=${encodeURIComponent(q.name)}` }, q.title),
        ),
        q.title !== q.name ? h('span', { class: 'muted' }, q.name) : null,
        h(
          'span',
          { class: `badge ${q.enabled ? 's-running' : 's-paused'}` },
          q.enabled ? 'enabled' : 'paused',
        ),
      ),
      h('p', { class: 'muted' }, 'Schedule ', h('strong', null, q.schedule_name), ': ', scheduleState(q)),
      h(
        'dl',
        { class: 'counts' },
        STATES.map((s) => [
          h('dt', null, h('a', { href: `#/jobs?queue=${encodeURIComponent(q.name)}&state=${s}` }, s)),
          h('dd', { class: `s-${s}` }, String(q.counts[s])),
        ]),
      ),
      can('ManageQueues', { queue: q.name })
        ? h(
            'button',
            {
              type: 'button',
              onclick: async () => {
                try {
                  await api.put(`/queue/${encodeURIComponent(q.name)}`, { enabled: !q.enabled });
                  await load();
                } catch (e) {
                  failed(e);
                }
              },
            },
            q.enabled ? `Pause ${q.name}` : `Resume ${q.name}`,
          )
        : null,
    );
  await load();
  const refresh = debounce(() => load().catch(() => undefined), 1000);
  ctx.on((type) => {
    if (type !== 'host:state') refresh();
  });
  ctx.signal.addEventListener('abort', refresh.cancel);
  return h('section', null, h('h1', null, 'Queues'), body);
}

export function scheduleState(q) {
  if (q.schedule_open) return h('span', { class: 'ok' }, 'open now');
  if (q.opens_at === null) return h('span', { class: 'warn' }, 'closed');
  const at = new Date(q.opens_at);
  const sameDay = at.toDateString() === new Date().toDateString();
  const text = sameDay
    ? at.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })
    : at.toLocaleString(undefined, { weekday: 'short', hour: '2-digit', minute: '2-digit' });
  return h('span', { class: 'warn', title: absTime(q.opens_at) }, `opens ${text}`);
}
