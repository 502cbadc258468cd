// The dashboard's entry point: routing, the render loop, the summary, the
// sign-in, and the wiring of sync, queries, feed and views.
//
// Events are applied to the store as they arrive (cheap), and drawn at most
// once per animation frame (expensive): a burst of hundreds of events per
// second costs one render per frame, and a hidden tab draws nothing.

import { Sync, getJSON, describeError, HTTPError } from './sync.js';
import { EventLog, Feed } from './feed.js';
import { Header, Rate, toast } from './header.js';
import { FormationsView, FormationView } from './formations.js';
import { CellsView, CellView } from './cells.js';
import { Throttle, allIdle, observe, reloadAll, retryFailed } from './query.js';
import { h, num, relTime, Failure } from './dom.js';
import { onAuthFailure, token, setToken, clearToken, whoami, canRead } from './auth.js';
import { SignIn, WhoBadge } from './signin.js';

const log = new EventLog();
const rate = new Rate();
let status = null;
// firstRows: the first rows drawn; firstRender/firstPaint: the first useful
// view (the summary and the view's first page, or its empty state) built,
// and the frame after, which shows it.
const perf = { firstRowsBuilt: 0, firstRows: 0, firstRender: 0, firstPaint: 0, renders: 0 };

// What the queries need of the app: the current store, or the promise of
// the first one.
let storeWaiters = [];
const ctx = {
  store: () => sync.store,
  whenStore: () => new Promise((resolve) => storeWaiters.push(resolve)),
};

// The summary's tenant is the one the list on screen is filtered by, so
// that its cards and counts are of what the list shows.
const wantedTenant = () => current?.view.tenant() || '';
let askedTenant = '';

const sync = new Sync({
  tenant: wantedTenant,
  onChange: invalidate,
  onRevoked: (reason) => authProblem('revoked', reason),
  checkAuth,
  // Reads that failed while the server was away are tried again at once.
  onLive: retryFailed,
  onEvent: (seq, subject, event) => {
    log.add(seq, subject, event);
    rate.hit();
  },
  onResynced: (info) => {
    const first = info.firstSeq ? ` (the log now starts at #${num(info.firstSeq)})` : '';
    toast(`Resynced: this page had fallen behind the retained event log${first}. Reloaded the registry at #${num(info.cursor)}.`, 'resync');
    log.mark(`Resynced at #${num(info.cursor)} — events before this line may be missing from the feed`);
  },
  onStore: (store, { epochChanged, previous }) => {
    // The rows on screen stay until their views have read them again.
    if (previous) store.adopt(previous);
    store.observer = (eff) => {
      observe(eff, store);
      if (store.summary.dirty) summary.poke();
    };
    askedTenant = store.summary.tenant;
    for (const w of storeWaiters.splice(0)) w(store);
    if (previous) reloadAll();
    // A new stream incarnation has different sequence numbers: the old
    // feed belongs to another log.
    if (epochChanged) {
      log.clear();
      feed.reset();
      log.mark('The event stream was recreated; showing the new one');
    }
    invalidate();
  },
});

// summary reads GET /v1/summary again: when an event of unknown effect on
// the counts arrived (at most once a second while they do), or when the
// list's tenant changed.
const summary = new Throttle(async () => {
  const store = sync.store;
  if (!store) return;
  const tenant = wantedTenant();
  askedTenant = tenant;
  const body = await getJSON(tenant ? `/v1/summary?${new URLSearchParams({ tenant })}` : '/v1/summary');
  if (sync.store !== store) return; // replaced by a snapshot, which has its own
  store.setSummary(body, tenant);
  if (store.summary.dirty || body.epoch !== store.epoch) summary.poke();
  invalidate();
});

const feed = new Feed(log, {
  resolveName: (d) => (d.kind === 'formation' ? sync.store?.formation(d.id)?.name || d.id : d.id),
});

const header = new Header(document, { onRetry: () => sync.retryNow() });
const main = document.getElementById('main');
const aside = document.getElementById('aside');
aside.append(feed.el);

// ---- signing in (docs/ui.md, "Signing in")

// who is GET /v1/whoami's answer once in: on a server without an auth
// file {authRequired: false} and every role.
let who = null;
// problem is why the page needs a token ({kind, detail}), null while it
// has one that works (or needs none). The page then shows the prompt in
// place of the views, and reads nothing.
let problem = null;
const RANK = { needed: 1, unauthorized: 2, forbidden: 2, revoked: 3 };
const signin = new SignIn({ onSubmit: signIn });
const whoBadge = new WhoBadge(document.getElementById('who'), { onSignOut: signOut });

async function loadWho() {
  try {
    const r = await whoami();
    if (r.ok && r.body) {
      who = r.body;
      // A server that needs no token (any more) is sent none.
      if (!who.authRequired) clearToken();
      whoBadge.show(problem && problem.kind !== 'forbidden' ? null : who);
      if (isAdmin()) pollStatus();
    }
  } catch {
    // The server is not answering: the snapshot's failure says so.
  }
  return who;
}

const isAdmin = () => !!who && who.roles.includes('admin');

// authProblem halts the page and asks for a token: kind is needed (none
// stored), unauthorized (401: unknown or withdrawn), forbidden (403: the
// principal lacks the role) or revoked (the socket closed with 4401). A
// later problem of lower rank does not hide the first one's words.
function authProblem(kind, detail = '') {
  if (kind === 'unauthorized' && !token()) kind = 'needed';
  if (problem && RANK[problem.kind] >= RANK[kind]) return;
  const first = !problem;
  problem = { kind, detail };
  // A token that is unknown or withdrawn is of no more use; a forbidden
  // one still names its principal (shown, with Sign out).
  if (kind !== 'forbidden') clearToken();
  whoBadge.show(kind === 'forbidden' ? who : null);
  sync.halt();
  if (current) {
    current.view.stop();
    current = null;
  }
  document.body.dataset.view = 'signin';
  for (const a of document.querySelectorAll('[data-nav]')) a.removeAttribute('aria-current');
  // The server's own words, where they add to the page's: not for a
  // page that simply has no token yet.
  signin.show(kind, who, kind === 'needed' ? '' : detail);
  main.replaceChildren(signin.el);
  if (first) signin.focus();
  document.title = 'Sign in · CellOS';
  // A forbidden token names its principal: show whose it is.
  if (kind === 'forbidden' && !who?.name) loadWho().then(() => problem?.kind === 'forbidden' && signin.show('forbidden', who, detail));
  invalidate();
}

onAuthFailure((err) => authProblem(err.status === 403 ? 'forbidden' : 'unauthorized', err.body?.error?.message || ''));

// checkAuth is asked when the socket was refused before it opened: a
// browser sees a refused upgrade only as close 1006, so /v1/whoami tells
// whether the token is the reason. It resolves true when it was.
async function checkAuth() {
  if (who && !who.authRequired) return false;
  let r;
  try {
    r = await whoami();
  } catch {
    return false; // the server is down: retry as usual
  }
  if (r.status === 401) {
    authProblem('unauthorized', r.body?.error?.message || '');
    return true;
  }
  if (r.ok && r.body?.authRequired && !canRead(r.body)) {
    who = r.body;
    authProblem('forbidden');
    return true;
  }
  return false;
}

// signIn checks a pasted token with /v1/whoami before keeping it, then
// loads the page again with it: nothing of an earlier principal's view
// stays in memory. It resolves with why the token was not taken.
async function signIn(t) {
  let r;
  try {
    r = await whoami(t);
  } catch (err) {
    return `Not signed in: ${describeError(err)}`;
  }
  if (r.status === 401) {
    signin.show('unauthorized', null, r.body?.error?.message || '');
    return 'Not signed in: the server does not accept this token.';
  }
  if (!r.ok) {
    return `Not signed in: ${describeError(new HTTPError(r.status, r.body))}`;
  }
  setToken(t);
  location.reload();
  return '';
}

function signOut() {
  clearToken();
  location.reload();
}

// ---- routing: #/formations, #/formations/<id>, #/cells, #/cells/<id>, #/events

function parseRoute() {
  const raw = location.hash.slice(1);
  const [path, query] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query || '');
  const view = ['formations', 'cells', 'events'].includes(parts[0]) ? parts[0] : 'formations';
  return { view, id: parts[1] || '', params, key: `${view}/${parts[1] || ''}` };
}

let current = null; // {key, view}

function route(initial = false) {
  // Signed out: the views wait for a token (the URL keeps the view asked
  // for, which the page opens after signing in).
  if (problem) return;
  // In-page anchors such as the skip link ("#main") are not routes.
  if (location.hash && !location.hash.startsWith('#/') && current) return;
  const r = parseRoute();
  if (!current || current.key !== r.key) {
    let view;
    if (r.view === 'events') view = eventsView();
    else if (r.view === 'cells') view = r.id ? new CellView(ctx, r.id, log, invalidate) : new CellsView(ctx, invalidate);
    else view = r.id ? new FormationView(ctx, r.id, log, invalidate) : new FormationsView(ctx, invalidate);
    // The old view's reads stop, and its rows leave the store.
    current?.view.stop();
    current = { key: r.key, view, name: r.view };
    main.replaceChildren(view.el);
    document.body.dataset.view = r.view;
    placeFeed();
    for (const a of document.querySelectorAll('[data-nav]')) {
      if (a.dataset.nav === r.view) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    if (!initial) {
      window.scrollTo(0, 0);
      view.el.querySelector('h1')?.focus({ preventScroll: true });
    }
  }
  current.view.route(r);
  invalidate();
}

// Where the feed goes: the Events view shows it itself; a list view puts
// it right after its summary when the screen has no room for the side
// column (the width in style.css where aside is hidden), so that a phone
// shows it on the first screen; elsewhere it sits beside.
const narrow = window.matchMedia('(max-width: 1100px)');
function placeFeed() {
  if (!current) return;
  const v = current.view;
  const slot = current.name === 'events' ? v.slot : narrow.matches && v.feedSlot ? v.feedSlot : aside;
  if (feed.el.parentNode !== slot) slot.append(feed.el);
}
narrow.addEventListener('change', placeFeed);

function eventsView() {
  const slot = h('div', { class: 'feedslot' });
  const el = h('div', { class: 'view events' },
    h('div', { class: 'viewhead' },
      h('h1', { tabindex: '-1', text: 'Events' }),
      h('p', { class: 'lede', text: 'Every event this page applies, newest first, in stream-sequence order. Open one to see its CloudEvent JSON; pause to read without the list moving.' })),
    slot);
  return {
    el, slot, route() {}, render() {}, stop() {}, ready: () => true, tenant: () => '', title: () => 'Events', focusSearch: () => false,
  };
}

// ---- render loop

let scheduled = false;
function invalidate() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(render);
}

const navFormations = document.getElementById('n-formations');
const navCells = document.getElementById('n-cells');
const loadingEl = h('div', { class: 'loading', role: 'status' });
// The snapshot's failure, in place of the view until the server answers.
const snapFailure = new Failure(() => sync.retryNow());

function render() {
  scheduled = false;
  header.render(sync, rate, status);
  if (problem) {
    footer();
    return;
  }
  const store = sync.store;
  if (store) {
    loadingEl.remove();
    snapFailure.el.remove();
    current.view.el.hidden = false;
    if (wantedTenant() !== askedTenant) summary.now();
    current.view.render(store);
    perf.renders++;
    if (!perf.firstRowsBuilt && main.querySelector('tbody tr')) {
      perf.firstRowsBuilt = performance.now();
      // As below: the frame after the one that built them shows them.
      requestAnimationFrame(() => {
        perf.firstRows = performance.now();
      });
    }
    const totals = store.summary.totals();
    navFormations.textContent = num(totals.formations);
    navCells.textContent = num(totals.cells);
    document.title = `${current.view.title()} · CellOS`;
    if (!perf.firstRender && current.view.ready?.()) {
      perf.firstRender = performance.now();
      performance.mark('cellos-first-render');
      // The frame after the DOM is built is the one that shows it.
      requestAnimationFrame(() => {
        perf.firstPaint = performance.now();
      });
    }
  } else if (sync.lastFailure) {
    // Not an empty registry: the registry could not be read.
    loadingEl.remove();
    current.view.el.hidden = true;
    snapFailure.show('Could not load the registry', describeError(sync.lastFailure), sync.retryAt, !sync.retryAt);
    if (!snapFailure.el.isConnected) main.prepend(snapFailure.el);
  } else {
    snapFailure.el.remove();
    current.view.el.hidden = false;
    loadingEl.textContent = sync.phase === 'loading'
      ? 'Loading the registry…'
      : 'Waiting for the server — this page connects by itself as soon as it answers.';
    if (!loadingEl.isConnected) main.prepend(loadingEl);
  }
  feed.draw();
  footer();
}

const footEl = document.getElementById('foot');
function footer() {
  const parts = ['cellos-allinone'];
  if (status) {
    parts.push(status.version, `stream ${status.stream.name}: ${num(status.stream.messages)} events retained (#${num(status.stream.firstSeq)}–#${num(status.stream.lastSeq)})`);
    if (status.checkpoint?.at) parts.push(`checkpoint #${num(status.checkpoint.cursor)} ${relTime(status.checkpoint.at)}`);
  }
  footEl.textContent = parts.join(' · ');
}

// ---- timers: the clock-driven parts (countdown, sparkline, "12s ago")

setInterval(invalidate, 1000);
setInterval(() => {
  const now = Date.now();
  for (const t of document.querySelectorAll('time[data-ts]')) t.textContent = relTime(t.dataset.ts, now);
}, 5000);

// /v1/status is an admin's: the page asks it only when it may.
let polling = false;
async function pollStatus() {
  if (polling || problem || !isAdmin()) return; // a slow server gets one poll at a time
  polling = true;
  try {
    status = await getJSON('/v1/status', undefined, { quiet: true });
  } catch {
    // The socket's state is what the header shows; status is a bonus.
  } finally {
    polling = false;
  }
  invalidate();
}
setInterval(() => {
  if (!document.hidden) pollStatus();
}, 2000);

// ---- keyboard: "/" searches, like most dashboards

document.addEventListener('keydown', (e) => {
  if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target;
  if (t instanceof HTMLInputElement || t instanceof HTMLSelectElement || t instanceof HTMLTextAreaElement || t.isContentEditable) return;
  if (current?.view.focusSearch()) e.preventDefault();
});

// ---- lifecycle: close the socket cleanly when the page goes away (1000,
// not an abnormal 1006), and pick up again if it comes back from the
// back/forward cache.

window.addEventListener('pagehide', () => sync.stop());
window.addEventListener('pageshow', (e) => {
  if (e.persisted && !problem) sync.start();
});

window.addEventListener('hashchange', () => route());
route(true);
sync.start();
loadWho();

// For the browser tests and for curious operators in the console.
window.__cellos = {
  perf,
  sync,
  log,
  state: () => {
    const t = sync.store?.summary.totals();
    return {
      phase: sync.phase,
      signin: problem ? problem.kind : '',
      cursor: sync.store ? sync.store.cursor : 0,
      epoch: sync.store ? sync.store.epoch : '',
      connects: sync.connects,
      formations: t ? t.formations : 0,
      cells: t ? t.cells : 0,
    };
  },
  // settled: live, every read landed and drawn, and the summary exact at
  // the page's cursor: what the page shows is the server's answer there.
  settled: () => sync.phase === 'live' && !!sync.store && allIdle() && !scheduled && !sync.store.summary.dirty
    && sync.store.summary.tenant === wantedTenant() && !!current.view.ready?.(),
  // shown: the rows of the view's list (or its entity) and the summary,
  // as the page holds them.
  shown: () => {
    const s = sync.store;
    if (!s) return null;
    const sum = s.summary;
    return {
      cursor: s.cursor,
      tenant: sum.tenant,
      summary: { formations: sum.formations, cells: sum.cells, tenants: sum.tenantList() },
      rows: current.view.rows?.(s) || [],
      entity: current.view.entity?.(s) || null,
    };
  },
  stop: () => sync.stop(),
};
