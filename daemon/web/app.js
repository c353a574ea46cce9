/* global document, location, window */
// The page's shell: sign-in, the hash router (#/jobs?state=running, #/job/<id>), the live event
// stream shared by every view, and the messages shown when something fails.
import { api, ApiError, followEvents, signedIn, signOut } from './api.js';
import { h, replace } from './dom.js';
import { hostsView } from './hosts.js';
import { jobView } from './job.js';
import { jobsView } from './jobs.js';
import { setMe, whoami } from './perm.js';
import { queuesView } from './queues.js';
import { signInView } from './signin.js';
import { submitView } from './submit.js';
import { tasksView } from './tasks.js';

const VIEWS = {
  queues: queuesView,
  jobs: jobsView,
  job: jobView,
  submit: submitView,
  tasks: tasksView,
  hosts: hostsView,
};

const main = document.getElementById('main');
const flashBox = document.getElementById('flash');
const liveBox = document.getElementById('live');
const whoBox = document.getElementById('who');

let methods = [];
let view; // { abort, listeners } of the view on screen
let stream; // AbortController of the event stream

function route() {
  const raw = location.hash.replace(/^#\/?/, '');
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  const [name, ...rest] = path.split('/');
  return {
    name: name && VIEWS[name] ? name : 'queues',
    arg: rest.map(decodeURIComponent).join('/'),
    params: new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)),
  };
}

export function navigate(hash) {
  if (location.hash === hash) void render();
  else location.hash = hash;
}

export function flash(message, kind = 'error') {
  replace(
    flashBox,
    h('span', null, message),
    h(
      'button',
      { type: 'button', class: 'link', 'aria-label': 'Dismiss', onclick: () => (flashBox.hidden = true) },
      '×',
    ),
  );
  flashBox.className = `flash ${kind}`;
  flashBox.hidden = false;
}

/** Show what the API said; a 401 means the session ended: sign in again. */
export function failed(error) {
  // A request cut short because the user went to another view is no failure to show.
  if (error?.name === 'AbortError') return;
  if (error instanceof ApiError && error.status === 401 && methods.length > 0) {
    signOut();
    void start();
    return;
  }
  if (error instanceof ApiError && error.status === 403) flash(`Not permitted: ${error.message}`);
  else flash(error instanceof Error ? error.message : String(error));
}

/** A panel for a view that could not load. */
export function errorPanel(error) {
  const forbidden = error instanceof ApiError && error.status === 403;
  return h(
    'section',
    { class: 'panel error', role: 'alert' },
    h('h1', null, forbidden ? 'Not permitted' : 'Could not load this view'),
    h('p', null, error instanceof Error ? error.message : String(error)),
  );
}

async function render() {
  view?.abort.abort();
  const abort = new AbortController();
  const listeners = new Set();
  view = { abort, listeners };
  const r = route();
  for (const a of document.querySelectorAll('#nav a'))
    if (a.getAttribute('href') === `#/${r.name}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  const ctx = {
    signal: abort.signal,
    arg: r.arg,
    params: r.params,
    on: (fn) => listeners.add(fn),
  };
  try {
    const el = await VIEWS[r.name](ctx);
    if (abort.signal.aborted) return;
    replace(main, el);
    document.title = `${main.querySelector('h1')?.textContent ?? 'batchd'} · batchd`;
  } catch (error) {
    if (abort.signal.aborted) return;
    if (error instanceof ApiError && error.status === 401 && methods.length > 0) return failed(error);
    replace(main, errorPanel(error));
  }
}

function startEvents() {
  stream?.abort();
  stream = new AbortController();
  let wasLive = false;
  void followEvents(
    (type, payload) => {
      for (const fn of view?.listeners ?? []) fn(type, payload);
    },
    (state) => {
      if (state === 'unauthorized') return failed(new ApiError(401, undefined));
      replace(liveBox, state === 'live' ? '● live' : '○ reconnecting…');
      liveBox.className = `live ${state}`;
      // Events may have been missed while away: the view reads afresh.
      if (state === 'live' && wasLive) for (const fn of view?.listeners ?? []) fn('reconnected', {});
      if (state === 'live') wasLive = true;
    },
    stream.signal,
  );
}

function showWho() {
  const me = whoami();
  if (methods.length === 0) return replace(whoBox);
  replace(
    whoBox,
    h('span', null, me.name),
    ' ',
    h(
      'button',
      {
        type: 'button',
        class: 'link',
        onclick: () => {
          signOut();
          void start();
        },
      },
      'Sign out',
    ),
  );
}

async function start() {
  stream?.abort();
  view?.abort.abort();
  // A returning tab (a token in sessionStorage) asks who it is at the same time as which methods.
  const who = signedIn() ? api.get('/whoami') : undefined;
  who?.catch(() => undefined);
  try {
    methods = (await api.options('/')) ?? [];
  } catch (error) {
    replace(main, errorPanel(error));
    return;
  }
  if (methods.length === 0) {
    // No authentication: everyone is a superuser (the daemon then listens on loopback only).
    setMe({ name: 'anonymous', superuser: true, grants: [] });
    showWho();
    startEvents();
    await render();
    return;
  }
  if (!signedIn()) {
    replace(whoBox);
    replace(liveBox);
    replace(
      main,
      signInView(methods, () => void start()),
    );
    return;
  }
  try {
    setMe(await (who ?? api.get('/whoami')));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      signOut();
      replace(
        main,
        signInView(methods, () => void start(), error.message),
      );
      return;
    }
    replace(main, errorPanel(error));
    return;
  }
  showWho();
  startEvents();
  await render();
}

window.addEventListener('hashchange', () => void render());
void start();
