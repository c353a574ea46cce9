// Hosts: each one's state and since when (with the reason the daemon gives), the jobs running
// there, and its last errors (the daemon keeps a few per host, controllers' and providers' too).
import { api } from './api.js';
import { debounce, h, replace, shortId, time } from './dom.js';

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
    const info = new Map(hosts.map((x) => [x.name, x]));
    const states = new Map(hosts.map((x) => [x.name, x.state]));
    replace(
      body,
      names.length === 0
        ? h('p', { class: 'muted' }, 'No hosts configured; jobs run on this machine.')
        : names.map((name) => {
            const jobs = byHost.get(name) ?? [];
            const host = info.get(name);
            const errors = host?.errors ?? [];
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
              host?.since || host?.reason
                ? h(
                    'p',
                    { class: host.state === 'failed' ? 'warn state' : 'muted state' },
                    host.reason ?? '',
                    host.since ? [host.reason ? ' · since ' : 'Since ', time(host.since)] : '',
                  )
                : null,
              h(
                'p',
                null,
                `${jobs.length} running job${jobs.length === 1 ? '' : 's'}`,
                host?.controller && host.controller !== 'local' ? ` · started by ${host.controller}` : '',
              ),
              errors.length === 0
                ? null
                : h(
                    'details',
                    { class: 'errors', open: host.state === 'failed' },
                    h('summary', null, 'Last error: ', time(errors.at(-1).at)),
                    h(
                      'ul',
                      null,
                      [...errors].reverse().map((e) => h('li', null, time(e.at), ' ', e.reason)),
                    ),
                  ),
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
