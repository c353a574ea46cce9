/* global document */
// The page's only way to the daemon: its public HTTP API, same origin. Credentials travel in the
// Authorization header only, never in a URL: a token is kept in sessionStorage (this tab, until it
// closes), a password in memory (gone on reload). `credentials: 'omit'` keeps the browser from
// adding credentials of its own and from showing its own sign-in dialog on a 401.

const TOKEN_KEY = 'batchd.token';
let basic;

export class ApiError extends Error {
  constructor(status, body) {
    const error = body && typeof body === 'object' ? body.error : undefined;
    super(error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = error?.code ?? String(status);
    this.details = error?.details ?? [];
  }
}

function authHeader() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) return `Bearer ${token}`;
  if (basic) return `Basic ${basic}`;
  return undefined;
}

export function signedIn() {
  return authHeader() !== undefined;
}

export function useToken(token) {
  basic = undefined;
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function usePassword(user, password) {
  sessionStorage.removeItem(TOKEN_KEY);
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  basic = btoa(String.fromCharCode(...bytes));
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  basic = undefined;
}

function headers(extra) {
  const out = { ...extra };
  const auth = authHeader();
  if (auth !== undefined) out.Authorization = auth;
  return out;
}

async function request(method, path, body, signal) {
  const init = {
    method,
    headers: headers(
      body === undefined
        ? { Accept: 'application/json' }
        : { Accept: 'application/json', 'Content-Type': 'application/json' },
    ),
    credentials: 'omit',
    signal,
  };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  const text = await res.text();
  let data = text;
  try {
    data = text === '' ? undefined : JSON.parse(text);
  } catch {
    // a text body (a log)
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export const api = {
  get: (path, signal) => request('GET', path, undefined, signal),
  post: (path, body, signal) => request('POST', path, body, signal),
  put: (path, body, signal) => request('PUT', path, body, signal),
  del: (path, signal) => request('DELETE', path, undefined, signal),
  options: (path, signal) => request('OPTIONS', path, undefined, signal),
};

/** GET `path` with the session's credentials; an answer that is not 2xx becomes an ApiError. */
async function getOk(path, signal) {
  const res = await fetch(path, { headers: headers({}), credentials: 'omit', signal });
  if (!res.ok) {
    let body;
    try {
      body = JSON.parse(await res.text());
    } catch {
      body = undefined;
    }
    throw new ApiError(res.status, body);
  }
  return res;
}

/**
 * Save a file (an output, an archive) to disk by plain navigation, so the browser streams it to
 * disk however large it is. A link cannot carry the Authorization header, so the page first asks
 * for a download ticket with it (`POST <path>/ticket`): a one-use, one-minute link to that one file
 * for this user, which is not the token. `name`: the file name to suggest.
 */
export async function saveFile(path, name, signal) {
  const { url } = await request('POST', `${path}/ticket`, undefined, signal);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
}

/** GET a text body and hand it over chunk by chunk as it arrives (a followed log). */
export async function streamText(path, onText, signal) {
  const res = await getOk(path, signal);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    onText(value);
  }
}

/**
 * Follow GET /events (Server-Sent Events) with fetch(), so the Authorization header goes along
 * (EventSource cannot send one, and a token in the URL would end up in logs). Reconnects with a
 * growing pause; `onState` hears 'live' | 'offline'. Runs until `signal` aborts.
 */
export async function followEvents(onEvent, onState, signal) {
  let pause = 1000;
  while (!signal.aborted) {
    try {
      let buffer = '';
      let connected = false;
      await streamText(
        '/events',
        (text) => {
          if (!connected) {
            connected = true;
            pause = 1000;
            onState('live');
          }
          buffer += text.replace(/\r\n?/g, '\n');
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            dispatch(block, onEvent);
          }
        },
        signal,
      );
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof ApiError && error.status === 401) {
        onState('unauthorized');
        return;
      }
    }
    if (signal.aborted) return;
    onState('offline');
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, pause);
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    pause = Math.min(pause * 2, 30_000);
  }
}

function dispatch(block, onEvent) {
  let type = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') type = value;
    else if (field === 'data') data.push(value);
  }
  if (data.length === 0) return;
  try {
    onEvent(type, JSON.parse(data.join('\n')));
  } catch {
    // not JSON: not one of ours
  }
}
