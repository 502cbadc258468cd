// The server reads behind the views: one page of a list, or one entity.
// A query asks the server, hands the rows to the store (which folds the
// live stream into them), and asks again — at most once a second — when an
// event may change what it shows but cannot be folded into a row it holds:
// an entity it does not hold appears in its range, a row leaves its filter,
// a formation's cell counts move through a cell it does not hold, a row it
// holds was marked unknown (the page cannot decide the event for it, fold
// v3), or cells it does not hold may have taken a formation's first tenant.

import { getJSON, HTTPError } from './sync.js';

// REFRESH_GAP is the least time between two reads of one query caused by
// events; REFRESH_DELAY lets a burst of events (and the server's own fold)
// settle before the first of them; a failed read is tried again after
// RETRY, doubled after each failure in a row up to RETRY_CAP (the Retry
// button, or the live stream coming back, tries at once).
export const REFRESH_GAP = 1000;
const REFRESH_DELAY = 60;
const RETRY = 2000;
const RETRY_CAP = 30000;

// All the throttles alive, so that the tests (and the app) can tell when
// every read has landed, and every query alive, which the app tells of each
// event and asks to read again after a resync.
const alive = new Set();
const queries = new Set();
export const allIdle = () => [...alive].every((t) => t.idle());

// observe tells every query of one event's effect (see Store.fold).
export function observe(eff, store) {
  for (const q of queries) if (q.affects(eff, store)) q.throttle.poke();
}

// reloadAll reads every query again (a new snapshot replaced the store).
export function reloadAll() {
  for (const q of queries) q.throttle.now();
}

// retryFailed tries every failed read again at once (the server answers
// again: the live stream is back).
export function retryFailed() {
  for (const t of alive) if (t.failures) t.now();
}

// Throttle runs an async job: never two at once, and never sooner than gap
// after the previous start unless asked now().
export class Throttle {
  constructor(job, gap = REFRESH_GAP) {
    this.job = job;
    this.gap = gap;
    this.last = -Infinity;
    this.timer = 0;
    this.busy = false;
    this.again = 0; // 0: no, 1: when the gap allows, 2: at once
    this.stopped = false;
    this.failures = 0; // failed runs in a row
    this.due = 0; // Date.now() time of the next run, while one is scheduled
    alive.add(this);
  }

  // poke runs the job after delay ms, or when the gap allows.
  poke(delay = REFRESH_DELAY) {
    if (this.stopped) return;
    if (this.busy) {
      this.again = Math.max(this.again, 1);
      return;
    }
    if (this.timer) return;
    const wait = Math.max(delay, this.last + this.gap - performance.now());
    this.due = Date.now() + wait;
    this.timer = setTimeout(() => this.fire(), wait);
  }

  // retryAt is when a failed job runs again by itself (0: not scheduled).
  retryAt() {
    return this.failures && this.timer ? this.due : 0;
  }

  // now runs the job at once (after the one running): a user's action.
  now() {
    if (this.stopped) return;
    if (this.busy) {
      this.again = 2;
      return;
    }
    clearTimeout(this.timer);
    this.timer = 0;
    this.fire();
  }

  async fire() {
    this.timer = 0;
    if (document.hidden) {
      // A hidden tab reads nothing; it catches up when shown.
      if (!this.waiting) {
        this.waiting = true;
        document.addEventListener('visibilitychange', () => {
          this.waiting = false;
          this.poke(0);
        }, { once: true });
      }
      return;
    }
    this.busy = true;
    this.last = performance.now();
    let failed = false;
    try {
      await this.job();
    } catch {
      failed = true;
    }
    this.busy = false;
    this.failures = failed ? this.failures + 1 : 0;
    if (this.stopped) return;
    const again = this.again;
    this.again = 0;
    if (again === 2) this.now();
    else if (failed) this.poke(Math.min(RETRY_CAP, RETRY * 2 ** (this.failures - 1)));
    else if (again) this.poke();
  }

  idle() {
    return this.stopped || (!this.busy && !this.timer);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    alive.delete(this);
  }
}

// Query is what ListQuery and OneQuery share: the throttle, the store they
// hold rows in, and the wait for the first snapshot.
class Query {
  constructor(ctx, kind, onChange) {
    this.ctx = ctx; // {store(): the current store or null, whenStore(): a promise of one}
    this.kind = kind;
    this.onChange = onChange;
    this.loaded = false; // a first answer arrived
    this.error = null;
    this.held = null; // maintained by the store
    this.throttle = new Throttle(() => this.load());
    queries.add(this);
  }

  // take hands an answer read at body.cursor (of body.epoch) to the
  // current store; accept() then makes it the query's.
  async take(body, items, accept) {
    const store = this.ctx.store() || (await this.ctx.whenStore());
    if (this.throttle.stopped) return;
    if (body.epoch !== store.epoch) {
      // Read from another incarnation of the stream than the store's: the
      // page is about to resync (4410), or the server is rebuilding.
      this.throttle.poke(REFRESH_GAP);
      return;
    }
    const { complete, effects } = store.hold(this, this.kind, items, body.cursor);
    accept();
    this.loaded = true;
    this.error = null;
    if (!complete || effects.some((e) => this.affects(e, store))) this.throttle.poke();
    this.onChange();
  }

  fail(err) {
    this.error = err;
    this.onChange();
    throw err;
  }

  // retry reads again at once (the Retry button).
  retry() {
    this.throttle.now();
  }

  // holds reports whether the store's row for id is this query's.
  holds(store, id) {
    return !!(this.held && store.owners[this.kind].get(id)?.has(this));
  }

  // lost reports whether an event marked a row of this query unknown: the
  // row takes no event until the query has read it again.
  lost(eff, store) {
    return !!eff.stale?.some((r) => r.kind === this.kind && this.holds(store, r.id));
  }

  stop() {
    queries.delete(this);
    this.throttle.stop();
    this.ctx.store()?.release(this);
  }
}

// ListQuery is one page of GET /v1/formations or /v1/cells: params are the
// API's filters, after and limit. filter(entity) says whether a row still
// belongs; mayBelong(effect) whether an entity it does not hold may now
// belong in its range; others(effect, store) whether an event about the
// other kind changes its rows (a formation's cell counts).
export class ListQuery extends Query {
  constructor(ctx, { kind, path, onChange, others }) {
    super(ctx, kind, onChange);
    this.path = path;
    this.others = others || (() => false);
    this.params = null;
    this.ids = [];
    this.next = '';
  }

  // set asks for another page or other filters; the rows on screen stay
  // until the answer is in.
  set(params) {
    const q = params.toString();
    if (this.params && q === this.params.toString()) return;
    this.params = new URLSearchParams(params);
    this.asked = q; // the answer on screen is for other params until it is answered
    this.throttle.now();
  }

  // current: whether the rows on screen answer the params asked.
  current() {
    return this.loaded && this.answered === this.asked;
  }

  async load() {
    const q = this.params.toString();
    let body;
    try {
      body = await getJSON(`${this.path}?${q}`);
    } catch (err) {
      this.fail(err);
    }
    if (q !== this.params.toString()) return; // another page was asked for meanwhile
    const items = this.kind === 'formation' ? body.formations : body.cells;
    await this.take(body, items, () => {
      this.ids = items.map((i) => i.id);
      this.next = body.next;
      this.answered = q;
      this.shown = new URLSearchParams(q);
    });
  }

  // rows are the entities of the page, as the store has them now.
  rows(store) {
    if (!store) return [];
    const out = [];
    for (const id of this.ids) {
      const e = store.get(this.kind, id);
      if (e && !e.deleted) out.push(e);
    }
    return out;
  }

  // inRange: whether id sorts into this page (the last page reaches to
  // the end).
  inRange(id) {
    const after = this.shown.get('after') || '';
    const prefix = this.shown.get('prefix') || '';
    return id > after && (this.next === '' || id <= this.next) && id.startsWith(prefix);
  }

  // matches: whether a row still passes the filters.
  matches(e) {
    const p = this.shown;
    if (e.deleted) return false;
    const eq = (name, v) => !p.get(name) || p.get(name) === v;
    if (this.kind === 'formation') return eq('tenant', e.tenantId) && eq('status', e.status);
    const outcome = p.get('outcome');
    return eq('tenant', e.tenantId) && eq('formation', e.formationId) && eq('state', e.state)
      && (!outcome || (e.outcome || 'none') === outcome);
  }

  // affects: whether an event means this page must be read again.
  affects(eff, store) {
    if (!this.loaded) return false;
    if (this.lost(eff, store)) return true;
    // A rejected event changes nothing (rule 2 of fold v3).
    if (eff.rule) return false;
    if (eff.kind !== this.kind) return this.gains(eff, store) || this.others(eff, store, this);
    // A row it holds has folded the event (or was read after it): read
    // again only when the row left the filters.
    if (this.holds(store, eff.id)) return !!eff.changed && !this.matches(store.get(this.kind, eff.id));
    if (!this.inRange(eff.id)) return false;
    // What the event itself says of the entity's identity: an entity of
    // another tenant than the filter's either stays so or rejects it.
    const p = this.shown;
    const t = eff.tenant;
    if (p.get('tenant') && t && t !== p.get('tenant')) return false;
    const fid = typeof eff.data.formationId === 'string' ? eff.data.formationId : '';
    if (this.kind === 'cell' && p.get('formation') && fid && fid !== p.get('formation')) return false;
    return true;
  }

  // gains: whether a formation event changes which cells belong on this
  // page: cells it holds took the formation's tenant and left the
  // filters, or cells it does not hold may have taken the tenant it
  // filters by (rule 4).
  gains(eff, store) {
    if (this.kind !== 'cell' || eff.kind !== 'formation') return false;
    if (eff.inherited?.some((id) => this.holds(store, id) && !this.matches(store.get('cell', id)))) return true;
    const p = this.shown;
    return !!eff.mayGive && p.get('tenant') === eff.mayGive && (!p.get('formation') || p.get('formation') === eff.id);
  }
}

// OneQuery is one formation or one cell, for its page. A formation is read
// with the smallest page of its cells (limit=1: its page lists its cells
// through a ListQuery of its own, a page at a time); found is false when
// the server has no such entity.
export class OneQuery extends Query {
  constructor(ctx, { kind, id, onChange, others }) {
    super(ctx, kind, onChange);
    this.id = id;
    this.others = others || (() => false);
    this.found = false;
    this.throttle.now();
  }

  async load() {
    let body;
    let items = [];
    try {
      if (this.kind === 'formation') {
        body = await getJSON(`/v1/formations/${encodeURIComponent(this.id)}?limit=1`);
        items = [body.formation];
      } else {
        body = await getJSON(`/v1/cells/${encodeURIComponent(this.id)}`);
        items = [body.cell];
      }
    } catch (err) {
      if (!(err instanceof HTTPError && err.status === 404)) this.fail(err);
      const store = this.ctx.store() || (await this.ctx.whenStore());
      body = { cursor: store.cursor, epoch: store.epoch };
    }
    await this.take(body, items, () => {
      this.found = items.length > 0;
    });
  }

  entity(store) {
    const e = store?.get(this.kind, this.id);
    return e && !e.deleted ? e : null;
  }

  affects(eff, store) {
    if (!this.loaded) return false;
    if (this.lost(eff, store)) return true;
    if (eff.rule) return false;
    if (eff.kind !== this.kind) return this.others(eff, store, this);
    return eff.id === this.id && !this.holds(store, eff.id);
  }
}
