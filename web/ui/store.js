// What the page knows of the registry: the server's summary (the counts),
// the rows it shows, and the last events it applied. Never the whole
// registry: a row is here because a view asked the server for it, and it
// goes when no view holds it any more (docs/ui.md, "What the page holds").
//
// Every event of the live stream is folded into the rows it concerns by the
// same rules as the server's (docs/design.md §3, fold v3): the tenant of an
// event comes from its subject when the subject has the tenant form, and an
// event of one tenant against another's entity is rejected — it changes
// nothing. Each row remembers the cursor up to which it reflects the log,
// so an event it already shows is never applied twice, and a row read at an
// older cursor than the page's is brought forward from the last events (the
// ring).
//
// The fold says what an event did to a row it holds (old and new status,
// state, outcome, tenant): that is the event's effect on the summary's
// counts. An event about an entity the page does not hold has an unknown
// effect: the summary is then marked dirty, and the app asks the server
// again (at most once a second), and the views decide whether the event
// may change what they show (query.js).
//
// Fold v3 asks more than the row an event is about: rule c and a cell's
// inherited tenant depend on its formation's tenant, and a formation's
// first tenant goes to every cell of it without one. The page decides
// these from the rows it holds where they tell (the formation's row, or a
// cell of the formation without a tenant, which says the formation has
// none); where they do not, it does not guess: the row the event may
// change is marked unknown (not folded into until its query has read it
// again, which the effect's `stale` tells the query), and so is the
// summary.

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

const SUBJECT_PREFIX = 'cellos.events.';

// subjectTenant is the tenant a stored subject carries (rule 1): the third
// token of cellos.events.<tenant>.<entity>.<id>.<phase> when it is neither
// formation nor cell, whatever follows it; '' for the untenanted form.
export function subjectTenant(subject) {
  if (typeof subject !== 'string' || !subject.startsWith(SUBJECT_PREFIX)) return '';
  const rest = subject.slice(SUBJECT_PREFIX.length);
  const dot = rest.indexOf('.');
  const token = dot < 0 ? rest : rest.slice(0, dot);
  return token === 'formation' || token === 'cell' ? '' : token;
}

// eventTenant is the tenant of an event (rule 1): the subject's when the
// subject has the tenant form, else data.tenantId, else
// data.correlation.tenantId; '' makes no claim. rejected says rule a: the
// subject names a tenant and the data declares another (either field).
export function eventTenant(subject, d) {
  const declared = str(d, 'tenantId');
  const corr = isObject(d.correlation) ? str(d.correlation, 'tenantId') : '';
  const sub = subjectTenant(subject);
  if (sub) return { tenant: sub, rejected: other(declared, sub) || other(corr, sub) };
  return { tenant: declared || corr, rejected: false };
}

// other reports whether claim names a tenant other than tenant.
const other = (claim, tenant) => claim !== '' && claim !== tenant;

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

// The CloudEvent attributes the server's fold reads: each a string when
// present (null reads as absent); anything else makes the event malformed.
const ATTRIBUTES = ['specversion', 'id', 'source', 'type', 'subject', 'time'];

// decode reads one stored event as the server's fold does: null when it is
// malformed or of a type the fold does not know, else {kind, phase, id,
// data, tenant (the event's), rejected (rule a)}.
function decode(subject, ev) {
  if (!isObject(ev)) return null;
  for (const k of ATTRIBUTES) if (ev[k] !== undefined && ev[k] !== null && typeof ev[k] !== 'string') return null;
  if (ev.specversion !== '1.0') return null;
  for (const k of ['id', 'type', 'source']) if (typeof ev[k] !== 'string' || ev[k] === '') return null;
  const c = classify(ev.type);
  if (!c) return null;
  const data = isObject(ev.data) ? ev.data : null;
  if (!data) return null;
  const id = str(data, c.kind === 'formation' ? 'formationId' : 'cellId');
  if (!ID_RE.test(id)) return null;
  return { kind: c.kind, phase: c.phase, id, data, ...eventTenant(subject, data) };
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
    if (eff.unknown || eff.dirty) {
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
    // id → cursor its row reflects; Infinity: the row misses an event it
    // could not fold, and takes none until its query has read it again.
    this.at = { formation: new Map(), cell: new Map() };
    this.owners = { formation: new Map(), cell: new Map() }; // id → Set of queries
    this.ring = []; // the last events: {seq, subject, ev, time, eff}
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

  // apply folds one stored event (as framed by /ws/events: its sequence,
  // subject and CloudEvent) into the rows and the summary, and reports
  // whether a row changed. Events at or below the cursor are no-ops: they
  // were applied already.
  apply(seq, subject, ev, msgTime) {
    if (seq <= this.cursor) return false;
    this.cursor = seq;
    const eff = this.fold(seq, subject, ev, msgTime);
    this.ring.push({ seq, subject, ev, time: msgTime, eff });
    if (this.ring.length > RING + RING / 4) this.ring.splice(0, this.ring.length - RING);
    this.summary.apply(seq, eff);
    if (!eff) return false;
    const changed = !!eff.changed || !!eff.inherited || !!eff.stale;
    if (changed) this.version++;
    this.observer?.(eff);
    return changed;
  }

  // fold applies one event to the rows it concerns and returns its effect:
  // null for an event that concerns no entity (malformed, unknown type),
  // else {kind, id, phase, data, seq, tenant (the event's), and
  //   rule: why it was rejected ('subject_tenant', 'entity_tenant',
  //     'formation_tenant'), '' when it was not, undefined when the page
  //     cannot tell;
  //   unknown: true when no row reflects the log just before it (the
  //     entity is not held, its row was read after this event, or the page
  //     cannot decide the event's outcome for it);
  //   changed, old, now: for a row it was folded into, whether it changed,
  //     and the summary keys before and after;
  //   dirty: its effect on the summary is more than old → now (a
  //     formation's first tenant goes to its cells);
  //   inherited: the held cells that took their formation's tenant;
  //   stale: the rows ({kind, id}) it may have changed in a way the page
  //     cannot tell, now unknown until read again;
  //   mayGive: a tenant that cells the page does not hold may have taken
  //     from the formation (its first tenant);
  //   firstTenant (formation events): the tenant the formation got by it,
  //     '' none, undefined unknown;
  //   fTenant (cell events naming a formation): that formation's tenant
  //     just before it, when the page knows it}.
  // prior is the effect the same event had when it arrived live: what was
  // decided then still holds when the ring is replayed into rows read
  // later (hold), whose formations may have moved on since.
  fold(seq, subject, ev, msgTime, prior) {
    const e = decode(subject, ev);
    if (!e) return null;
    const eff = { kind: e.kind, id: e.id, phase: e.phase, data: e.data, seq, tenant: e.tenant };
    const row = this.get(e.kind, e.id);
    const atMap = this.at[e.kind];
    // The row reflects the log just before this event.
    const held = !!row && seq > atMap.get(e.id);
    if (e.rejected) {
      // Rule a, from the event alone: it changes nothing anywhere.
      eff.rule = 'subject_tenant';
      eff.changed = false;
      if (held) atMap.set(e.id, seq);
      return eff;
    }
    const at = eventTime(ev, msgTime);
    if (e.kind === 'formation') this.foldFormation(eff, e, held ? row : null, at, prior);
    else this.foldCell(eff, e, held ? row : null, at, prior);
    return eff;
  }

  foldFormation(eff, e, f, at, prior) {
    const { seq, id } = eff;
    if (!f) {
      eff.unknown = true;
      // What became of the formation was decided when the event arrived
      // live (replayed now into cells read later), or can be told from a
      // row read after it, or not at all.
      let first;
      if (prior && prior.firstTenant !== undefined) {
        eff.rule = prior.rule;
        first = prior.firstTenant;
      } else if (e.tenant) {
        first = this.firstTenantAfter(id, e.tenant);
      } else {
        first = ''; // an event without a tenant gives none
      }
      eff.firstTenant = first;
      if (first) {
        eff.mayGive = first;
        this.inherit(eff, id, first);
      } else if (first === undefined) {
        // It may be the formation's first tenant: a held cell of it
        // without one may have taken it, and cells not held may have.
        eff.mayGive = e.tenant;
        this.markStale(eff, id);
      }
      return;
    }
    this.at.formation.set(id, seq);
    if (f.tenantId && other(e.tenant, f.tenantId)) {
      // Rule b: another tenant's formation, also a tombstone.
      eff.rule = 'entity_tenant';
      eff.changed = false;
      eff.firstTenant = '';
      return;
    }
    eff.rule = '';
    const had = f.tenantId;
    eff.old = formationKey(f);
    eff.changed = this.applyFormation(f, seq, at, e.phase, e.data, e.tenant);
    eff.now = formationKey(f);
    eff.firstTenant = !had && f.tenantId ? f.tenantId : '';
    if (eff.firstTenant) {
      // Rule 4: its cells without a tenant take it. Those the page does
      // not hold move the per-tenant counts too: read the summary again.
      eff.dirty = true;
      eff.mayGive = eff.firstTenant;
      this.inherit(eff, id, eff.firstTenant);
    }
  }

  // firstTenantAfter tells, from a formation row read after the event (or
  // the absence of any), whether an event of tenant t gave formation id its
  // first tenant: '' no, t yes, undefined when the page cannot tell.
  firstTenantAfter(id, t) {
    const f = this.formations.get(id);
    if (!f || this.at.formation.get(id) === Infinity) return undefined;
    // Its tenant now is not t: the event gave none (a first tenant stays).
    return f.tenantId === t ? undefined : '';
  }

  // inherit gives tenant to the held cells of formation fid without one
  // that reflect the log before eff's event (rule 4); their lastSeq and
  // updatedAt stay.
  inherit(eff, fid, tenant) {
    const at = this.at.cell;
    for (const [id, c] of this.cells) {
      if (c.formationId !== fid || c.tenantId || !(eff.seq > at.get(id))) continue;
      c.tenantId = tenant;
      at.set(id, eff.seq);
      (eff.inherited ||= []).push(id);
    }
  }

  // markStale marks unknown the held cells of formation fid without a
  // tenant that reflect the log before eff's event: the event may have
  // given them one.
  markStale(eff, fid) {
    const at = this.at.cell;
    for (const [id, c] of this.cells) {
      if (c.formationId !== fid || c.tenantId || !(eff.seq > at.get(id))) continue;
      at.set(id, Infinity);
      (eff.stale ||= []).push({ kind: 'cell', id });
    }
  }

  // formationTenant is what the page knows of formation fid's tenant just
  // before sequence seq: {known: true, tenant}, or {known: false, maybe}
  // where maybe, when set, is the one tenant it can have besides none.
  formationTenant(fid, seq) {
    const f = this.formations.get(fid);
    const a = this.at.formation.get(fid);
    if (!f || a === Infinity) return { known: false };
    // A row that reflects the log before seq tells; one read after it
    // tells only that its tenant was that one or none (a tenant, once set,
    // never changes).
    if (seq > a || !f.tenantId) return { known: true, tenant: f.tenantId };
    return { known: false, maybe: f.tenantId };
  }

  foldCell(eff, e, c, at, prior) {
    const { seq, id } = eff;
    const fid = str(e.data, 'formationId');
    let fk = fid ? this.formationTenant(fid, seq) : { known: true, tenant: '' };
    if (!fk.known && prior && prior.fTenant !== undefined) fk = { known: true, tenant: prior.fTenant };
    if (fid && fk.known) eff.fTenant = fk.tenant;
    if (!c) {
      eff.unknown = true;
      return;
    }
    if (c.tenantId && other(e.tenant, c.tenantId)) {
      // Rule b: another tenant's cell.
      this.at.cell.set(id, seq);
      eff.rule = 'entity_tenant';
      eff.changed = false;
      return;
    }
    // Rule c judges the formation the event names with the cell's tenant
    // (the event's, else the one it has); a cell that joins it without
    // either takes the formation's (rule 4). A cell of that formation
    // without a tenant says the formation has none.
    const claim = e.tenant || c.tenantId;
    const joins = !!fid && !c.formationId;
    let fTenant = '';
    if ((claim || joins) && fid) {
      if (!fk.known && c.formationId === fid && !c.tenantId) fk = { known: true, tenant: '' };
      if (fk.known) fTenant = fk.tenant;
      else if (claim && fk.maybe === claim) fTenant = claim; // none or the cell's: not rejected
      else {
        // Its formation's tenant decides, and the page does not know it.
        this.at.cell.set(id, Infinity);
        eff.unknown = true;
        eff.stale = [{ kind: 'cell', id }];
        return;
      }
      if (fTenant && other(claim, fTenant)) {
        this.at.cell.set(id, seq);
        eff.rule = 'formation_tenant';
        eff.changed = false;
        return;
      }
    }
    this.at.cell.set(id, seq);
    eff.rule = '';
    const before = keyOf(c);
    eff.old = cellKey(c);
    eff.changed = this.applyCell(c, seq, at, e.phase, e.data, e.tenant, fTenant);
    eff.now = cellKey(c);
    const after = keyOf(c);
    if (before.formation !== after.formation || before.state !== after.state || before.outcome !== after.outcome) {
      this.recount(seq, before, -1);
      this.recount(seq, after, 1);
    }
  }

  // recount moves a held cell in the counts of its formation, when that
  // formation is held and its row does not include this event yet.
  recount(seq, k, n) {
    const f = k.formation && this.formations.get(k.formation);
    if (f && seq > this.at.formation.get(k.formation)) countCell(f.cells, k, n);
  }

  applyFormation(f, seq, at, phase, d, tenant) {
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
    changed = fill(f, 'tenantId', tenant) || changed;
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

  // applyCell folds an event that is not rejected into cell c: tenant is
  // the event's, fTenant the tenant of the formation it names (given to a
  // cell without one as it joins).
  applyCell(c, seq, at, phase, d, tenant, fTenant) {
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
    const joined = fill(c, 'formationId', str(d, 'formationId'));
    changed = joined || changed;
    changed = fill(c, 'specId', str(d, 'specId')) || changed;
    changed = fill(c, 'runId', str(d, 'runId')) || changed;
    changed = fill(c, 'tenantId', tenant) || changed;
    // Rule 4: a cell without a tenant of its own takes its formation's as
    // it joins it.
    if (joined) fill(c, 'tenantId', fTenant);
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
  // query must ask again); effects lists the effects of the events folded
  // during that catch-up, for the query to judge as it judges live ones
  // (a row that left its filters, an entity held by no one, a row marked
  // unknown).
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
    const effects = [];
    if (cursor >= this.cursor) return { complete: true, effects };
    const ring = this.ring;
    if (ring.length === 0 || ring[0].seq > cursor + 1) {
      // The rows miss events the page no longer has: they are shown, but
      // nothing is folded into them (their effects are unknown) until the
      // query has read them again.
      for (const id of ids) if (at.get(id) === cursor) at.set(id, Infinity);
      return { complete: false, effects };
    }
    for (const e of ring) {
      if (e.seq <= cursor) continue;
      const eff = this.fold(e.seq, e.subject, e.ev, e.time, e.eff);
      if (eff) effects.push(eff);
    }
    return { complete: true, effects };
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
