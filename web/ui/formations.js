// The formations list (with the overview of the whole registry) and one
// formation's page.

import { h, num, ago, badge, cellBar, mono, emptyState } from './dom.js';
import { ListView, td } from './list.js';
import { CELL_STATES, FORMATION_STATUSES, countCell, keyOf, emptyCounts } from './store.js';
import { entry, history } from './feed.js';
import { cellColumnsIn, cellRowIn, cellItems } from './cells.js';
import { tenantOptions, firstRunHelp, filteredEmpty, metaRow } from './shared.js';

const byKey = (key) => (a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
const nameKey = (f) => (f.name || f.id).toLowerCase();

function formationRow(f, store) {
  const c = store.countsOf(f.id);
  const href = `#/formations/${encodeURIComponent(f.id)}`;
  return h('tr', null,
    td('Formation', h('a', { href, class: 'primary', text: f.name || f.id }), f.name ? h('div', { class: 'sub' }, mono(f.id)) : null),
    td('Tenant', f.tenantId ? h('span', { class: 'tenant', text: f.tenantId }) : h('span', { class: 'muted', text: '—' })),
    td('Status', badge(f.status)),
    td('Cells', cellBar(c)),
    td('Updated', ago(f.updatedAt)));
}

function countsSig(c) {
  return `${c.total},${c.admitted},${c.running},${c.completed},${c.failed},${c.destroyed}`;
}

// Overview sums the registry for the cards above the list.
function overview(store) {
  const byStatus = {};
  for (const f of store.formations.values()) if (!f.deleted) byStatus[f.status] = (byStatus[f.status] || 0) + 1;
  // Counted as a formation's cells are (rule 7): failures stay failures
  // after teardown.
  const cells = emptyCounts();
  for (const c of store.cells.values()) countCell(cells, keyOf(c), 1);
  return { byStatus, cells };
}

function card(label, value, extra, cls = '') {
  return h('div', { class: `card ${cls}` }, h('div', { class: 'cardlabel', text: label }), h('div', { class: 'cardvalue', text: value }), extra);
}

export class FormationsView {
  constructor(onChange) {
    this.cards = h('div', { class: 'cards', 'aria-label': 'Registry summary', role: 'group' });
    this.list = new ListView({
      name: 'formations',
      caption: 'Formations',
      base: '#/formations',
      onChange,
      pageSize: 50,
      filters: [
        { name: 'q', type: 'search', label: 'Search', placeholder: 'Name or id  ( / )' },
        { name: 'tenant', type: 'select', label: 'Tenant', any: 'All tenants', options: tenantOptions },
        { name: 'status', type: 'select', label: 'Status', any: 'Any status', options: () => FORMATION_STATUSES.map((s) => [s, s]) },
        { name: 'sort', type: 'select', label: 'Sort', any: 'By name', options: () => [['updated', 'By last update'], ['id', 'By id']] },
      ],
      columns: [{ label: 'Formation' }, { label: 'Tenant' }, { label: 'Status' }, { label: 'Cells', cls: 'wide' }, { label: 'Updated' }],
      items: (store, p) => {
        const q = (p.get('q') || '').toLowerCase();
        const tenant = p.get('tenant');
        const status = p.get('status');
        const out = store.liveFormations().filter((f) => (!tenant || f.tenantId === tenant) && (!status || f.status === status)
          && (!q || f.id.toLowerCase().includes(q) || f.name.toLowerCase().includes(q)));
        const sort = p.get('sort');
        if (sort === 'updated') out.sort((a, b) => (a.updatedAt < b.updatedAt ? 1 : a.updatedAt > b.updatedAt ? -1 : 0));
        else if (sort === 'id') out.sort(byKey((f) => f.id));
        else out.sort(byKey(nameKey));
        return out;
      },
      total: (store) => store.liveFormations().length,
      key: (f) => f.id,
      version: (f) => `${f.lastSeq}|${countsSig(this.store.countsOf(f.id))}`,
      row: (f) => formationRow(f, this.store),
      href: (f) => `#/formations/${encodeURIComponent(f.id)}`,
      empty: (store, filtered, clear) => (filtered ? filteredEmpty(clear) : firstRunHelp(store, 'formations')),
    });
    this.el = h('div', { class: 'view formations' },
      h('div', { class: 'viewhead' },
        h('h1', { tabindex: '-1', text: 'Formations' }),
        h('p', { class: 'lede', text: 'Each formation groups execution cells. Rows change as lifecycle events arrive — newest state wins by the fold rules, never by arrival order.' })),
      this.cards, this.list.el);
  }

  route(r) {
    this.list.setParams(r.params);
  }

  render(store) {
    this.store = store;
    if (this.cardsVersion !== store.version || this.cardsStore !== store) {
      this.cardsVersion = store.version;
      this.cardsStore = store;
      const o = overview(store);
      const nf = store.liveFormations().length;
      const active = (o.byStatus.running || 0) + (o.byStatus.launching || 0);
      const statusLine = FORMATION_STATUSES.filter((s) => o.byStatus[s]).map((s) => `${o.byStatus[s]} ${s}`).join(' · ') || 'none yet';
      this.cards.hidden = nf === 0 && o.cells.total === 0;
      this.cards.replaceChildren(
        card('Formations', num(nf), h('div', { class: 'cardsub', text: statusLine })),
        card('Active formations', num(active), h('div', { class: 'cardsub', text: `${num(o.byStatus.degraded || 0)} degraded` }), active ? 'accent-running' : ''),
        card('Cells', num(o.cells.total), cellBar(o.cells)),
        card('Running cells', num(o.cells.running), h('div', { class: 'cardsub', text: `${num(o.cells.admitted)} admitted, waiting` }), o.cells.running ? 'accent-running' : ''),
        card('Failed cells', num(o.cells.failed), h('div', { class: 'cardsub', text: `${num(o.cells.completed)} completed` }), o.cells.failed ? 'accent-failed' : ''));
    }
    this.list.render(store);
  }

  title() {
    return 'Formations';
  }

  focusSearch() {
    return this.list.focusSearch();
  }
}

export class FormationView {
  constructor(id, log, onChange) {
    this.id = id;
    this.log = log;
    this.hist = [];
    this.crumbName = h('span', { 'aria-current': 'page', text: id });
    this.h1 = h('h1', { tabindex: '-1', text: id });
    this.badgeSlot = h('span');
    this.meta = h('dl', { class: 'meta' });
    this.legend = h('div', { class: 'legend' });
    this.events = h('ol', { class: 'events compact', 'aria-label': 'Latest events of this formation, newest first' });
    this.eventsEmpty = h('p', { class: 'muted', text: 'No events of this formation in view yet.' });
    this.missing = h('div', { hidden: true });
    this.cells = new ListView({
      name: 'cells',
      caption: `Cells of formation ${id}`,
      base: `#/formations/${encodeURIComponent(id)}`,
      onChange,
      pageSize: 100,
      filters: [
        { name: 'q', type: 'search', label: 'Search', placeholder: 'Cell id  ( / )' },
        { name: 'state', type: 'select', label: 'State', any: 'Any state', options: () => CELL_STATES.map((s) => [s, s]) },
      ],
      columns: cellColumnsIn,
      items: (store, p) => cellItems(store, p, id),
      total: (store) => store.countsOf(id).total,
      key: (c) => c.id,
      version: (c) => c.lastSeq,
      row: cellRowIn,
      href: (c) => `#/cells/${encodeURIComponent(c.id)}`,
      empty: (store, filtered, clear) => (filtered ? filteredEmpty(clear)
        : emptyState('No cells yet', h('p', { text: 'Cells appear here when a supervisor admits them into this formation.' }))),
    });
    this.body = h('div', null,
      h('div', { class: 'pagehead' }, this.h1, this.badgeSlot),
      this.meta,
      h('section', { 'aria-labelledby': 'fc-h' }, h('h2', { id: 'fc-h', text: 'Cells' }), this.legend, this.cells.el),
      h('section', { 'aria-labelledby': 'fe-h' }, h('h2', { id: 'fe-h', text: 'Latest events' }), this.eventsEmpty, this.events));
    this.el = h('div', { class: 'view formation' },
      h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/formations', text: 'Formations' }), h('span', { 'aria-hidden': 'true', text: '›' }), this.crumbName),
      this.missing, this.body);
    history(`cellos.events.formation.${id}.>`).then((evs) => {
      this.hist = evs;
      this.eventsSig = '';
      onChange();
    }, () => {});
  }

  route(r) {
    this.cells.setParams(r.params);
  }

  title() {
    return this.name || this.id;
  }

  render(store) {
    const f = store.formation(this.id);
    this.missing.hidden = !!f;
    this.body.hidden = !f;
    if (!f) {
      this.missing.replaceChildren(store.loading ? h('p', { class: 'loading', text: 'Loading…' }) : emptyState(`No formation “${this.id}”`,
        h('p', { text: 'It may have been deleted, or its first event has not arrived yet. This page updates by itself when it does.' }),
        h('a', { href: '#/formations', class: 'btn', text: 'All formations' })));
      return;
    }
    if (this.seenSeq !== f.lastSeq) {
      this.seenSeq = f.lastSeq;
      this.name = f.name || f.id;
      this.h1.textContent = this.name;
      this.crumbName.textContent = this.name;
      this.badgeSlot.replaceChildren(badge(f.status, 'big'));
      const labels = Object.entries(f.labels || {});
      this.meta.replaceChildren(
        ...metaRow('Id', mono(f.id)),
        ...metaRow('Tenant', f.tenantId || '—'),
        ...metaRow('Created', ago(f.createdAt)),
        ...metaRow('Updated', ago(f.updatedAt)),
        ...metaRow('Last change', `#${num(f.lastSeq)}`),
        ...metaRow('Labels', labels.length ? h('span', { class: 'chips' }, labels.map(([k, v]) => h('span', { class: 'chip', text: `${k}=${v}` }))) : '—'));
    }
    const c = store.countsOf(this.id);
    const sig = JSON.stringify(c);
    if (sig !== this.legendSig) {
      this.legendSig = sig;
      // Completed and failed are outcomes, kept after teardown; destroyed
      // counts every torn-down cell, whatever its outcome.
      this.legend.replaceChildren(cellBar(c),
        h('ul', { class: 'legendlist' }, CELL_STATES.map((s) => h('li', null, badge(s), h('span', { class: 'n', text: num(c[s]) })))));
    }
    this.cells.render(store);
    this.renderEvents(store);
  }

  renderEvents(store) {
    const id = this.id;
    const related = (e) => (e.d.kind === 'formation' && e.d.id === id) || e.d.formationId === id
      || (e.d.kind === 'cell' && store.cells.get(e.d.id)?.formationId === id);
    const seen = new Set();
    const all = [...this.log.newest(200, related), ...this.hist.filter(related)]
      .filter((e) => !seen.has(e.seq) && seen.add(e.seq))
      .sort((a, b) => b.seq - a.seq)
      .slice(0, 25);
    const sig = all.map((e) => e.seq).join(',');
    if (sig === this.eventsSig) return;
    this.eventsSig = sig;
    this.events.replaceChildren(...all.map((e) => entry(e)));
    this.eventsEmpty.hidden = all.length > 0;
  }

  focusSearch() {
    return this.cells.focusSearch();
  }
}
