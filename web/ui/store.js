// What the page knows of the registry: the server's summary (the counts),
// the rows it shows, and the last events it applied. Never the whole
// registry: a row is here because a view asked the server for it, and it
// goes when no view holds it any more (docs/ui.md, "What the page holds").
//
// Every event of the live stream is folded into the rows it concerns by the
// same rules as the server's (docs/design.md §3, fold rules v2). Each row
// remembers the cursor up to which it reflects the log, so an event it
// already shows is never applied twice, and a row read at an older cursor
// than the page's is brought forward from the last events (the ring).
//
// The fold says what an event did to a row it holds (old and new status,
// state, outcome, tenant): that is the event's effect on the summary's
// counts. An event about an entity the page does not hold has an unknown
// effect: the summary is then marked dirty, and the app asks the server
// again (at most once a second), and the views decide whether the event
// may change what they show (query.js).

export const CELL_STATES = ['admitted', 'running', 'completed', 'failed', 'destroyed'];
// A cell's outcome: set by its first completed or failed, kept through
// destroyed (fold v2). 'none' is the filter value for cells without one.
export const CELL_OUTCOMES = ['completed', 'failed', 'none'];
export const FORMATION_STATUSES = ['created', 'launching', 'running', 'degraded', 'completed', 'failed', 'cancelled'];

const CELL_RANK = { admitted: 0, running: 1, completed: 2, failed: 2, destroyed: 3 };
const CELL_PHASE = { admitted: 'admitted', started: 'running', completed: 'completed', failed: 'failed', destroyed: 'destroyed' };
const FORMATION_RANK = { created: 0, launching: 1, running: 2, degraded: 2, completed: 3, failed: 3, cancelled: 3 };

const FORMATION_PREFIX = 'dev.cellos.events.formation.lifecycle.v1.';
const CELL_PREFIX = 'dev.cellos.events.cell.lifecycle.v1.';
const COMPLIANCE_TYPE = 'dev.cellos.events.cell.compliance.v1.summary';
const ID_RE = /^[A-Za-z0-9_-]{1,128}$/;

// RING is how many of the last events the store keeps to bring a row or a
// summary read at an older cursor up to the page's.
const RING = 4096;

// classify maps a CloudEvent type to {kind, phase}, or null when the fold
// does not know it.
export function classify(type) {
  if (type === COMPLIANCE_TYPE) return { kind: 'cell', phase: 'summary' };
  if (typeof type !== 'string') return null;
  if (type.startsWith(FORMATION_PREFIX)) {
    const phase = type.slice(FORMATION_PREFIX.length);
    if (phase in FORMATION_RANK || phase === 'deleted') return { kind: 'formation', phase };
  } else if (type.startsWith(CELL_PREFIX)) {
    const phase = type.slice(CELL_PREFIX.length);
    if (phase in CELL_PHASE) return { kind: 'cell', phase };
  }
  return null;
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const str = (d, k) => (typeof d[k] === 'string' ? d[k] : '');
const int = (d, k) => (Number.isInteger(d[k]) ? d[k] : null);

// tenantOf is the tenant an event's data names (rule 1), '' when none.
export function tenantOf(d) {
  return str(d, 'tenantId') || (isObject(d.correlation) ? str(d.correlation, 'tenantId') : '');
}

function labelsOf(d) {
  const l = d.labels;
  if (!isObject(l)) return null;
  const keys = Object.keys(l);
  if (keys.length === 0 || keys.some((k) => typeof l[k] !== 'string')) return null;
  return { ...l };
}

// sortedJSON encodes the top level with sorted keys, as the server does
// when it re-encodes a compliance summary.
function sortedJSON(o) {
  const out = {};
  for (const k of Object.keys(o).sort()) out[k] = o[k];
  return JSON.stringify(out);
}

// eventTime is an event's time as the server reads it (rule 1): its
// CloudEvent time when that is RFC 3339 and its UTC year is 0–9999, else
// the time it was stored (fallback; the page's clock when it has none). It
// is written as the server writes it: UTC, with the fraction it had, to the
// nanosecond.
function eventTime(ev, fallback) {
  return (typeof ev.time === 'string' && rfc3339(ev.time)) || fallback || new Date().toISOString();
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(Z|[+-]\d{2}:\d{2})$/;

// rfc3339 reads a time as Go's time.Parse(time.RFC3339Nano) does and
// writes it as its JSON encoding of the UTC time does; '' when it is not
// one, or its UTC year falls outside 0–9999.
function rfc3339(s) {
  const m = RFC3339.exec(s);
  if (!m) return '';
  const [y, mo, d, hh, mm, ss] = m.slice(1, 7).map(Number);
  const days = new Date(Date.UTC(2000, mo, 0)).getUTCDate() - (mo === 2 && !leap(y) ? 1 : 0);
  if (mo < 1 || mo > 12 || d < 1 || d > days || hh > 23 || mm > 59 || ss > 59) return '';
  let offset = 0;
  if (m[8] !== 'Z') {
    const oh = Number(m[8].slice(1, 3));
    const om = Number(m[8].slice(4, 6));
    if (oh > 24 || om > 60) return '';
    offset = (m[8][0] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const t = new Date(0);
  t.setUTCFullYear(y, mo - 1, d);
  t.setUTCHours(hh, mm - offset, ss, 0);
  const year = t.getUTCFullYear();
  if (year < 0 || year > 9999) return '';
  const frac = (m[7] || '').slice(0, 9).replace(/0+$/, '');
  return `${t.toISOString().slice(0, 19)}${frac ? `.${frac}` : ''}Z`;
}

const leap = (y) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;

// describe says what an event is about, for the feed and for filtering:
// {kind, phase, id, formationId, valid}.
export function describe(ev) {
  if (!isObject(ev)) return { kind: '', phase: 'malformed', id: '', formationId: '', valid: false };
  const c = classify(ev.type);
  const d = isObject(ev.data) ? ev.data : {};
  const phase = c ? c.phase : (typeof ev.type === 'string' ? ev.type.split('.').pop() : '');
  const id = c ? str(d, c.kind === 'formation' ? 'formationId' : 'cellId') : (str(d, 'cellId') || str(d, 'formationId'));
  return { kind: c ? c.kind : '', phase, id, formationId: str(d, 'formationId'), valid: !!c };
}

// keyOf is what a cell's place in its formation's counts depends on.
export function keyOf(c) {
  return { formation: c.formationId, state: c.state, outcome: c.outcome || '' };
}

// countCell adds n cells of key k to counts (rule 7).
export function countCell(counts, k, n) {
  counts.total += n;
  if (k.state === 'admitted' || k.state === 'running' || k.state === 'destroyed') counts[k.state] += n;
  if (k.outcome === 'completed' || k.outcome === 'failed') counts[k.outcome] += n;
}

export function emptyCounts() {
  return { total: 0, admitted: 0, running: 0, completed: 0, failed: 0, destroyed: 0 };
}

// What an entity adds to the summary: a live formation by tenant and
// status, a cell by tenant, state and outcome.
const formationKey = (f) => (f.deleted ? null : { tenant: f.tenantId || '', status: f.status });
const cellKey = (c) => ({ tenant: c.tenantId || '', state: c.state, outcome: c.outcome || 'none' });

// Summary is GET /v1/summary kept current: counts of the whole registry
// (or, for formations and cells, of one tenant), exact at `at`, and moved
// on by the known effect of every later event. dirty says an event of
// unknown effect came after `at`: the numbers need asking again.
export class Summary {
  constructor(body, tenant) {
    this.at = body.cursor;
    this.tenant = tenant || '';
    this.formations = { total: body.formations.total, byStatus: { ...body.formations.byStatus } };
    this.cells = {
      total: body.cells.total, byState: { ...body.cells.byState }, byOutcome: { ...body.cells.byOutcome },
    };
    this.tenants = new Map(body.tenants.map((t) => [t.id, { ...t }]));
    this.dirty = false;
    this.version = 0; // bumped on every change of the counts
  }

  // apply moves the counts on by one event's effect (see Store.fold).
  apply(seq, eff) {
    if (seq <= this.at || !eff) return;
    if (eff.unknown) {
      this.dirty = true;
      return;
    }
    if (!eff.changed) return;
    this.count(eff.kind, eff.old, -1);
    this.count(eff.kind, eff.now, 1);
  }

  count(kind, k, n) {
    if (!k) return;
    this.version++;
    let t = this.tenants.get(k.tenant);
    if (!t) this.tenants.set(k.tenant, (t = { id: k.tenant, formations: 0, cells: 0, failed: 0 }));
    const mine = !this.tenant || this.tenant === k.tenant;
    if (kind === 'formation') {
      t.formations += n;
      if (mine) {
        this.formations.total += n;
        this.formations.byStatus[k.status] = (this.formations.byStatus[k.status] || 0) + n;
      }
    } else {
      t.cells += n;
      if (k.outcome === 'failed') t.failed += n;
      if (mine) {
        this.cells.total += n;
        this.cells.byState[k.state] = (this.cells.byState[k.state] || 0) + n;
        this.cells.byOutcome[k.outcome] = (this.cells.byOutcome[k.outcome] || 0) + n;
      }
    }
    if (t.formations === 0 && t.cells === 0) this.tenants.delete(k.tenant);
  }

  // tenantList is every tenant, ordered by id, as the server lists them.
  tenantList() {
    return [...this.tenants.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  // totals counts the whole registry, whatever tenant the summary is of.
  totals() {
    let formations = 0;
    let cells = 0;
    for (const t of this.tenants.values()) {
      formations += t.formations;
      cells += t.cells;
    }
    return { formations, cells };
  }

  // cellCounts are the cells as a formation's counts are made (rule 7).
  cellCounts() {
    const s = this.cells.byState;
    const o = this.cells.byOutcome;
    return {
      total: this.cells.total, admitted: s.admitted || 0, running: s.running || 0,
      completed: o.completed || 0, failed: o.failed || 0, destroyed: s.destroyed || 0,
    };
  }
}

export class Store {
  // body is a GET /v1/summary answer, asked with tenant.
  constructor(body, tenant = '') {
    this.cursor = body.cursor; // last sequence applied
    this.epoch = body.epoch;
    this.summary = new Summary(body, tenant);
    this.formations = new Map(); // id → formation held by a view
    this.cells = new Map(); // id → cell held by a view
    this.at = { formation: new Map(), cell: new Map() }; // id → cursor its row reflects
    this.owners = { formation: new Map(), cell: new Map() }; // id → Set of queries
    this.ring = []; // the last events: {seq, ev, time, eff}
    this.version = 0; // bumped on every change: views cache on it
    this.observer = null; // (effect) for every entity event applied live
  }

  map(kind) {
    return kind === 'formation' ? this.formations : this.cells;
  }

  get(kind, id) {
    return this.map(kind).get(id) || null;
  }

  formation(id) {
    const f = this.formations.get(id);
    return f && !f.deleted ? f : null;
  }

  // apply folds one stored event (as framed by /ws/events) into the rows
  // and the summary, and reports whether a row changed. Events at or below
  // the cursor are no-ops: they were applied already.
  apply(seq, ev, msgTime) {
    if (seq <= this.cursor) return false;
    this.cursor = seq;
    const eff = this.fold(seq, ev, msgTime);
    this.ring.push({ seq, ev, time: msgTime, eff });
    if (this.ring.length > RING + RING / 4) this.ring.splice(0, this.ring.length - RING);
    this.summary.apply(seq, eff);
    if (!eff) return false;
    if (eff.changed) this.version++;
    this.observer?.(eff);
    return !!eff.changed;
  }

  // fold applies one event to the row it concerns and returns its effect:
  // null for an event that concerns no entity (malformed, unknown type),
  // {kind, id, phase, data, seq, unknown: true} when no row reflects the
  // log just before it (the entity is not held, or its row was read after
  // this event), else {…, changed, old, now} with the summary keys before
  // and after.
  fold(seq, ev, msgTime) {
    if (!isObject(ev) || ev.specversion !== '1.0') return null;
    for (const k of ['id', 'type', 'source']) if (typeof ev[k] !== 'string' || ev[k] === '') return null;
    const c = classify(ev.type);
    if (!c) return null;
    const data = isObject(ev.data) ? ev.data : null;
    if (!data) return null;
    const id = str(data, c.kind === 'formation' ? 'formationId' : 'cellId');
    if (!ID_RE.test(id)) return null;
    const eff = { kind: c.kind, id, phase: c.phase, data, seq };
    const row = this.get(c.kind, id);
    const atMap = this.at[c.kind];
    if (!row || seq <= atMap.get(id)) {
      eff.unknown = true;
      return eff;
    }
    atMap.set(id, seq);
    const at = eventTime(ev, msgTime);
    if (c.kind === 'formation') {
      eff.old = formationKey(row);
      eff.changed = this.applyFormation(row, seq, at, c.phase, data);
      eff.now = formationKey(row);
    } else {
      const before = keyOf(row);
      eff.old = cellKey(row);
      eff.changed = this.applyCell(row, seq, at, c.phase, data);
      eff.now = cellKey(row);
      const after = keyOf(row);
      if (before.formation !== after.formation || before.state !== after.state || before.outcome !== after.outcome) {
        this.recount(seq, before, -1);
        this.recount(seq, after, 1);
      }
    }
    return eff;
  }

  // recount moves a held cell in the counts of its formation, when that
  // formation is held and its row does not include this event yet.
  recount(seq, k, n) {
    const f = k.formation && this.formations.get(k.formation);
    if (f && seq > this.at.formation.get(k.formation)) countCell(f.cells, k, n);
  }

  applyFormation(f, seq, at, phase, d) {
    if (f.deleted) return false;
    let changed = false;
    if (phase === 'deleted') {
      f.deleted = true;
      changed = true;
    } else {
      const from = FORMATION_RANK[f.status];
      const to = FORMATION_RANK[phase];
      if (to > from || (to === 2 && from === 2 && f.status !== phase)) {
        f.status = phase;
        changed = true;
      }
    }
    changed = fill(f, 'name', str(d, 'name')) || changed;
    changed = fill(f, 'tenantId', tenantOf(d)) || changed;
    if (Object.keys(f.labels).length === 0) {
      const l = labelsOf(d);
      if (l) {
        f.labels = l;
        changed = true;
      }
    }
    if (changed) {
      f.lastSeq = seq;
      f.updatedAt = at;
    }
    return changed;
  }

  applyCell(c, seq, at, phase, d) {
    let changed = false;
    if (phase === 'summary') {
      // Rule 5: attach (replace) compliance in any state.
      const next = sortedJSON(d);
      if (next !== (c.compliance === undefined ? undefined : JSON.stringify(c.compliance))) {
        c.compliance = JSON.parse(next);
        changed = true;
      }
    } else {
      const to = CELL_PHASE[phase];
      if (CELL_RANK[to] > CELL_RANK[c.state]) {
        // Rule 3: moved strictly up. The first completed or failed also
        // sets the outcome (fold v2).
        c.state = to;
        if (to === 'completed') {
          c.exitCode = int(d, 'exitCode');
          c.outcome = 'completed';
        }
        if (to === 'failed') {
          c.reason = str(d, 'reason');
          c.outcome = 'failed';
        }
        changed = true;
      }
    }
    changed = fill(c, 'formationId', str(d, 'formationId')) || changed;
    changed = fill(c, 'specId', str(d, 'specId')) || changed;
    changed = fill(c, 'runId', str(d, 'runId')) || changed;
    changed = fill(c, 'tenantId', tenantOf(d)) || changed;
    if (c.correlation === undefined && isObject(d.correlation)) {
      c.correlation = d.correlation;
      changed = true;
    }
    if (changed) {
      c.lastSeq = seq;
      c.updatedAt = at;
    }
    return changed;
  }

  // hold takes the rows a query read at cursor (replacing what that query
  // held before) and brings them up to the page's cursor from the ring.
  // complete is false when the ring no longer reaches back to cursor (the
  // query must ask again); missed lists the effects, during that catch-up,
  // of events about entities held by no one.
  hold(owner, kind, items, cursor) {
    const map = this.map(kind);
    const at = this.at[kind];
    const owners = this.owners[kind];
    // A row held already that reflects a later cursor than this answer
    // stays as it is: it has folded events this answer has not seen, and
    // taking the answer would apply them (and their counts) twice.
    const fresher = new Map();
    for (const it of items) {
      const a = at.get(it.id);
      if (a !== undefined && a > cursor && a !== Infinity) fresher.set(it.id, [map.get(it.id), a]);
    }
    this.release(owner);
    const ids = [];
    for (let it of items) {
      let a = cursor;
      if (fresher.has(it.id)) {
        [it, a] = fresher.get(it.id);
      } else if (kind === 'formation') {
        it.labels = it.labels || {};
        it.cells = it.cells || emptyCounts();
      } else {
        it.outcome = it.outcome || '';
      }
      map.set(it.id, it);
      at.set(it.id, a);
      let o = owners.get(it.id);
      if (!o) owners.set(it.id, (o = new Set()));
      o.add(owner);
      ids.push(it.id);
    }
    owner.held = { kind, ids };
    this.version++;
    const missed = [];
    if (cursor >= this.cursor) return { complete: true, missed };
    const ring = this.ring;
    if (ring.length === 0 || ring[0].seq > cursor + 1) {
      // The rows miss events the page no longer has: they are shown, but
      // nothing is folded into them (their effects are unknown) until the
      // query has read them again.
      for (const id of ids) if (at.get(id) === cursor) at.set(id, Infinity);
      return { complete: false, missed };
    }
    for (const e of ring) {
      if (e.seq <= cursor) continue;
      const eff = this.fold(e.seq, e.ev, e.time);
      if (eff?.unknown) missed.push(eff);
    }
    return { complete: true, missed };
  }

  // release drops the rows owner held that no one else holds.
  release(owner) {
    const held = owner.held;
    if (!held) return;
    owner.held = null;
    const owners = this.owners[held.kind];
    for (const id of held.ids) {
      const o = owners.get(id);
      if (!o) continue;
      o.delete(owner);
      if (o.size === 0) {
        owners.delete(id);
        this.map(held.kind).delete(id);
        this.at[held.kind].delete(id);
      }
    }
    this.version++;
  }

  // adopt keeps the rows of the store this one replaces on screen until
  // their views have read them again; no event is folded into them (they
  // belong to another cursor, maybe another stream).
  adopt(old) {
    for (const kind of ['formation', 'cell']) {
      for (const [id, o] of old.owners[kind]) {
        this.map(kind).set(id, old.map(kind).get(id));
        this.at[kind].set(id, Infinity);
        this.owners[kind].set(id, new Set(o));
      }
    }
  }

  // setSummary takes a new GET /v1/summary answer, asked with tenant, and
  // brings it up to the page's cursor with the effects of the events since
  // (when the ring still has them and they are all known); otherwise it
  // stays dirty, to be asked again.
  setSummary(body, tenant) {
    if (body.epoch !== this.epoch) return false;
    const s = new Summary(body, tenant);
    if (body.cursor < this.cursor) {
      if (this.ring.length === 0 || this.ring[0].seq > body.cursor + 1) s.dirty = true;
      else for (const e of this.ring) s.apply(e.seq, e.eff);
    }
    this.summary = s;
    this.version++;
    return true;
  }
}

// fill sets an identity field once (rule 4: first event that carries it).
function fill(o, key, v) {
  if (o[key] || !v) return false;
  o[key] = v;
  return true;
}
