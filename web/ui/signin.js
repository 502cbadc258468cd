// Signing in (docs/ui.md, "Signing in"): the prompt for a token, shown in
// place of the views when the server needs one and the page has none that
// works, saying in plain words why; and "Signed in as …" with Sign out in
// the header. On a server without an auth file neither ever shows.

import { h } from './dom.js';
import { validToken } from './auth.js';

// What each reason to sign in says. who is GET /v1/whoami's answer (when
// the token still has one), detail the server's own words.
const REASONS = {
  // No token yet, on a server that needs one.
  needed: () => ({
    title: 'Sign in',
    text: 'This server keeps its registry behind an auth file: every read needs a bearer token. '
      + 'Paste the token of a principal with the reader role (or admin); your operator has it.',
  }),
  // 401: the token the page had, or the one just pasted, is not accepted.
  unauthorized: () => ({
    title: 'Token not accepted',
    text: 'The server does not know this token (HTTP 401): it is mistyped, or it was withdrawn — '
      + 'the server’s auth file no longer holds it. Check it with your operator and sign in again.',
  }),
  // 403: a valid token whose principal may not read.
  forbidden: (who) => ({
    title: 'This token cannot read the registry',
    text: `${who?.name ? `You are signed in as ${principal(who)}, with the role ${list(who.roles)}` : 'This token is valid'}, `
      + 'but showing formations, cells and events needs the reader role (or admin), so the server refuses (HTTP 403). '
      + 'A publisher token, for one, may publish events but not read them. Sign in with another token, '
      + 'or ask your operator to give this principal the reader role.',
  }),
  // 4401: the server closed the live stream: a reload of its auth file
  // removed or changed the principal.
  revoked: (who) => ({
    title: 'Signed out by the server',
    text: `The server withdrew the credentials of this page${who?.name ? ` (${principal(who)})` : ''}: `
      + 'its auth file was reloaded, and the principal was removed or changed. The live stream has stopped '
      + 'and nothing on this page is current any more. Sign in again with a current token.',
  }),
};

const list = (roles) => (roles?.length ? roles.join(', ') : 'none');

export function principal(who) {
  return who.tenant ? `${who.name} (tenant ${who.tenant})` : who.name;
}

// SignIn is the prompt. onSubmit(token) resolves with '' when the token
// was taken (the page then reloads), or with why it was not.
export class SignIn {
  constructor({ onSubmit }) {
    this.onSubmit = onSubmit;
    this.h1 = h('h1', { tabindex: '-1' });
    this.reason = h('p', { class: 'signreason' });
    this.detail = h('p', { class: 'signdetail muted', hidden: true });
    this.input = h('input', {
      id: 'signin-token', type: 'password', name: 'token', autocomplete: 'off', spellcheck: 'false',
      autocapitalize: 'off', 'aria-describedby': 'signin-help signin-status', required: true,
    });
    this.button = h('button', { type: 'submit', class: 'btn primary', text: 'Sign in' });
    this.status = h('p', { id: 'signin-status', class: 'signstatus', role: 'alert' });
    this.form = h('form', { class: 'signform', novalidate: true },
      h('div', { class: 'field' },
        h('label', { for: 'signin-token', text: 'Access token' }),
        h('div', { class: 'signrow' }, this.input, this.button)),
      h('p', { id: 'signin-help', class: 'signhelp muted', text: 'Kept in this browser tab only (session storage) and sent with every request; closing the tab forgets it.' }),
      this.status);
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    this.el = h('section', { class: 'view signin', 'aria-labelledby': 'signin-h' },
      h('div', { class: 'signcard' }, this.h1, this.reason, this.detail, this.form));
    this.h1.id = 'signin-h';
  }

  // show says why a token is needed: kind is a key of REASONS.
  show(kind, who, detail = '') {
    const r = (REASONS[kind] || REASONS.needed)(who);
    this.el.dataset.reason = kind;
    this.h1.textContent = r.title;
    this.reason.textContent = r.text;
    this.detail.textContent = detail ? `The server said: ${detail}` : '';
    this.detail.hidden = !detail;
    this.button.textContent = kind === 'needed' ? 'Sign in' : 'Sign in again';
  }

  focus() {
    this.input.focus({ preventScroll: true });
  }

  async submit() {
    const t = this.input.value.trim();
    const bad = validToken(t);
    if (bad) {
      this.say(bad);
      this.focus();
      return;
    }
    this.button.disabled = true;
    this.say('Checking the token…', true);
    let why = '';
    try {
      why = await this.onSubmit(t);
    } finally {
      this.button.disabled = false;
    }
    if (why) {
      this.say(why);
      this.input.select();
    }
  }

  // say shows a line under the form: an error unless progress.
  say(text, progress = false) {
    this.status.textContent = text;
    this.status.classList.toggle('err', !progress);
  }
}

// WhoBadge is "Signed in as <name> (tenant <t>)" and Sign out, in the
// header; hidden on a server without an auth file.
export class WhoBadge {
  constructor(el, { onSignOut }) {
    this.el = el;
    this.name = h('strong', { class: 'whoname' });
    this.tenant = h('span', { class: 'whotenant' });
    this.out = h('button', { type: 'button', class: 'btn small', text: 'Sign out' });
    this.out.addEventListener('click', onSignOut);
    el.replaceChildren(h('span', { class: 'whotext' }, 'Signed in as ', this.name, this.tenant), this.out);
    el.hidden = true;
  }

  show(who) {
    this.el.hidden = !who || !who.authRequired || !who.name;
    if (this.el.hidden) return;
    this.name.textContent = who.name;
    this.tenant.textContent = who.tenant ? ` (tenant ${who.tenant})` : '';
    this.el.title = `Roles: ${list(who.roles)}`;
  }
}
