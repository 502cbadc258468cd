// The page's fold (web/ui/store.js) against the server's, one random log at
// a time: TestBrowserFoldAgreesWithServer (browser_fold_test.go) evaluates
// this function in Chromium with the store module and a case the server's
// projection folded, and reports every disagreement.
//
// A case: {tenant, msgs: [{seq, subject, event, time}], states, start,
// plan}. states[i] is the server's state after msgs[0..i-1]: {cursor,
// formations: {id: formation (or {id, tenantId, deleted: true})}, cells:
// {id: cell}, summary}. The store starts from states[start]'s summary and
// folds msgs[start..]; plan lists what the views do between two events:
// {after: i, hold: {owner, kind, ids, read}} (the rows read at
// states[read], which may be behind the page or ahead of it), {after: i,
// release: owner}, {after: i, summary: read}.
//
// After every event and every step of the plan, every row the store
// folds into (its cursor is not Infinity) must equal the server's at the
// cursor it reflects (the page's, or its own when read ahead of the page),
// field by field — a formation's cell counts aside, which a view reads
// again when a cell it does not hold moves them — and the summary, unless
// dirty, must equal the server's. A row that becomes unknown must be named
// by the effect that made it so (its query then reads it again).
(async (mod, c) => {
  const errors = [];
  const stats = { steps: 0, compared: 0, unknownRows: 0, dirtySteps: 0, rejected: {}, inherited: 0, stale: 0 };
  const fail = (msg) => {
    if (errors.length < 30) errors.push(msg);
  };
  const canon = (v) => {
    if (Array.isArray(v)) return `[${v.map(canon).join(',')}]`;
    if (v !== null && typeof v === 'object') {
      return `{${Object.keys(v).filter((k) => v[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canon(v[k])}`).join(',')}}`;
    }
    return JSON.stringify(v === undefined ? null : v);
  };
  // The state whose cursor is the largest at or below cursor.
  const stateAt = (cursor) => {
    let s = null;
    for (const st of c.states) if (st.cursor <= cursor) s = st;
    return s;
  };
  const owners = new Map();
  const ownerOf = (name) => {
    if (!owners.has(name)) owners.set(name, { name, held: null });
    return owners.get(name);
  };
  const infinite = (store) => {
    const out = new Set();
    for (const kind of ['formation', 'cell']) for (const [id, a] of store.at[kind]) if (a === Infinity) out.add(`${kind}:${id}`);
    return out;
  };
  const named = (effs) => {
    const out = new Set();
    for (const e of effs) for (const r of e?.stale || []) out.add(`${r.kind}:${r.id}`);
    return out;
  };

  const st0 = c.states[c.start];
  const store = new mod.Store({ cursor: st0.cursor, epoch: 'e', ...st0.summary }, c.tenant);

  const compare = (where) => {
    stats.steps++;
    for (const kind of ['formation', 'cell']) {
      for (const [id, row] of store.map(kind)) {
        const a = store.at[kind].get(id);
        if (a === Infinity) {
          stats.unknownRows++;
          continue;
        }
        const st = stateAt(Math.max(a, store.cursor));
        const want = (kind === 'formation' ? st.formations : st.cells)[id];
        stats.compared++;
        if (!want) {
          fail(`${where}: ${kind} ${id} (at ${a}) on the page, not on the server at ${st.cursor}: ${canon(row)}`);
          continue;
        }
        if (want.deleted || row.deleted) {
          if (!want.deleted !== !row.deleted || want.tenantId !== row.tenantId) {
            fail(`${where}: ${kind} ${id} deleted: page ${!!row.deleted} (tenant ${row.tenantId}), server ${!!want.deleted} (tenant ${want.tenantId})`);
          }
          continue;
        }
        for (const k of Object.keys(want)) {
          if (kind === 'formation' && k === 'cells') continue;
          const g = canon(row[k] === undefined && want[k] === '' ? '' : row[k]);
          const w = canon(want[k]);
          if (g !== w) fail(`${where}: ${kind} ${id} (at ${a}, server at ${st.cursor}) field ${k}: page ${g}, server ${w}`);
        }
      }
    }
    const s = store.summary;
    if (s.dirty) {
      stats.dirtySteps++;
      return;
    }
    // A summary read ahead of the page is the server's at its own cursor
    // until the page gets there.
    const got = canon({ formations: s.formations, cells: s.cells, tenants: s.tenantList() });
    const want = canon(stateAt(Math.max(s.at, store.cursor)).summary);
    if (got !== want) fail(`${where}: summary at ${store.cursor} (read at ${s.at}), not dirty:\n page   ${got}\n server ${want}`);
  };

  const step = (i) => {
    for (const p of c.plan) {
      if (p.after !== i) continue;
      if (p.hold) {
        const { owner, kind, ids, read } = p.hold;
        const st = c.states[read];
        const from = kind === 'formation' ? st.formations : st.cells;
        const items = ids.filter((id) => from[id] && !from[id].deleted).map((id) => structuredClone(from[id]));
        const before = infinite(store);
        const { complete, effects } = store.hold(ownerOf(owner), kind, items, st.cursor);
        const told = named(effects);
        for (const k of infinite(store)) {
          if (!before.has(k) && complete && !told.has(k)) fail(`after msg ${i}: hold of ${owner} at ${st.cursor} left ${k} unknown without saying so`);
        }
        compare(`after msg ${i}, ${owner} read ${kind}s ${ids} at ${st.cursor}`);
      } else if (p.release) {
        store.release(ownerOf(p.release));
        compare(`after msg ${i}, ${p.release} released`);
      } else if (p.expect) {
        const { decided = [], unknown = [], dirty } = p.expect;
        for (const k of decided) {
          const [kind, id] = k.split(':');
          const a = store.at[kind].get(id);
          if (a === undefined || a === Infinity) fail(`after msg ${i}: ${k} is ${a === undefined ? 'not held' : 'unknown'}, want it folded into`);
        }
        for (const k of unknown) {
          const [kind, id] = k.split(':');
          if (store.at[kind].get(id) !== Infinity) fail(`after msg ${i}: ${k} is folded into, want it unknown (the page cannot decide)`);
        }
        if (dirty !== undefined && store.summary.dirty !== dirty) fail(`after msg ${i}: summary dirty ${store.summary.dirty}, want ${dirty}`);
      } else if (p.summary !== undefined) {
        const st = c.states[p.summary];
        store.setSummary({ cursor: st.cursor, epoch: 'e', ...st.summary }, c.tenant);
        compare(`after msg ${i}, the summary read at ${st.cursor}`);
      }
    }
  };

  step(c.start);
  for (let i = c.start; i < c.msgs.length; i++) {
    const m = c.msgs[i];
    const before = infinite(store);
    const applied = store.cursor < m.seq;
    store.apply(m.seq, m.subject, m.event, m.time);
    const eff = applied ? store.ring[store.ring.length - 1].eff : null;
    if (eff?.rule) stats.rejected[eff.rule] = (stats.rejected[eff.rule] || 0) + 1;
    stats.inherited += eff?.inherited?.length || 0;
    stats.stale += eff?.stale?.length || 0;
    const told = named([eff]);
    for (const k of infinite(store)) if (!before.has(k) && !told.has(k)) fail(`msg ${i} (seq ${m.seq}) left ${k} unknown without saying so`);
    compare(`after msg ${i} (seq ${m.seq})`);
    step(i + 1);
  }
  return { errors, stats: JSON.stringify(stats) };
})
