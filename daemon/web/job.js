// One job: parameters, notes, why it waits, history, attempts, its logs followed live, and the
// actions the user may take on it.
import { api, saveFile, streamText } from './api.js';
import { failed } from './app.js';
import { absTime, badge, debounce, download, duration, h, replace, shortId, time } from './dom.js';
import { can } from './perm.js';
import { scheduleState } from './queues.js';

const enc = encodeURIComponent;

export async function jobView(ctx) {
  const id = ctx.arg;
  const head = h('div');
  const info = h('div', { class: 'cols' });
  const attempts = h('div');
  const logs = h('div', { class: 'logs' });
  let job = await api.get(`/job/${enc(id)}`, ctx.signal);

  const load = async () => {
    job = await api.get(`/job/${enc(id)}`, ctx.signal);
    await show();
  };
  const act = (fn) => async () => {
    try {
      await fn();
      await load();
    } catch (e) {
      failed(e);
    }
  };
  const show = async () => {
    const [results, outputs] =
      job.attempts > 0
        ? await Promise.all([
            api.get(`/job/${enc(id)}/results`, ctx.signal),
            api.get(`/job/${enc(id)}/outputs`, ctx.signal),
          ])
        : [[], undefined];
    replace(head, header(job, act));
    replace(info, details(job, act), await waitPanel(job, ctx.signal), historyPanel(job));
    replace(attempts, attemptsPanel(results), outputsPanel(id, outputs));
    follow();
  };

  // A log is followed from a queued job's start to its end; a retried job is followed again.
  const panes = { stdout: logPane('stdout', id), stderr: logPane('stderr', id) };
  logs.append(panes.stdout.el, panes.stderr.el);
  let following = false;
  const follow = () => {
    if (following || (job.status !== 'queued' && job.status !== 'running' && panes.stdout.read)) return;
    following = true;
    const runs = Object.values(panes).map((pane) => pane.follow(ctx.signal));
    void Promise.allSettled(runs).then(() => {
      following = false;
      if (!ctx.signal.aborted && (job.status === 'queued' || job.status === 'running'))
        setTimeout(follow, 1000);
    });
  };

  await show();
  const refresh = debounce(() => load().catch(() => undefined), 300);
  ctx.on((type, e) => {
    const mine =
      (type === 'job:transition' || type === 'job:paused' || type === 'job:resumed') && e.jobId === id;
    if (mine || type === 'reconnected') refresh();
  });
  ctx.signal.addEventListener('abort', refresh.cancel);
  return h('section', null, head, info, attempts, logs);
}

function header(job, act) {
  const q = { queue: job.queue };
  const manage = can('ManageJobs', q);
  const actions = h('div', { class: 'actions' });
  if (manage && (job.status === 'queued' || job.status === 'running'))
    actions.append(
      h(
        'button',
        { type: 'button', class: 'danger', onclick: act(() => api.post(`/job/${enc(job.id)}/cancel`)) },
        'Cancel job',
      ),
    );
  if (manage && job.status === 'running') {
    const verb = job.paused_at === undefined ? 'pause' : 'resume';
    actions.append(
      h(
        'button',
        { type: 'button', onclick: act(() => api.post(`/job/${enc(job.id)}/${verb}`)) },
        verb === 'pause' ? 'Pause job' : 'Resume job',
      ),
    );
  }
  if (manage && (job.status === 'failed' || job.status === 'cancelled'))
    actions.append(
      h('button', { type: 'button', onclick: act(() => api.post(`/job/${enc(job.id)}/retry`)) }, 'Retry job'),
    );
  if (manage && job.status === 'queued') actions.append(priorityForm(job, act), moveForm(job, act));
  return h(
    'header',
    { class: 'job-head' },
    h('p', null, h('a', { href: `#/jobs?queue=${enc(job.queue)}&state=${job.status}` }, `← ${job.queue}`)),
    h(
      'h1',
      null,
      job.name ?? `Job ${shortId(job.id)}`,
      ' ',
      badge(job.status),
      ...(job.paused_at === undefined ? [] : [' ', badge('paused')]),
    ),
    h('p', { class: 'mono muted' }, job.id),
    actions,
  );
}

function priorityForm(job, act) {
  const select = h(
    'select',
    { id: 'prio', name: 'priority' },
    h('option', { value: 'first' }, 'first in queue'),
    h('option', { value: 'more' }, 'higher'),
    h('option', { value: 'less' }, 'lower'),
    h('option', { value: 'last' }, 'last in queue'),
    h('option', { value: 'number' }, 'set to…'),
  );
  const number = h('input', {
    id: 'prio-n',
    type: 'number',
    step: 1,
    value: job.priority,
    'aria-label': 'Priority number',
    class: 'short',
  });
  const form = h(
    'form',
    {
      class: 'inline',
      onsubmit: (event) => {
        event.preventDefault();
        const priority = select.value === 'number' ? Number(number.value) : select.value;
        void act(() => api.put(`/job/${enc(job.id)}`, { priority }))();
      },
    },
    h('label', { for: 'prio' }, `Priority ${job.priority}:`),
    select,
    number,
    h('button', { type: 'submit' }, 'Set'),
  );
  return form;
}

function moveForm(job, act) {
  const target = h('input', {
    id: 'move-to',
    name: 'move',
    required: true,
    class: 'short',
    autocomplete: 'off',
  });
  return h(
    'form',
    {
      class: 'inline',
      onsubmit: (event) => {
        event.preventDefault();
        void act(() => api.put(`/job/${enc(job.id)}`, { move: target.value.trim() }))();
      },
    },
    h('label', { for: 'move-to' }, 'Move to queue'),
    target,
    h('button', { type: 'submit' }, 'Move'),
  );
}

function details(job, act) {
  const rows = [
    ['Queue', job.queue],
    ['Type', job.type],
    ['Owner', job.user ?? '—'],
    ['Host', job.host ?? '(queue default)'],
    ['Priority', String(job.priority)],
    [
      'Task',
      job.task === null
        ? '—'
        : h(
            'a',
            { href: `#/tasks?queue=${enc(job.queue)}&task=${enc(job.task)}` },
            `${job.task} #${job.task_index}`,
          ),
    ],
    ['Submitted', time(job.submitted_at)],
    ['Started', time(job.started_at)],
    ['Ended', time(job.ended_at)],
    ['Not before', time(job.not_before)],
    [
      'After',
      job.after.length === 0
        ? '—'
        : job.after.map((a) => h('a', { href: `#/job/${enc(a)}`, class: 'mono', title: a }, shortId(a), ' ')),
    ],
    ['Exit', job.exit_code === null ? (job.signal ?? '—') : String(job.exit_code)],
  ];
  if (job.error !== null) rows.push(['Error', job.error]);
  const params = Object.entries(job.params);
  return h(
    'div',
    { class: 'panel' },
    h('h2', null, 'Details'),
    h(
      'dl',
      { class: 'kv' },
      rows.map(([k, v]) => [h('dt', null, k), h('dd', null, v)]),
    ),
    h('h2', null, 'Parameters'),
    params.length === 0
      ? h('p', { class: 'muted' }, 'None.')
      : h(
          'dl',
          { class: 'kv' },
          params.map(([k, v]) => [h('dt', null, k), h('dd', { class: 'mono' }, String(v))]),
        ),
    h('h2', null, 'Notes'),
    notesBlock(job, act),
  );
}

function notesBlock(job, act) {
  const text = h('p', { class: 'notes' }, job.notes ?? '');
  if (!can('ManageJobs', { queue: job.queue }) || job.status === 'running')
    return job.notes === null ? h('p', { class: 'muted' }, 'None.') : text;
  const area = h('textarea', { id: 'notes', rows: 3, value: job.notes ?? '' });
  return h(
    'form',
    {
      class: 'stack',
      onsubmit: (event) => {
        event.preventDefault();
        void act(() => api.put(`/job/${enc(job.id)}`, { notes: area.value === '' ? null : area.value }))();
      },
    },
    job.notes === null ? null : text,
    h('label', { for: 'notes' }, 'Change the notes'),
    area,
    h('button', { type: 'submit' }, 'Save notes'),
  );
}

/** Why a queued job has not started, from what the API tells about it and its queue. */
async function waitPanel(job, signal) {
  if (job.status !== 'queued') return null;
  const reasons = [];
  if (job.not_before !== null && Date.parse(job.not_before) > Date.now())
    reasons.push(['not before ', h('time', { datetime: job.not_before }, absTime(job.not_before))]);
  for (const dep of job.after.slice(0, 20)) {
    try {
      const other = await api.get(`/job/${enc(dep)}`, signal);
      if (other.status !== 'done')
        reasons.push([
          'after job ',
          h('a', { href: `#/job/${enc(dep)}`, class: 'mono' }, shortId(dep)),
          ` (${other.status})`,
        ]);
    } catch {
      reasons.push(['after job ', h('span', { class: 'mono' }, shortId(dep)), ' (not visible)']);
    }
  }
  if (can('ViewQueues', { queue: job.queue })) {
    try {
      const q = await api.get(`/queue/${enc(job.queue)}`, signal);
      if (!q.enabled) reasons.push(['the queue is paused']);
      if (!q.schedule_open) reasons.push([`schedule ${q.schedule_name}: `, scheduleState(q)]);
      if (q.parallel !== null && q.counts.running >= q.parallel)
        reasons.push([`the queue runs its limit of ${q.parallel} jobs`]);
    } catch {
      // the queue's settings are not visible: say less
    }
  }
  if (reasons.length === 0) reasons.push(['its turn (priority, free workers and job-type limits)']);
  return h(
    'div',
    { class: 'panel wait' },
    h('h2', null, 'Waiting for'),
    h(
      'ul',
      null,
      reasons.map((r) => h('li', null, r)),
    ),
  );
}

function historyPanel(job) {
  return h(
    'div',
    { class: 'panel' },
    h('h2', null, 'History'),
    h(
      'ol',
      { class: 'history' },
      (job.history ?? []).map((e) =>
        h(
          'li',
          null,
          time(e.at),
          ' ',
          e.from === null ? '' : [badge(e.from), ' → '],
          badge(e.to),
          e.queue ? ` (${e.queue})` : '',
          h('div', { class: 'muted' }, e.reason),
        ),
      ),
    ),
  );
}

function attemptsPanel(results) {
  if (results.length === 0) return null;
  return h(
    'div',
    { class: 'panel' },
    h('h2', null, 'Attempts'),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        null,
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            ['#', 'Outcome', 'Exit code', 'Signal', 'Host', 'Started', 'Duration', 'Error'].map((c) =>
              h('th', { scope: 'col' }, c),
            ),
          ),
        ),
        h(
          'tbody',
          null,
          results.map((r) =>
            h(
              'tr',
              null,
              h('td', { 'data-label': '#' }, String(r.attempt)),
              h('td', { 'data-label': 'Outcome' }, r.outcome),
              h('td', { 'data-label': 'Exit code', class: 'num' }, r.exit_code ?? '—'),
              h('td', { 'data-label': 'Signal' }, r.signal ?? '—'),
              h('td', { 'data-label': 'Host' }, r.host ?? '—'),
              h('td', { 'data-label': 'Started' }, time(r.started_at)),
              h('td', { 'data-label': 'Duration' }, duration(r.duration_ms)),
              h('td', { 'data-label': 'Error' }, r.error ?? ''),
            ),
          ),
        ),
      ),
    ),
  );
}

/** The job's output files, each saved to disk through a download ticket (api.js saveFile). */
function outputsPanel(id, outputs) {
  if (outputs === undefined || (outputs.files.length === 0 && outputs.elsewhere.length === 0)) return null;
  const save = (file) => async () => {
    try {
      await saveFile(`/job/${enc(id)}/outputs/${enc(file.name)}`, file.name.split('/').pop());
    } catch (e) {
      failed(e);
    }
  };
  return h(
    'div',
    { class: 'panel outputs' },
    h('h2', null, 'Output files'),
    h(
      'ul',
      { class: 'files' },
      outputs.files.map((file) =>
        h(
          'li',
          null,
          h(
            'button',
            { type: 'button', class: 'link', 'data-file': file.name, onclick: save(file) },
            `Download ${file.name}`,
          ),
          h(
            'span',
            { class: 'muted' },
            ` ${size(file.size)}`,
            file.param ? ` · parameter ${file.param}` : '',
          ),
        ),
      ),
      outputs.elsewhere.map((o) =>
        h('li', { class: 'muted' }, `${o.param}: ${o.path} (outside the job's folder; not served)`),
      ),
    ),
    outputs.truncated ? h('p', { class: 'muted' }, 'Only the first 1,000 files are listed.') : null,
  );
}

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function logPane(stream, id) {
  const pre = h('pre', {
    id: `log-${stream}`,
    class: 'log',
    tabindex: 0,
    'aria-label': `${stream} of the job`,
    'aria-live': 'off',
  });
  const state = h('span', { class: 'muted' });
  let text = '';
  const pane = {
    read: false,
    el: h(
      'div',
      { class: 'panel' },
      h(
        'div',
        { class: 'row' },
        h('h2', null, stream),
        state,
        h('span', { class: 'spacer' }),
        h(
          'button',
          { type: 'button', onclick: () => download(`${shortId(id)}-${stream}.log`, text) },
          `Download ${stream}`,
        ),
      ),
      pre,
    ),
    async follow(signal) {
      text = '';
      pre.textContent = '';
      replace(state, '● following');
      try {
        await streamText(
          `/job/${enc(id)}/log?stream=${stream}&follow=1`,
          (chunk) => {
            const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
            text += chunk;
            pre.append(chunk);
            if (atEnd) pre.scrollTop = pre.scrollHeight;
          },
          signal,
        );
        pane.read = true;
        replace(state, text === '' ? '(empty)' : '');
      } catch (e) {
        if (!signal.aborted) replace(state, `not readable: ${e.message}`);
      }
    },
  };
  return pane;
}
