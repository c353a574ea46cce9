// Sign-in: a user name and password (Basic; exchanged for a short-lived token when the daemon
// accepts tokens, so the password is not kept), or a token pasted in.
import { api, ApiError, usePassword, useToken } from './api.js';
import { h } from './dom.js';

export function signInView(methods, done, message) {
  const error = h('p', { id: 'signin-error', class: 'field-error', role: 'alert' }, message ?? '');
  const fail = (e) => {
    error.textContent =
      e instanceof ApiError && e.status === 401 ? `Sign-in failed: ${e.message}` : String(e.message ?? e);
  };
  const forms = [];
  if (methods.includes('basic')) {
    const user = h('input', {
      id: 'signin-user',
      name: 'username',
      autocomplete: 'username',
      required: true,
    });
    const password = h('input', {
      id: 'signin-password',
      name: 'password',
      type: 'password',
      autocomplete: 'current-password',
      required: true,
    });
    forms.push(
      h(
        'form',
        {
          class: 'panel stack',
          'aria-labelledby': 'signin-basic',
          onsubmit: async (event) => {
            event.preventDefault();
            usePassword(user.value, password.value);
            try {
              await api.get('/whoami');
              if (methods.includes('token')) {
                const created = await api.post('/token', { name: 'web page' });
                useToken(created.token);
              }
              done();
            } catch (e) {
              fail(e);
            }
          },
        },
        h('h2', { id: 'signin-basic' }, 'User name and password'),
        h('label', { for: 'signin-user' }, 'User name'),
        user,
        h('label', { for: 'signin-password' }, 'Password'),
        password,
        h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
      ),
    );
  }
  if (methods.includes('token')) {
    const token = h('input', {
      id: 'signin-token',
      name: 'token',
      type: 'password',
      autocomplete: 'off',
      required: true,
    });
    forms.push(
      h(
        'form',
        {
          class: 'panel stack',
          'aria-labelledby': 'signin-tokenh',
          onsubmit: async (event) => {
            event.preventDefault();
            useToken(token.value.trim());
            try {
              await api.get('/whoami');
              done();
            } catch (e) {
              fail(e);
            }
          },
        },
        h('h2', { id: 'signin-tokenh' }, 'Token'),
        h('label', { for: 'signin-token' }, 'Token (from batch token or POST /token)'),
        token,
        h('button', { type: 'submit', class: 'primary' }, 'Sign in with token'),
      ),
    );
  }
  if (forms.length === 0)
    forms.push(
      h(
        'p',
        { class: 'panel' },
        `This daemon authenticates through a proxy (${methods.join(', ')}); open the page through it.`,
      ),
    );
  return h(
    'section',
    { class: 'signin' },
    h('h1', null, 'Sign in to batchd'),
    error,
    h('div', { class: 'cols' }, forms),
  );
}
