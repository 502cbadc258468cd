// The page's copy of the registry: the snapshot loaded over HTTP, then the
// same fold as the server's (docs/design.md, fold rules v2) applied to every
// event in sequence order.
//
// A snapshot comes in pages, each read at its own cursor. Every page covers
// a range of ids, so for any id the store knows the cursor up to which the
// snapshot already reflects it; an event at or below that cursor is already
// in the row and is not folded again. Formation cell counts are derived here
// from the cells (rule 7), so they always agree with the cell rows.

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

function tenantOf(d) {
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

function eventTime(ev, fallback) {
  if (typeof ev.time === 'string' && ev.time !== '') {
    const t = Date.parse(ev.time);
    if (!Number.isNaN(t)) return new Date(t).toISOString();
  }
  return fallback || new Date().toISOString();
}

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

export class Store {
  constructor() {
    this.formations = new Map(); // id → formation (tombstones have deleted: true)
    this.cells = new Map(); // id → cell
    this.counts = new Map(); // formationId → cell counts (rule 7)
    this.members = new Map(); // formationId → Set of cell ids
    this.tenants = new Set();
    this.cursor = 0; // last sequence applied
    this.epoch = '';
    this.version = 0; // bumped on every change: views cache on it
    this.idsVersion = 0; // bumped when a row appears or disappears
    this.cover = { formation: [], cell: [] }; // [{upTo, cursor}] per snapshot page
    this.coverMax = 0;
    this.born = []; // formations created here by an event, to verify (see app)
    this.loading = true; // until finishSnapshot: views say so, and show no empty state
  }

  // addPage takes one snapshot page: items read at cursor, covering the ids
  // after `after` up to `next` ("" = to the end).
  addPage(kind, items, after, next, cursor) {
    this.cover[kind].push({ after, upTo: next, cursor });
    this.coverMax = Math.max(this.coverMax, cursor);
    for (const it of items) {
      if (kind === 'formation') {
        const { cells, ...f } = it;
        f.labels = f.labels || {};
        this.formations.set(f.id, f);
        if (f.tenantId) this.tenants.add(f.tenantId);
      } else {
        it.outcome = it.outcome || '';
        this.cells.set(it.id, it);
        this.recount(it.id, null, keyOf(it));
        if (it.tenantId) this.tenants.add(it.tenantId);
      }
    }
    this.version++;
    this.idsVersion++;
  }

  // finishSnapshot sets the cursor from which events are applied: the
  // oldest page's, so that no event after any page is missed.
  finishSnapshot(epoch) {
    this.epoch = epoch;
    this.loading = false;
    let min = Infinity;
    for (const k of ['formation', 'cell']) {
      for (const p of this.cover[k]) min = Math.min(min, p.cursor);
      this.cover[k].sort((a, b) => (a.after < b.after ? -1 : 1));
    }
    this.cursor = min === Infinity ? 0 : min;
    // Kept for diagnostics (and the tests): the cursor of every page.
    this.pageCursors = ['formation', 'cell'].map((k) => this.cover[k].map((p) => p.cursor));
  }

  // coveredUpTo is the cursor at which the snapshot saw id (present or not).
  coveredUpTo(kind, id) {
    for (const p of this.cover[kind]) {
      if (id > p.after && (p.upTo === '' || id <= p.upTo)) return p.cursor;
    }
    return 0;
  }

  // apply folds one stored event (as framed by /ws/events) and reports
  // whether anything visible changed. Events at or below the cursor are
  // no-ops: they were applied already.
  apply(seq, ev, msgTime) {
    if (seq <= this.cursor) return false;
    this.cursor = seq;
    if (seq > this.coverMax && this.coverMax) {
      this.cover = { formation: [], cell: [] };
      this.coverMax = 0;
    }
    if (!isObject(ev) || ev.specversion !== '1.0') return false;
    for (const k of ['id', 'type', 'source']) if (typeof ev[k] !== 'string' || ev[k] === '') return false;
    const c = classify(ev.type);
    if (!c) return false;
    const data = isObject(ev.data) ? ev.data : null;
    if (!data) return false;
    const id = str(data, c.kind === 'formation' ? 'formationId' : 'cellId');
    if (!ID_RE.test(id)) return false;
    if (this.coverMax && seq <= this.coveredUpTo(c.kind, id)) return false;
    const at = eventTime(ev, msgTime);
    const changed = c.kind === 'formation'
      ? this.applyFormation(id, seq, at, c.phase, data)
      : this.applyCell(id, seq, at, c.phase, data);
    if (changed) this.version++;
    return changed;
  }

  applyFormation(id, seq, at, phase, d) {
    let f = this.formations.get(id);
    if (f && f.deleted) return false;
    let changed = false;
    if (phase === 'deleted') {
      if (!f) {
        f = this.newFormation(id, 'created', at);
      }
      f.deleted = true;
      this.idsVersion++;
      changed = true;
    } else if (!f) {
      f = this.newFormation(id, phase, at);
      this.born.push({ id, seq });
      changed = true;
    } else {
      const from = FORMATION_RANK[f.status];
      const to = FORMATION_RANK[phase];
      if (to > from || (to === 2 && from === 2 && f.status !== phase)) {
        f.status = phase;
        changed = true;
      }
    }
    changed = this.fill(f, 'name', str(d, 'name')) || changed;
    changed = this.fill(f, 'tenantId', tenantOf(d)) || changed;
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

  newFormation(id, status, at) {
    const f = { id, name: '', tenantId: '', status, labels: {}, createdAt: at, updatedAt: at, lastSeq: 0 };
    this.formations.set(id, f);
    this.idsVersion++;
    return f;
  }

  applyCell(id, seq, at, phase, d) {
    let c = this.cells.get(id);
    let changed = false;
    let old = null;
    if (!c) {
      c = {
        id, formationId: '', tenantId: '', specId: '', runId: '', state: 'admitted', outcome: '', exitCode: null,
        reason: '', createdAt: at, updatedAt: at, lastSeq: 0,
      };
      this.cells.set(id, c);
      this.idsVersion++;
      changed = true;
    } else {
      old = keyOf(c);
    }
    if (phase === 'summary') {
      // Rule 5: attach (replace) compliance in any state.
      const next = sortedJSON(d);
      if (next !== (c.compliance === undefined ? undefined : JSON.stringify(c.compliance))) {
        c.compliance = JSON.parse(next);
        changed = true;
      }
    } else {
      const to = CELL_PHASE[phase];
      if (changed || CELL_RANK[to] > CELL_RANK[c.state]) {
        // Rules 3 and 4: created in the event's state, or moved strictly up.
        // The first completed or failed also sets the outcome (fold v2).
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
    changed = this.fill(c, 'formationId', str(d, 'formationId')) || changed;
    changed = this.fill(c, 'specId', str(d, 'specId')) || changed;
    changed = this.fill(c, 'runId', str(d, 'runId')) || changed;
    changed = this.fill(c, 'tenantId', tenantOf(d)) || changed;
    if (c.correlation === undefined && isObject(d.correlation)) {
      c.correlation = d.correlation;
      changed = true;
    }
    if (!changed) return false;
    c.lastSeq = seq;
    c.updatedAt = at;
    const now = keyOf(c);
    if (!old || old.formation !== now.formation || old.state !== now.state || old.outcome !== now.outcome) {
      this.recount(id, old, now);
    }
    return true;
  }

  // fill sets an identity field once (rule 4: first event that carries it).
  fill(o, key, v) {
    if (o[key] || !v) return false;
    o[key] = v;
    if (key === 'tenantId') this.tenants.add(v);
    return true;
  }

  // recount moves a cell between the formation counts (rule 7: admitted,
  // running and destroyed by state, completed and failed by outcome).
  recount(cellId, old, now) {
    if (old && old.formation) {
      countCell(this.counts.get(old.formation), old, -1);
      if (old.formation !== now.formation) this.members.get(old.formation).delete(cellId);
    }
    if (now.formation) {
      let c = this.counts.get(now.formation);
      if (!c) this.counts.set(now.formation, (c = emptyCounts()));
      countCell(c, now, 1);
      let m = this.members.get(now.formation);
      if (!m) this.members.set(now.formation, (m = new Set()));
      m.add(cellId);
    }
  }

  // forget removes a formation the server says is a tombstone.
  markDeleted(id) {
    const f = this.formations.get(id);
    if (f && !f.deleted) {
      f.deleted = true;
      this.version++;
      this.idsVersion++;
    }
  }

  formation(id) {
    const f = this.formations.get(id);
    return f && !f.deleted ? f : null;
  }

  countsOf(id) {
    return this.counts.get(id) || emptyCounts();
  }

  liveFormations() {
    const out = [];
    for (const f of this.formations.values()) if (!f.deleted) out.push(f);
    return out;
  }
}
