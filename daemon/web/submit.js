// The submit form, generated from the job type's parameter list. Values go to the API as typed;
// the API checks them and its messages are shown beside the fields they name.
import { api, ApiError } from './api.js';
import { failed, navigate } from './app.js';
import { h } from './dom.js';
import { canSubmitTo } from './perm.js';

const enc = encodeURIComponent;

export async function submitView(ctx) {
  const queues = (await api.get('/queue', ctx.signal)).filter((q) => canSubmitTo(q.name));
  if (queues.length === 0)
    return h(
      'section',
      null,
      h('h1', null, 'Submit a job'),
      h('p', { class: 'panel' }, 'You may not submit jobs to any queue you can see.'),
    );
  const queue = ctx.params.get('queue') ?? queues[0].name;
  const types = await api.get(`/queue/${enc(queue)}/type`, ctx.signal);
  const type = types.find((t) => t.name === ctx.params.get('type')) ?? types[0];
  const hosts =
    type === undefined ? [] : await api.get(`/queue/${enc(queue)}/type/${enc(type.name)}/host`, ctx.signal);

  const errors = new Map();
  const fieldBox = (name, label, control, hint) => {
    const id = control.id;
    const error = h('p', { id: `${id}-error`, class: 'field-error' });
    errors.set(name, { error, control });
    control.setAttribute('aria-describedby', `${id}-error${hint ? ` ${id}-hint` : ''}`);
    return h(
      'div',
      { class: 'field' },
      h('label', { for: id }, label),
      control,
      hint ? h('p', { id: `${id}-hint`, class: 'hint' }, hint) : null,
      error,
    );
  };
  const choose = (changes) =>
    navigate(`#/submit?${new URLSearchParams({ queue, type: type?.name ?? '', ...changes })}`);

  const queueSelect = h(
    'select',
    { id: 's-queue', value: queue, onchange: (e) => choose({ queue: e.target.value, type: '' }) },
    queues.map((q) => h('option', { value: q.name }, q.title)),
  );
  const typeSelect = h(
    'select',
    { id: 's-type', value: type?.name ?? '', onchange: (e) => choose({ type: e.target.value }) },
    types.map((t) => h('option', { value: t.name }, t.title)),
  );
  if (type === undefined)
    return h(
      'section',
      null,
      h('h1', null, 'Submit a job'),
      fieldBox('queue', 'Queue', queueSelect),
      h('p', { class: 'panel' }, 'You may submit no job type to this queue.'),
    );

  const params = type.params.map((p) => paramControl(p));
  const name = h('input', { id: 's-name', maxlength: 200 });
  const notes = h('textarea', { id: 's-notes', rows: 2 });
  const host = h(
    'select',
    { id: 's-host' },
    hosts.map((x) => h('option', { value: x }, x === '__default__' ? '(queue default)' : x)),
  );
  const priority = h('input', { id: 's-priority', type: 'number', step: 1, value: 0 });
  const notBefore = h('input', { id: 's-not_before', type: 'datetime-local' });
  const ranged = type.params.filter((p) => p.type === 'Integer');
  const asTask = h('input', { id: 's-astask', type: 'checkbox' });
  const taskName = h('input', { id: 's-task', autocomplete: 'off' });
  const rangeParam = h(
    'select',
    { id: 's-range-param' },
    ranged.map((p) => h('option', { value: p.name }, p.title)),
  );
  const from = h('input', { id: 's-from', type: 'number', step: 1, value: 1, class: 'short' });
  const to = h('input', { id: 's-to', type: 'number', step: 1, value: 10, class: 'short' });
  const step = h('input', { id: 's-step', type: 'number', step: 1, min: 1, value: 1, class: 'short' });
  const taskBox = h(
    'fieldset',
    { class: 'task', hidden: true },
    h('legend', null, 'Task: one job per value of a range'),
    fieldBox('task', 'Task name', taskName),
    fieldBox('range', 'Parameter', rangeParam),
    h(
      'div',
      { class: 'row' },
      fieldBox('from', 'From', from),
      fieldBox('to', 'To', to),
      fieldBox('step', 'Step', step),
    ),
  );
  asTask.addEventListener('change', () => (taskBox.hidden = !asTask.checked));
  const summary = h('div', { class: 'field-error', role: 'alert' });

  const form = h(
    'form',
    {
      class: 'panel stack submit',
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        for (const { error, control } of errors.values()) {
          error.textContent = '';
          control.removeAttribute('aria-invalid');
        }
        summary.textContent = '';
        const body = { type: type.name, params: {} };
        for (const p of params) {
          const value = p.read();
          if (value !== undefined) body.params[p.spec.name] = value;
        }
        if (asTask.checked && ranged.length > 0) {
          body.params[rangeParam.value] = { range: `${from.value}..${to.value}..${step.value || 1}` };
          if (taskName.value.trim() !== '') body.task = taskName.value.trim();
        }
        if (name.value.trim() !== '') body.name = name.value.trim();
        if (notes.value !== '') body.notes = notes.value;
        if (host.value !== '' && host.value !== '__default__') body.host = host.value;
        if (priority.value !== '' && Number(priority.value) !== 0) body.priority = Number(priority.value);
        if (notBefore.value !== '') body.not_before = new Date(notBefore.value).toISOString();
        try {
          const accepted = await api.post(`/queue/${enc(queue)}`, body);
          if (accepted.task !== undefined) navigate(`#/tasks?queue=${enc(queue)}&task=${enc(accepted.task)}`);
          else navigate(`#/job/${enc(accepted.jobs[0])}`);
        } catch (e) {
          if (!(e instanceof ApiError) || e.details.length === 0) return failed(e);
          summary.textContent = `The job was not accepted: ${e.message}`;
          for (const d of e.details) {
            const key = (d.field ?? '').replace(/^params\./, '').split('.')[0];
            const target =
              errors.get(key) ??
              (d.field?.startsWith('params.') && asTask.checked ? errors.get('range') : undefined);
            if (target === undefined) continue;
            target.error.textContent = d.message;
            target.control.setAttribute('aria-invalid', 'true');
          }
          form.querySelector('[aria-invalid="true"]')?.focus();
        }
      },
    },
    h(
      'div',
      { class: 'row' },
      fieldBox('queue', 'Queue', queueSelect),
      fieldBox('type', 'Job type', typeSelect),
    ),
    type.params.length === 0
      ? null
      : h(
          'fieldset',
          null,
          h('legend', null, `Parameters of ${type.title}`),
          params.map((p) => fieldBox(p.spec.name, p.label, p.control, p.hint)),
        ),
    ranged.length === 0
      ? null
      : h(
          'div',
          { class: 'check' },
          asTask,
          h('label', { for: 's-astask' }, 'Submit as a task over a range'),
        ),
    ranged.length === 0 ? null : taskBox,
    h(
      'details',
      null,
      h('summary', null, 'More: name, notes, host, priority, start time'),
      fieldBox('name', 'Name', name),
      fieldBox('notes', 'Notes', notes),
      fieldBox('host', 'Host', host),
      fieldBox('priority', 'Priority', priority),
      fieldBox('not_before', 'Not before', notBefore),
    ),
    summary,
    h('button', { type: 'submit', class: 'primary' }, 'Submit'),
  );
  return h('section', null, h('h1', null, 'Submit a job'), form);
}

/** One input per parameter type; `read` gives the value to send (undefined: leave to the default). */
function paramControl(spec) {
  const id = `p-${spec.name}`;
  const label = spec.title === spec.name ? spec.name : `${spec.title} (${spec.name})`;
  const def = spec.default;
  const range = [spec.min === null ? null : `≥ ${spec.min}`, spec.max === null ? null : `≤ ${spec.max}`]
    .filter(Boolean)
    .join(', ');
  switch (spec.type) {
    case 'Boolean': {
      const control = h(
        'select',
        { id, value: def === null ? '' : String(def) },
        h('option', { value: '' }, '(not set)'),
        h('option', { value: 'true' }, 'yes'),
        h('option', { value: 'false' }, 'no'),
      );
      return {
        spec,
        label,
        control,
        hint: 'Boolean',
        read: () => (control.value === '' ? undefined : control.value === 'true'),
      };
    }
    case 'Choice': {
      const control = h(
        'select',
        { id, value: def ?? '' },
        def === null ? h('option', { value: '' }, '(choose)') : null,
        (spec.choices ?? []).map((c) => h('option', { value: c }, c)),
      );
      return {
        spec,
        label,
        control,
        hint: null,
        read: () => (control.value === '' ? undefined : control.value),
      };
    }
    case 'Integer':
    case 'Float': {
      const control = h('input', {
        id,
        type: 'text',
        inputmode: spec.type === 'Integer' ? 'numeric' : 'decimal',
        value: def ?? '',
        autocomplete: 'off',
      });
      // Sent as typed (a number when it reads as one), so the API's message names what was wrong.
      const read = () => {
        const text = control.value.trim();
        if (text === '') return undefined;
        const n = Number(text);
        return Number.isFinite(n) ? n : text;
      };
      return { spec, label, control, hint: [spec.type, range].filter(Boolean).join(', '), read };
    }
    case 'InputFile':
    case 'OutputFile': {
      const control = h('input', { id, type: 'text', value: def ?? '', autocomplete: 'off', class: 'mono' });
      const hint =
        spec.type === 'InputFile' ? 'Path of an input file on the host' : 'Path the job writes its output to';
      return {
        spec,
        label,
        control,
        hint,
        read: () => (control.value.trim() === '' ? undefined : control.value.trim()),
      };
    }
    default: {
      const control = h('input', { id, type: 'text', value: def ?? '', autocomplete: 'off' });
      return {
        spec,
        label,
        control,
        hint: spec.type === 'String' ? null : spec.type,
        read: () => (control.value === '' ? undefined : control.value),
      };
    }
  }
}
