// Hosts: last reported state, the jobs running there, the last problem reported (host:state events
// since the page opened carry a reason).
import { api } from './api.js';
import { debounce, h, replace, shortId, time } from './dom.js';

const reasons = new Map();
const enc = encodeURIComponent;

export async function hostsView(ctx) {
  const body = h('div', { class: 'cards' });
  const load = async () => {
    const [hosts, running] = await Promise.all([
      api.get('/host', ctx.signal),
      api.get('/jobs?status=running&limit=1000', ctx.signal),
    ]);
    const byHost = new Map();
    for (const job of running.jobs) {
      const key = job.host ?? 'local';
      byHost.set(key, [...(byHost.get(key) ?? []), job]);
    }
    const names = [...new Set([...hosts.map((x) => x.name), ...byHost.keys()])];
    const states = new Map(hosts.map((x) => [x.name, x.state]));
    replace(
      body,
      names.length === 0
        ? h('p', { class: 'muted' }, 'No hosts configured; jobs run on this machine.')
        : names.map((name) => {
            const jobs = byHost.get(name) ?? [];
            const reason = reasons.get(name);
            return h(
              'article',
              { class: 'card', 'data-host': name },
              h(
                'header',
                { class: 'row' },
                h('h2', null, name),
                h(
                  'span',
                  { class: `badge h-${states.get(name) ?? 'unknown'}` },
                  states.get(name) ?? (name === 'local' ? 'this machine' : 'no report yet'),
                ),
              ),
              reason ? h('p', { class: 'warn' }, 'Last report: ', reason.text, ' ', time(reason.at)) : null,
              h('p', null, `${jobs.length} running job${jobs.length === 1 ? '' : 's'}`),
              jobs.length === 0
                ? null
                : h(
                    'ul',
                    null,
                    jobs
                      .slice(0, 20)
                      .map((j) =>
                        h(
                          'li',
                          null,
                          h('a', { href: `#/job/${enc(j.id)}`, class: 'mono', title: j.id }, shortId(j.id)),
                          ' ',
                          j.name ?? j.type,
                          ' · started ',
                          time(j.started_at),
                        ),
                      ),
                  ),
            );
          }),
    );
  };
  await load();
  const refresh = debounce(() => load().catch(() => undefined), 1500);
  ctx.on((type, e) => {
    if (type === 'host:state' && e.reason)
      reasons.set(e.host, { text: `${e.state}: ${e.reason}`, at: new Date().toISOString() });
    if (
      type === 'host:state' ||
      type === 'reconnected' ||
      (type === 'job:transition' && (e.to === 'running' || e.from === 'running'))
    )
      refresh();
  });
  ctx.signal.addEventListener('abort', refresh.cancel);
  return h('section', null, h('h1', null, 'Hosts'), body);
}
