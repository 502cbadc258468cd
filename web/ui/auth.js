// The page's credentials on a server that runs with an auth file
// (docs/ui.md, "Signing in"): the bearer token the reader signed in with,
// kept in this tab's sessionStorage only — never in localStorage, a
// cookie or the URL — and sent as Authorization on every request and as
// a WebSocket subprotocol on the live stream (browsers cannot set headers
// on a WebSocket). A server without an auth file needs none of this: no
// token is stored, and nothing is sent.

const KEY = 'cellos.token';

// The subprotocol the server speaks, and the prefix of the one that
// carries the token (Kubernetes' scheme; the server never echoes it).
export const WS_PROTOCOL = 'cellos.v1';
const BEARER_PROTOCOL = 'base64url.bearer.cellos.';

// token is the stored token, '' when none (or when storage is refused).
export function token() {
  try {
    return sessionStorage.getItem(KEY) || '';
  } catch {
    return '';
  }
}

export function setToken(t) {
  try {
    sessionStorage.setItem(KEY, t);
  } catch {
    // A browser that refuses storage: the page cannot sign in.
  }
}

export function clearToken() {
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // Nothing was stored.
  }
}

// validToken says why a pasted token cannot be one, '' when it can: a
// token is one word of printable ASCII (an auth file's secret is one word,
// and a header cannot carry anything else).
export function validToken(t) {
  if (!t) return 'Paste a token first.';
  if (!/^[\x21-\x7e]+$/.test(t)) return 'A token is one word of printable ASCII characters, without spaces.';
  return '';
}

export function authHeaders(t = token()) {
  return t ? { Authorization: `Bearer ${t}` } : {};
}

// wsProtocols are the subprotocols the page offers on /ws/events.
export function wsProtocols(t = token()) {
  return t ? [WS_PROTOCOL, BEARER_PROTOCOL + base64url(t)] : [WS_PROTOCOL];
}

function base64url(s) {
  let bin = '';
  for (const b of new TextEncoder().encode(s)) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

// whoami asks GET /v1/whoami with t: {status, body}. A network failure
// throws.
export async function whoami(t = token()) {
  const res = await fetch('/v1/whoami', { headers: authHeaders(t) });
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  return { status: res.status, ok: res.ok, body };
}

// canRead: the principal may read the registry and the stream.
export const canRead = (who) => !!who && (who.roles.includes('reader') || who.roles.includes('admin'));

// A 401 or 403 from any read is told to one listener (the app), which
// shows the sign-in prompt instead of retrying with a dead token.
let listener = null;
export function onAuthFailure(fn) {
  listener = fn;
}
export function authFailed(err) {
  listener?.(err);
}
