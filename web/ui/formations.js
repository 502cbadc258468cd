// The formations list (with the summary cards of the whole registry, or of
// one tenant) and one formation's page.

import { Failure, h, num, ago, badge, cellBar, mono, emptyState } from './dom.js';
import { describeError } from './sync.js';
import { ListView, td } from './list.js';
import { OneQuery } from './query.js';
import { CELL_STATES, FORMATION_STATUSES } from './store.js';
import { entry } from './feed.js';
import { Timeline } from './timeline.js';
import { cellColumnsIn, cellRowIn } from './cells.js';
import { tenantOptions, firstRunHelp, filteredEmpty, metaRow, registryEmpty } from './shared.js';

function formationRow(f) {
  const href = `#/formations/${encodeURIComponent(f.id)}`;
  return h('tr', null,
    td('Formation', h('a', { href, class: 'primary', text: f.name || f.id }), f.name ? h('div', { class: 'sub' }, mono(f.id)) : null),
    td('Tenant', f.tenantId ? h('span', { class: 'tenant', text: f.tenantId }) : h('span', { class: 'muted', text: '—' })),
    td('Status', badge(f.status)),
    td('Cells', cellBar(f.cells)),
    td('Updated', ago(f.updatedAt)));
}

function countsSig(c) {
  return `${c.total},${c.admitted},${c.running},${c.completed},${c.failed},${c.destroyed}`;
}

function card(label, value, extra, cls = '') {
  return h('div', { class: `card ${cls}` }, h('div', { class: 'cardlabel', text: label }), h('div', { class: 'cardvalue', text: value }), extra);
}

// How many tenants the tenants card names; the tenant filter lists all.
const CARD_TENANTS = 4;

// formationsTotal is how many formations match the list's filters, when the
// summary says (null when it cannot).
function formationsTotal(p, store) {
  const s = store.summary;
  const tenant = p.get('tenant') || '';
  const status = p.get('status');
  if (p.get('prefix')) return null;
  if (s.tenant === tenant) return status ? s.formations.byStatus[status] ?? 0 : s.formations.total;
  if (status) return null;
  return tenant ? s.tenants.get(tenant)?.formations ?? 0 : s.totals().formations;
}

export class FormationsView {
  constructor(ctx, onChange) {
    this.cards = h('div', { class: 'cards', 'aria-label': 'Registry summary', role: 'group' });
    // The live feed on a narrow screen (app.js places it).
    this.feedSlot = h('div', { class: 'feedinline' });
    this.list = new ListView(ctx, {
      name: 'formations',
      caption: 'Formations',
      kind: 'formation',
      path: '/v1/formations',
      base: '#/formations',
      onChange,
      pageSize: 50,
      filters: [
        { name: 'prefix', type: 'search', label: 'Id starts with', placeholder: 'Formation id prefix  ( / )' },
        { name: 'tenant', type: 'select', label: 'Tenant', any: 'All tenants', options: tenantOptions },
        { name: 'status', type: 'select', label: 'Status', any: 'Any status', options: () => FORMATION_STATUSES.map((s) => [s, s]) },
      ],
      columns: [{ label: 'Formation' }, { label: 'Tenant' }, { label: 'Status' }, { label: 'Cells', cls: 'wide' }, { label: 'Updated' }],
      total: formationsTotal,
      // A cell this page does not hold moves the counts of its formation:
      // read the page again when that may be one of its rows.
      others: (eff, store, q) => {
        if (!eff.unknown || eff.kind !== 'cell') return false;
        const fid = typeof eff.data.formationId === 'string' ? eff.data.formationId : '';
        return !fid || q.ids.includes(fid);
      },
      registryEmpty,
      key: (f) => f.id,
      version: (f) => `${f.lastSeq}|${countsSig(f.cells)}`,
      row: formationRow,
      href: (f) => `#/formations/${encodeURIComponent(f.id)}`,
      empty: (store, filtered, clear) => (filtered ? filteredEmpty(clear) : firstRunHelp(store, 'formations')),
    });
    this.el = h('div', { class: 'view formations' },
      h('div', { class: 'viewhead' },
        h('h1', { tabindex: '-1', text: 'Formations' }),
        h('p', { class: 'lede', text: 'Each formation groups execution cells. Rows change as lifecycle events arrive — newest state wins by the fold rules, never by arrival order.' })),
      this.cards, this.feedSlot, this.list.el);
  }

  route(r) {
    this.list.setParams(r.params);
  }

  tenant() {
    return this.list.tenant();
  }

  ready() {
    return this.list.q.current();
  }

  rows(store) {
    return this.list.q.rows(store);
  }

  render(store) {
    const s = store.summary;
    if (this.cardsSummary !== s || this.cardsVersion !== s.version) {
      this.cardsSummary = s;
      this.cardsVersion = s.version;
      const by = s.formations.byStatus;
      const cells = s.cellCounts();
      const of = s.tenant ? ` · ${s.tenant}` : '';
      const active = (by.running || 0) + (by.launching || 0);
      const statusLine = FORMATION_STATUSES.filter((st) => by[st]).map((st) => `${num(by[st])} ${st}`).join(' · ') || 'none yet';
      const tenants = s.tenantList();
      const named = tenants.filter((t) => t.id).sort((a, b) => b.cells - a.cells || (a.id < b.id ? -1 : 1)).slice(0, CARD_TENANTS);
      const tenantLine = h('ul', { class: 'cardlist' }, named.map((t) => h('li', null,
        h('a', { href: `#/formations?tenant=${encodeURIComponent(t.id)}`, text: t.id }),
        ` ${num(t.cells)} cells${t.failed ? `, ${num(t.failed)} failed` : ''}`)));
      const totals = s.totals();
      this.cards.hidden = totals.formations === 0 && totals.cells === 0;
      // An empty registry shows what to do first, not a feed waiting.
      this.feedSlot.hidden = this.cards.hidden;
      this.cards.setAttribute('aria-label', s.tenant ? `Summary of tenant ${s.tenant}` : 'Registry summary');
      this.cards.replaceChildren(
        card(`Formations${of}`, num(s.formations.total), h('div', { class: 'cardsub', text: statusLine })),
        card(`Active formations${of}`, num(active), h('div', { class: 'cardsub', text: `${num(by.degraded || 0)} degraded` }), active ? 'accent-running' : ''),
        card(`Cells${of}`, num(cells.total), cellBar(cells)),
        card(`Running cells${of}`, num(cells.running), h('div', { class: 'cardsub', text: `${num(cells.admitted)} admitted, waiting` }), cells.running ? 'accent-running' : ''),
        card(`Failed cells${of}`, num(cells.failed), h('div', { class: 'cardsub', text: `${num(cells.completed)} completed · ${num(s.cells.byOutcome.none || 0)} without an outcome` }), cells.failed ? 'accent-failed' : ''),
        card('Tenants', num(tenants.filter((t) => t.id).length), tenantLine));
    }
    this.list.render(store);
  }

  title() {
    return 'Formations';
  }

  focusSearch() {
    return this.list.focusSearch();
  }

  stop() {
    this.list.stop();
  }
}

export class FormationView {
  constructor(ctx, id, log, onChange) {
    this.id = id;
    this.log = log;
    this.crumbName = h('span', { 'aria-current': 'page', text: id });
    this.h1 = h('h1', { tabindex: '-1', text: id });
    this.badgeSlot = h('span');
    this.meta = h('dl', { class: 'meta' });
    this.legend = h('div', { class: 'legend' });
    this.timeline = new Timeline(ctx, 'formation', id, log, onChange);
    // Its cells' events are on their own timelines (their subjects do not
    // name the formation); here, the latest the page saw arrive.
    this.events = h('ol', { class: 'events compact', 'aria-label': 'Latest events of its cells, newest first' });
    this.eventsEmpty = h('p', { class: 'muted', text: 'No event of its cells has arrived since this page opened; each cell’s page has its timeline.' });
    this.missing = h('div', { hidden: true });
    this.failure = new Failure(() => this.fq.retry());
    // The formation itself; its counts move with every cell of it, also the
    // cells not on screen: those are read again.
    this.fq = new OneQuery(ctx, {
      kind: 'formation', id, onChange,
      others: (eff) => {
        if (!eff.unknown || eff.kind !== 'cell') return false;
        const fid = typeof eff.data.formationId === 'string' ? eff.data.formationId : '';
        return !fid || fid === id;
      },
    });
    this.cells = new ListView(ctx, {
      name: 'cells',
      caption: `Cells of formation ${id}`,
      kind: 'cell',
      path: '/v1/cells',
      fixed: { formation: id },
      base: `#/formations/${encodeURIComponent(id)}`,
      onChange,
      pageSize: 100,
      filters: [
        { name: 'prefix', type: 'search', label: 'Id starts with', placeholder: 'Cell id prefix  ( / )' },
        { name: 'state', type: 'select', label: 'State', any: 'Any state', options: () => CELL_STATES.map((s) => [s, s]) },
      ],
      columns: cellColumnsIn,
      // The formation's counts say how many of its cells are in a state
      // (completed and failed count outcomes, not states).
      total: (p, store) => {
        const c = this.fq.entity(store)?.cells;
        const state = p.get('state');
        if (!c || p.get('prefix') || (state && !['admitted', 'running', 'destroyed'].includes(state))) return null;
        return state ? c[state] : c.total;
      },
      registryEmpty: (store) => !this.fq.entity(store)?.cells.total,
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
      this.timeline.el,
      h('section', { 'aria-labelledby': 'fe-h' }, h('h2', { id: 'fe-h', text: 'Latest events of its cells' }), this.eventsEmpty, this.events));
    this.el = h('div', { class: 'view formation' },
      h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/formations', text: 'Formations' }), h('span', { 'aria-hidden': 'true', text: '›' }), this.crumbName),
      this.failure.el, this.missing, this.body);
  }

  route(r) {
    this.cells.setParams(r.params);
  }

  tenant() {
    return '';
  }

  ready() {
    return this.fq.loaded && this.cells.q.current();
  }

  rows(store) {
    return this.cells.q.rows(store);
  }

  entity(store) {
    return this.fq.entity(store);
  }

  title() {
    return this.name || this.id;
  }

  render(store) {
    const f = this.fq.entity(store);
    // A failed read: why, and Retry, above the page (in place of it when
    // it was never read).
    const err = this.fq.error;
    if (err) {
      this.failure.show(this.fq.loaded ? 'Could not refresh this formation' : 'Could not load this formation',
        describeError(err), this.fq.throttle.retryAt(), this.fq.throttle.busy);
    } else {
      this.failure.hide();
    }
    this.missing.hidden = !!f || (!!err && !this.fq.loaded);
    this.body.hidden = !f;
    if (!f) {
      const sig = this.fq.loaded ? 'missing' : 'loading';
      if (sig === this.missingSig) return;
      this.missingSig = sig;
      this.missing.replaceChildren(!this.fq.loaded ? h('p', { class: 'loading', text: 'Loading…' }) : emptyState(`No formation “${this.id}”`,
        h('p', { text: 'It may have been deleted, or its first event has not arrived yet. This page updates by itself when it does.' }),
        h('a', { href: '#/formations', class: 'btn', text: 'All formations' })));
      return;
    }
    if (this.seen !== f || this.seenSeq !== f.lastSeq) {
      this.seen = f;
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
    this.missingSig = '';
    const c = f.cells;
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
    this.timeline.render();
    const related = (e) => e.d.kind === 'cell' && (e.d.formationId === id || store.get('cell', e.d.id)?.formationId === id);
    const all = this.log.newest(25, related);
    const sig = all.map((e) => e.seq).join(',');
    if (sig === this.eventsSig) return;
    this.eventsSig = sig;
    this.events.replaceChildren(...all.map((e) => entry(e)));
    this.eventsEmpty.hidden = all.length > 0;
  }

  focusSearch() {
    return this.cells.focusSearch();
  }

  stop() {
    this.fq.stop();
    this.cells.stop();
  }
}
