/* global document, Node */
// Building the page from data without ever parsing data as HTML: every string becomes a text node
// or an attribute value, so a job name like "<script>" shows as those characters.

/** h('a', {href: '#/x', class: 'y', onclick: fn}, 'text', child, [more]) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  let value;
  for (const [key, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (key.startsWith('on') && typeof v === 'function') el.addEventListener(key.slice(2), v);
    else if (key === 'class') el.className = v;
    else if (key === 'value') value = v;
    else if (key === 'checked' || key === 'selected') el[key] = Boolean(v);
    else el.setAttribute(key, v === true ? '' : String(v));
  }
  add(el, children);
  if (value !== undefined) el.value = String(value);
  return el;
}

export function add(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return add(el, children);
}

/** The random part of a job id (20261121T093000.123Z-k3f9qa-slug → k3f9qa): unique enough to read. */
export function shortId(id) {
  return /^\d{8}T\d{6}\.\d{3}Z-([a-z0-9]{6})/.exec(id)?.[1] ?? id;
}

const units = [
  ['year', 31_536_000],
  ['month', 2_592_000],
  ['day', 86_400],
  ['hour', 3_600],
  ['minute', 60],
  ['second', 1],
];
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' });
const absolute = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

export function relTime(iso, now = Date.now()) {
  const seconds = (Date.parse(iso) - now) / 1000;
  for (const [unit, size] of units) {
    if (Math.abs(seconds) >= size || unit === 'second')
      return relative.format(Math.round(seconds / size), unit);
  }
  return '';
}

export function absTime(iso) {
  return absolute.format(new Date(iso));
}

/** A <time> showing "3 min. ago", the absolute time on hover and to screen readers on focus. */
export function time(iso) {
  if (iso === null || iso === undefined) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: iso, title: absTime(iso) }, relTime(iso));
}

export function duration(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  const m = Math.floor(s / 60);
  return m < 120 ? `${m} min ${s % 60} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function badge(state) {
  return h('span', { class: `badge s-${state}` }, state);
}

/** Save text the page already holds (a log it shows, collected results) as a file. */
export function download(name, data, type = 'text/plain') {
  const url = URL.createObjectURL(data instanceof Blob ? data : new Blob([data], { type }));
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Calls `fn` at most once per `ms`, after the last call (live updates arrive in bursts). */
export function debounce(fn, ms) {
  let timer;
  const run = () => {
    timer = undefined;
    fn();
  };
  const debounced = () => {
    if (timer === undefined) timer = setTimeout(run, ms);
  };
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
}
