/* global location */
// Jobs: a filtered page of jobs, paged by the API's cursor (a page costs the same with 100 or
// 100,000 jobs in a queue), sorted by the API over every job (a column header sorts by it; again:
// the other way), refreshed by live events.
// The first page is shown as soon as it arrives: the filters' choices fill in when theirs do.
import { api } from './api.js';
import { badge, debounce, h, replace, shortId, time } from './dom.js';

const STATES = ['queued', 'running', 'done', 'failed', 'cancelled', 'all'];
const FILTERS = ['queue', 'state', 'type', 'host', 'user', 'task', 'q'];
const SIZES = [25, 50, 100, 200];
/** Columns; `sorts`: the API's sort key (it orders every job of the list, not one page). */
const COLUMNS = [
  { label: 'Job' },
  { label: 'Name' },
  { label: 'State', sorts: 'state' },
  { label: 'Queue', sorts: 'queue' },
  { label: 'Type', sorts: 'type' },
  { label: 'Owner', sorts: 'user' },
  { label: 'Host' },
  { label: 'Priority', sorts: 'priority' },
  { label: 'Submitted', sorts: 'submitted' },
  { label: 'Started', sorts: 'started' },
  { label: 'Ended', sorts: 'ended' },
];
const SORTS = COLUMNS.flatMap((c) => (c.sorts === undefined ? [] : [c.sorts, `-${c.sorts}`]));
/**
 * Per filter, the cursor of the page before each page seen (the API pages forward only). Links
 * stay plain links: a page's "Previous" is looked up, never popped, so fast clicks cannot skip.
 */
const previous = new Map();

export async function jobsView(ctx) {
  const p = ctx.params;
  const filter = Object.fromEntries(FILTERS.map((f) => [f, p.get(f) ?? '']));
  filter.state ||= 'queued';
  const size = SIZES.includes(Number(p.get('limit'))) ? Number(p.get('limit')) : 50;
  const cursor = p.get('cursor') ?? '';
  // '' is the API's default order (submitted, oldest first).
  const sort = SORTS.includes(p.get('sort')) && p.get('sort') !== 'submitted' ? p.get('sort') : '';
  const key = JSON.stringify([filter, size, sort]);
  const hash = (changes) => {
    const next = new URLSearchParams();
    for (const [k, v] of Object.entries({ ...filter, limit: String(size), cursor, sort, ...changes }))
      if (v !== '' && v !== undefined) next.set(k, v);
    return `#/jobs?${next}`;
  };

  const listPath = () => {
    const q = new URLSearchParams({ status: filter.state, limit: String(size) });
    for (const f of ['type', 'host', 'user', 'task', 'q']) if (filter[f] !== '') q.set(f, filter[f]);
    if (cursor !== '') q.set('cursor', cursor);
    if (sort !== '') q.set('sort', sort);
    return filter.queue === '' ? `/jobs?${q}` : `/queue/${encodeURIComponent(filter.queue)}/jobs?${q}`;
  };

  // The page of jobs and the filters' choices are asked for at once; the page does not wait for them.
  const first = api.get(listPath(), ctx.signal);
  const choices = Promise.all([
    api.get('/queue', ctx.signal),
    api.get('/type', ctx.signal),
    api.get('/host', ctx.signal),
  ]);
  choices.catch(() => undefined); // a failure leaves the current values as the only choices
  const { form, fill } = filterForm(filter, size, (values) => {
    location.hash = hash({ ...values, cursor: '' });
  });
  void choices.then(([queues, types, hosts]) => fill(queues, types, hosts)).catch(() => undefined);
  const table = h('div', { class: 'table-wrap' });
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  const status = h('p', { class: 'muted', role: 'status' });

  const load = async (ready) => {
    const page = await (ready ?? api.get(listPath(), ctx.signal));
    replace(
      table,
      jobsTable(page.jobs, sort || 'submitted', (by) => {
        const next = (sort || 'submitted') === by ? `-${by}` : by;
        return hash({ sort: next === 'submitted' ? '' : next, cursor: '' });
      }),
    );
    const before = previous.get(key) ?? new Map();
    previous.set(key, before);
    if (page.next_cursor !== null) before.set(page.next_cursor, cursor);
    const back = before.get(cursor);
    replace(
      pager,
      cursor === ''
        ? null
        : h(
            'a',
            { href: hash({ cursor: back ?? '' }), class: 'button' },
            back === undefined ? '⇤ First page' : '← Previous',
          ),
      page.next_cursor === null
        ? null
        : h('a', { href: hash({ cursor: page.next_cursor }), class: 'button' }, 'Next →'),
    );
    replace(
      status,
      page.jobs.length === 0
        ? page.next_cursor === null
          ? 'No jobs match.'
          : 'No match among the jobs looked at; try the next page.'
        : `${page.jobs.length} job${page.jobs.length === 1 ? '' : 's'} on this page${page.next_cursor === null ? '' : ', more on the next'}.`,
    );
  };
  await load(first);
  const refresh = debounce(() => load().catch(() => undefined), 1500);
  ctx.on((type, e) => {
    if (type === 'host:state' || type === 'queue:changed') return;
    if (
      filter.queue === '' ||
      e.queue === filter.queue ||
      e.toQueue === filter.queue ||
      type === 'reconnected'
    )
      refresh();
  });
  ctx.signal.addEventListener('abort', refresh.cancel);
  return h('section', null, h('h1', null, 'Jobs'), form, status, table, pager);
}

/** The filter form; `fill` puts in the queues, types and hosts to choose from once they are known. */
function filterForm(filter, size, apply) {
  const field = (name, label, control) =>
    h('div', { class: 'field' }, h('label', { for: `f-${name}` }, label), control);
  const select = (name, options, value) =>
    h(
      'select',
      { id: `f-${name}`, name, value },
      options.map(([v, text]) => h('option', { value: v }, text)),
    );
  // Until the choices arrive, a select offers its current value only.
  const current = (value, any) => [['', any], ...(value === '' ? [] : [[value, value]])];
  const pickers = {
    queue: select('queue', current(filter.queue, 'All queues'), filter.queue),
    type: select('type', current(filter.type, 'Any type'), filter.type),
    host: select('host', current(filter.host, 'Any host'), filter.host),
  };
  const fill = (queues, types, hosts) => {
    const lists = {
      queue: [['', 'All queues'], ...queues.map((q) => [q.name, q.title])],
      type: [['', 'Any type'], ...types.map((t) => [t.name, t.title])],
      host: [['', 'Any host'], ...hosts.map((x) => [x.name, x.name])],
    };
    for (const [name, options] of Object.entries(lists)) {
      const el = pickers[name];
      const value = el.value;
      replace(el, ...options.map(([v, text]) => h('option', { value: v }, text)));
      el.value = value;
    }
  };
  const input = (name, value, extra = {}) => h('input', { id: `f-${name}`, name, value, ...extra });
  const form = h(
    'form',
    {
      class: 'filters',
      role: 'search',
      'aria-label': 'Filter jobs',
      onsubmit: (event) => {
        event.preventDefault();
        const data = new FormData(form);
        apply({
          ...Object.fromEntries(FILTERS.map((f) => [f, String(data.get(f) ?? '').trim()])),
          limit: String(data.get('limit')),
        });
      },
    },
    field('queue', 'Queue', pickers.queue),
    field(
      'state',
      'State',
      select(
        'state',
        STATES.map((s) => [s, s]),
        filter.state,
      ),
    ),
    field('type', 'Type', pickers.type),
    field('host', 'Host', pickers.host),
    field('user', 'Owner', input('user', filter.user, { autocomplete: 'off' })),
    field('task', 'Task', input('task', filter.task, { autocomplete: 'off' })),
    field('q', 'Text', input('q', filter.q, { type: 'search', placeholder: 'id, name, notes, params…' })),
    field(
      'limit',
      'Per page',
      select(
        'limit',
        SIZES.map((n) => [String(n), String(n)]),
        String(size),
      ),
    ),
    h('div', { class: 'field actions' }, h('button', { type: 'submit', class: 'primary' }, 'Filter')),
  );
  return { form, fill };
}

/**
 * `sort`: the API's order ('state', '-priority'…); `sortHash(key)`: the link that sorts by `key`
 * (ascending, or the other way if it already sorts by it).
 */
function jobsTable(jobs, sort, sortHash) {
  const desc = sort.startsWith('-');
  const active = desc ? sort.slice(1) : sort;
  return h(
    'table',
    { class: 'jobs' },
    h('caption', { class: 'sr-only' }, 'Jobs; a column header with a link sorts every page by it'),
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        COLUMNS.map(({ label, sorts }) =>
          sorts === undefined
            ? h('th', { scope: 'col' }, label)
            : h(
                'th',
                {
                  scope: 'col',
                  'aria-sort': sorts !== active ? 'none' : desc ? 'descending' : 'ascending',
                },
                h(
                  'a',
                  { href: sortHash(sorts), class: 'sort' },
                  label,
                  sorts !== active
                    ? h('span', { class: 'sortable', 'aria-hidden': 'true' }, ' ↕')
                    : desc
                      ? ' ▼'
                      : ' ▲',
                ),
              ),
        ),
      ),
    ),
    h(
      'tbody',
      null,
      jobs.map((j) =>
        h(
          'tr',
          { 'data-id': j.id },
          h(
            'td',
            { 'data-label': 'Job' },
            h('a', { href: `#/job/${encodeURIComponent(j.id)}`, title: j.id, class: 'mono' }, shortId(j.id)),
          ),
          h('td', { 'data-label': 'Name', class: 'name' }, label(j)),
          h('td', { 'data-label': 'State' }, badge(j.status)),
          h('td', { 'data-label': 'Queue' }, j.queue),
          h('td', { 'data-label': 'Type' }, j.type),
          h('td', { 'data-label': 'Owner' }, j.user ?? ''),
          h('td', { 'data-label': 'Host' }, j.host ?? ''),
          h('td', { 'data-label': 'Priority', class: 'num' }, String(j.priority)),
          h('td', { 'data-label': 'Submitted' }, time(j.submitted_at)),
          h('td', { 'data-label': 'Started' }, time(j.started_at)),
          h('td', { 'data-label': 'Ended' }, time(j.ended_at)),
        ),
      ),
    ),
  );
}

/** A job's name, else what tells it apart: its place in its task, or its first parameter. */
function label(job) {
  if (job.name !== null) return job.name;
  const first = Object.entries(job.params)[0];
  const param = first === undefined ? '' : `${first[0]}=${String(first[1])}`;
  if (job.task !== null) return h('span', { class: 'muted' }, `${job.task} #${job.task_index} `, param);
  return h('span', { class: 'muted' }, param);
}
