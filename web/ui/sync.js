// Keeps a Store in step with the server (docs/websocket.md):
//
//   1. load the snapshot over HTTP: the registry's summary (GET
//      /v1/summary, one request, whatever the registry's size), which gives
//      the cursor and the stream's epoch; the views read their rows
//      themselves, a page at a time (query.js);
//   2. open /ws/events?since=<cursor>&epoch=<epoch>&batch=1 and apply every
//      event in sequence order, whether it came alone (an "event" frame) or
//      with others in an "events" frame (batch=1), in the frame's order; an
//      event at or below the cursor is a repeat and is dropped, so no event
//      is applied or shown twice;
//   3. when the socket drops, reconnect with exponential backoff and full
//      jitter (capped at 30 s) from the last applied sequence;
//   4. on close 4410 (the cursor fell below the retained log, or the stream
//      was recreated) load a fresh snapshot, swap it in, and go on. When the
//      4410 names a new epoch and the snapshot is still of the old one (the
//      server is rebuilding from the recreated stream and serves its old
//      view until then), keep the old store and load again after a backoff;
//   5. on a server with an auth file, every request carries the page's
//      token (auth.js). A 401 or 403 of a read, a socket the server closes
//      with 4401 (its principal withdrawn), or a socket refused at its
//      upgrade (seen only as 1006: /v1/whoami tells why) halts the page:
//      it asks for a token instead of retrying with a dead one.
//
// Rendering is not done here: every change calls onChange, and the app
// batches those into one render per animation frame.

import { Store } from './store.js';
import { authFailed, authHeaders, wsProtocols } from './auth.js';

export const CLOSE_RESYNC = 4410;
export const CLOSE_UNAUTHORIZED = 4401;
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30000;

export class HTTPError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.code = (body && body.error && body.error.code) || '';
  }
}

// getJSON reads an API resource with the page's token. A 401 or 403 is
// told to the app (auth.js) before it is thrown, unless quiet.
export async function getJSON(path, signal, { quiet = false } = {}) {
  // Plain requests (the API answers no-store anyway), so that the
  // snapshot preloaded by index.html is taken as it is when the page has
  // no token to send.
  const res = await fetch(path, { signal, headers: authHeaders() });
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!res.ok) {
    const err = new HTTPError(res.status, body);
    if (!quiet && (res.status === 401 || res.status === 403)) authFailed(err);
    throw err;
  }
  return body;
}

// describeError says in plain words why a read failed.
export function describeError(err) {
  if (!(err instanceof HTTPError)) {
    return 'The server did not answer: it may be down or restarting, or the network is gone.';
  }
  const what = `HTTP ${err.status}${err.code ? ` ${err.code}` : ''}`;
  const said = err.body?.error?.message ? `: ${err.body.error.message}` : '';
  if (err.code === 'not_ready') return `The server is starting: it is still replaying its event log (${what}).`;
  if (err.status === 503) return `The server is unavailable for now (${what}${said}).`;
  if (err.status >= 500) return `The server failed to answer (${what}${said}).`;
  return `The server refused the request (${what}${said}).`;
}

// backoffDelay is the wait before reconnect attempt n (0-based): an
// exponential ceiling with full jitter, so that many pages reconnecting to
// a restarted server spread out. The floor keeps a retry from being instant.
export function backoffDelay(n, rand = Math.random) {
  const ceil = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** n);
  return Math.max(250, Math.round(ceil * rand()));
}

// loadSnapshot reads the summary (of one tenant's formations and cells
// when tenant is set) into a new Store.
export async function loadSnapshot(signal, tenant = '') {
  const path = tenant ? `/v1/summary?${new URLSearchParams({ tenant })}` : '/v1/summary';
  return new Store(await getJSON(path, signal), tenant);
}

// Sync owns the connection. Its public state is read by the header:
//   phase: 'loading' | 'connecting' | 'live' | 'reconnecting' | 'resyncing' | 'waiting' | 'stopped'
//     | 'signin' (halted: the page needs a token)
export class Sync {
  constructor({ onChange, onEvent, onResynced, onStore, tenant, onRevoked, checkAuth, onLive }) {
    this.onChange = onChange; // something visible changed
    this.onEvent = onEvent; // (seq, subject, event, live) for the feed
    this.onResynced = onResynced; // (info) after a 4410 resync
    this.onStore = onStore; // (store, {epochChanged, previous}) a new snapshot replaced the old one
    this.tenant = tenant || (() => ''); // the tenant whose counts the summary holds
    this.onRevoked = onRevoked || (() => {}); // (reason) the server closed the socket with 4401
    this.onLive = onLive || (() => {}); // the stream's hello arrived: the server answers
    // checkAuth() resolves true when a refused socket was refused for its
    // credentials (the app then halts the page), false to retry as usual.
    this.checkAuth = checkAuth || (() => Promise.resolve(false));
    this.store = null;
    this.phase = 'loading';
    this.attempt = 0;
    this.retryAt = 0;
    this.lastError = '';
    this.lastFailure = null; // the error of the last failed snapshot read
    this.hello = null;
    this.ws = null;
    this.timer = 0;
    this.stopped = false;
    this.connects = 0;
    this.batchFrames = 0; // frames of several events (batch=1) received
    this.lastResyncAt = 0;
  }

  start() {
    this.stopped = false;
    this.resync('loading');
  }

  setPhase(p, err = '') {
    this.phase = p;
    this.lastError = err;
    this.onChange();
  }

  // resync loads a snapshot and connects from its cursor. The old store
  // stays on screen until the new one is in.
  async resync(phase, info) {
    clearTimeout(this.timer);
    this.setPhase(phase);
    const ctl = new AbortController();
    this.loading = ctl;
    try {
      const store = await loadSnapshot(ctl.signal, this.tenant());
      if (this.stopped) return;
      // Still the epoch the server refused: it is rebuilding. Any other
      // epoch (the one named, or a newer one) is taken.
      if (info && info.epoch && this.store && store.epoch === this.store.epoch && store.epoch !== info.epoch) {
        this.retry(() => this.resync(phase, info), 'resyncing', 'the server is rebuilding from the recreated stream');
        return;
      }
      const previous = this.store;
      const epochChanged = previous && previous.epoch !== store.epoch;
      this.store = store;
      this.lastFailure = null;
      this.onStore(store, { epochChanged, previous });
      if (info) this.onResynced({ ...info, cursor: store.cursor });
      this.connect();
    } catch (err) {
      // A 401 or 403 halted the page already (getJSON told the app).
      if (this.stopped) return;
      this.lastFailure = err;
      // 503: the server is replaying its log; anything else: unreachable.
      const waiting = err instanceof HTTPError && err.status === 503;
      this.retry(() => this.resync(phase, info), waiting ? 'waiting' : 'reconnecting', err.message);
    }
  }

  connect() {
    clearTimeout(this.timer);
    if (this.stopped) return;
    const s = this.store;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const q = new URLSearchParams({ since: String(s.cursor) });
    if (s.epoch) q.set('epoch', s.epoch);
    // Several events per frame when they are ready together: one message
    // and one parse for a burst instead of one per event.
    q.set('batch', '1');
    // The token rides as a subprotocol beside cellos.v1; the server
    // answers cellos.v1.
    const ws = new WebSocket(`${proto}//${location.host}/ws/events?${q}`, wsProtocols());
    this.ws = ws;
    this.connects++;
    if (this.phase !== 'reconnecting' && this.phase !== 'waiting') this.setPhase('connecting');
    ws.onopen = () => {
      ws.opened = true;
    };
    ws.onmessage = (m) => this.frame(ws, m.data);
    ws.onclose = (e) => this.closed(ws, e);
  }

  frame(ws, data) {
    if (ws !== this.ws) return;
    let f;
    try {
      f = JSON.parse(data);
    } catch {
      return;
    }
    if (f.type === 'hello') {
      this.hello = f;
      this.attempt = 0;
      this.setPhase('live');
      this.onLive();
      return;
    }
    let applied = false;
    if (f.type === 'event') {
      applied = this.applyEvent(f);
    } else if (f.type === 'events' && Array.isArray(f.events)) {
      // A batch frame: its events in order, one change for all of them.
      this.batchFrames++;
      for (const e of f.events) applied = this.applyEvent(e) || applied;
    }
    if (applied) this.onChange();
  }

  // applyEvent applies one event {seq, subject, event} of a frame and
  // reports whether it was new.
  applyEvent(e) {
    if (!e || typeof e.seq !== 'number') return false;
    const s = this.store;
    // Repeats (at or below the cursor) are dropped: never applied twice.
    if (e.seq <= s.cursor) return false;
    // The subject goes to the fold: its tenant form names the event's tenant.
    s.apply(e.seq, e.subject, e.event, e.time);
    if (this.hello && e.seq > this.hello.lastSeq) this.hello.lastSeq = e.seq;
    this.onEvent(e.seq, e.subject, e.event, true);
    return true;
  }

  closed(ws, e) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.lastClose = { code: e.code, reason: e.reason, clean: e.wasClean };
    if (this.stopped) return;
    if (e.code === CLOSE_RESYNC) {
      let info = {};
      try {
        info = JSON.parse(e.reason || '{}');
      } catch {
        info = {};
      }
      // A 4410 soon after a resync is retried with backoff, so a server
      // that keeps refusing the cursor cannot spin the page.
      const recent = Date.now() - this.lastResyncAt < 5000;
      this.lastResyncAt = Date.now();
      if (recent) {
        this.retry(() => this.resync('resyncing', info), 'resyncing', 'the server refused the cursor again');
      } else {
        this.resync('resyncing', info);
      }
      return;
    }
    if (e.code === CLOSE_UNAUTHORIZED) {
      // The server withdrew this principal's credentials: reconnecting
      // with the same token can only be refused again.
      this.halt();
      this.onRevoked(e.reason);
      return;
    }
    const why = e.code === 1001 ? 'server went away' : `connection closed (${e.code})`;
    if (!ws.opened) {
      // Refused before it opened: the server is down, or it refused the
      // upgrade (401, 403), which a browser sees only as 1006. Ask why.
      this.checkAuth().then((refused) => {
        if (!refused && !this.stopped && !this.ws) this.retry(() => this.connect(), 'reconnecting', why);
      });
      return;
    }
    this.retry(() => this.connect(), 'reconnecting', why);
  }

  retry(fn, phase, err) {
    const wait = backoffDelay(this.attempt++);
    this.retryAt = Date.now() + wait;
    this.retryFn = fn;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.retryAt = 0;
      fn();
    }, wait);
    this.setPhase(phase, err);
  }

  // retryNow skips the rest of a backoff wait (the header's button).
  retryNow() {
    if (!this.retryAt || !this.retryFn) return;
    clearTimeout(this.timer);
    this.retryAt = 0;
    this.retryFn();
  }

  // halt stops everything at once and stays stopped (a sign-in is
  // needed): no retry, no socket.
  halt() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.retryAt = 0;
    if (this.loading) this.loading.abort();
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000, 'signed out');
    this.setPhase('signin');
  }

  // stop closes the socket cleanly (1000) and stays closed. It resolves
  // with what the browser saw of the close handshake.
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.loading) this.loading.abort();
    const ws = this.ws;
    this.setPhase('stopped');
    if (!ws) return Promise.resolve(this.lastClose || null);
    return new Promise((resolve) => {
      ws.addEventListener('close', (e) => resolve({ code: e.code, reason: e.reason, clean: e.wasClean }), { once: true });
      ws.close(1000, 'page closed');
    });
  }
}
