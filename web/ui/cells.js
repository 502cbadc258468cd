// The cells list and one cell's page.

import { Failure, h, ago, badge, mono, emptyState } from './dom.js';
import { describeError } from './sync.js';
import { ListView, td } from './list.js';
import { OneQuery } from './query.js';
import { CELL_STATES, CELL_OUTCOMES } from './store.js';
import { Timeline } from './timeline.js';
import { tenantOptions, firstRunHelp, filteredEmpty, metaRow, registryEmpty } from './shared.js';

// cellsTotal is how many cells match the list's filters, when the summary
// says (null when it cannot).
function cellsTotal(p, store) {
  const s = store.summary;
  const tenant = p.get('tenant') || '';
  const state = p.get('state');
  const outcome = p.get('outcome');
  if (p.get('prefix') || p.get('formation') || (state && outcome)) return null;
  if (s.tenant === tenant) return state ? s.cells.byState[state] ?? 0 : outcome ? s.cells.byOutcome[outcome] ?? 0 : s.cells.total;
  if (state || outcome) return null;
  return tenant ? s.tenants.get(tenant)?.cells ?? 0 : s.totals().cells;
}

const dash = () => h('span', { class: 'muted', text: '—' });
const exitCode = (c) => (c.exitCode === null || c.exitCode === undefined ? dash()
  : h('span', { class: c.exitCode === 0 ? 'exit ok' : 'exit bad', text: String(c.exitCode) }));
const reason = (c) => (c.reason ? h('span', { class: 'reason', title: c.reason, text: c.reason }) : dash());
// outcomeOf shows how a cell ended (fold v2), also after its teardown.
const outcomeOf = (c) => (c.outcome ? badge(c.outcome) : dash());
const cellLink = (c) => h('a', { href: `#/cells/${encodeURIComponent(c.id)}`, class: 'primary mono', text: c.id });

// Columns and row of a cell inside its formation's page.
export const cellColumnsIn = ['Cell', 'State', 'Outcome', 'Exit', 'Reason', 'Spec', 'Run', 'Created', 'Updated'].map((label) => ({ label }));
export function cellRowIn(c) {
  return h('tr', null,
    td('Cell', cellLink(c)), td('State', badge(c.state)), td('Outcome', outcomeOf(c)), td('Exit', exitCode(c)), td('Reason', reason(c)),
    td('Spec', c.specId ? mono(c.specId) : dash()), td('Run', c.runId ? mono(c.runId) : dash()),
    td('Created', ago(c.createdAt)), td('Updated', ago(c.updatedAt)));
}

export class CellsView {
  constructor(ctx, onChange) {
    // The live feed on a narrow screen (app.js places it).
    this.feedSlot = h('div', { class: 'feedinline' });
    this.list = new ListView(ctx, {
      name: 'cells',
      caption: 'Cells',
      kind: 'cell',
      path: '/v1/cells',
      base: '#/cells',
      onChange,
      pageSize: 100,
      filters: [
        { name: 'prefix', type: 'search', label: 'Id starts with', placeholder: 'Cell id prefix  ( / )' },
        { name: 'state', type: 'select', label: 'State', any: 'Any state', options: () => CELL_STATES.map((s) => [s, s]) },
        {
          name: 'outcome', type: 'select', label: 'Outcome', any: 'Any outcome',
          options: () => CELL_OUTCOMES.map((o) => [o, o === 'none' ? 'none yet' : o]),
        },
        { name: 'tenant', type: 'select', label: 'Tenant', any: 'All tenants', options: tenantOptions },
        { name: 'formation', type: 'text', label: 'Formation id', placeholder: 'Any formation' },
      ],
      columns: ['Cell', 'State', 'Outcome', 'Formation', 'Tenant', 'Exit', 'Reason', 'Updated'].map((label) => ({ label })),
      total: cellsTotal,
      registryEmpty,
      key: (c) => c.id,
      // A cell that inherits its formation's tenant keeps its lastSeq.
      version: (c) => `${c.lastSeq}|${c.tenantId}`,
      row: (c) => this.row(c),
      href: (c) => `#/cells/${encodeURIComponent(c.id)}`,
      empty: (store, filtered, clear) => (filtered
        ? filteredEmpty(clear) : firstRunHelp(store, 'cells')),
    });
    this.el = h('div', { class: 'view cells' },
      h('div', { class: 'viewhead' },
        h('h1', { tabindex: '-1', text: 'Cells' }),
        h('p', { class: 'lede', text: 'Every execution cell: admitted → running → completed or failed → destroyed. A state only ever moves forward; the outcome (completed or failed) stays after teardown.' })),
      this.feedSlot, this.list.el);
  }

  row(c) {
    const fcell = !c.formationId ? dash()
      : h('a', { href: `#/formations/${encodeURIComponent(c.formationId)}`, class: 'mono', text: c.formationId });
    return h('tr', null,
      td('Cell', cellLink(c)), td('State', badge(c.state)), td('Outcome', outcomeOf(c)), td('Formation', fcell),
      td('Tenant', c.tenantId || dash()), td('Exit', exitCode(c)), td('Reason', reason(c)), td('Updated', ago(c.updatedAt)));
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
    // An empty registry shows what to do first, not a feed waiting.
    this.feedSlot.hidden = registryEmpty(store);
    this.list.render(store);
  }

  title() {
    return 'Cells';
  }

  focusSearch() {
    return this.list.focusSearch();
  }

  stop() {
    this.list.stop();
  }
}

function jsonBlock(label, v) {
  return v === undefined || v === null ? '—' : h('pre', { class: 'json', tabindex: '0', 'aria-label': label, text: JSON.stringify(v, null, 2) });
}

export class CellView {
  constructor(ctx, id, log, onChange) {
    this.id = id;
    this.q = new OneQuery(ctx, { kind: 'cell', id, onChange });
    this.timeline = new Timeline(ctx, 'cell', id, log, onChange);
    this.h1 = h('h1', { tabindex: '-1', class: 'mono', text: id });
    this.badgeSlot = h('span');
    this.meta = h('dl', { class: 'meta' });
    this.missing = h('div', { hidden: true });
    this.failure = new Failure(() => this.q.retry());
    this.body = h('div', null,
      h('div', { class: 'pagehead' }, this.h1, this.badgeSlot),
      this.meta,
      this.timeline.el);
    this.el = h('div', { class: 'view cell' },
      h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/cells', text: 'Cells' }), h('span', { 'aria-hidden': 'true', text: '›' }), h('span', { 'aria-current': 'page', text: id })),
      this.failure.el, this.missing, this.body);
  }

  route() {}

  tenant() {
    return '';
  }

  ready() {
    return this.q.loaded;
  }

  entity(store) {
    return this.q.entity(store);
  }

  title() {
    return this.id;
  }

  render(store) {
    const c = this.q.entity(store);
    // A failed read: why, and Retry, above the page (in place of it when
    // it was never read).
    const err = this.q.error;
    if (err) {
      this.failure.show(this.q.loaded ? 'Could not refresh this cell' : 'Could not load this cell',
        describeError(err), this.q.throttle.retryAt(), this.q.throttle.busy);
    } else {
      this.failure.hide();
    }
    this.missing.hidden = !!c || (!!err && !this.q.loaded);
    this.body.hidden = !c;
    if (!c) {
      const sig = this.q.loaded ? 'missing' : 'loading';
      if (sig === this.missingSig) return;
      this.missingSig = sig;
      this.missing.replaceChildren(!this.q.loaded ? h('p', { class: 'loading', text: 'Loading…' }) : emptyState(`No cell “${this.id}”`,
        h('p', { text: 'Its first event has not arrived yet; this page updates by itself when it does.' }),
        h('a', { href: '#/cells', class: 'btn', text: 'All cells' })));
      return;
    }
    this.missingSig = '';
    // A cell that inherits its formation's tenant keeps its lastSeq.
    const sig = `${c.lastSeq}|${c.tenantId}`;
    if (this.seen !== c || this.seenSig !== sig) {
      this.seen = c;
      this.seenSig = sig;
      this.badgeSlot.replaceChildren(badge(c.state, 'big'));
      this.meta.replaceChildren(
        ...metaRow('Formation', c.formationId ? h('a', { href: `#/formations/${encodeURIComponent(c.formationId)}`, text: c.formationId }) : '—'),
        ...metaRow('Tenant', c.tenantId || '—'),
        ...metaRow('Outcome', outcomeOf(c)),
        ...metaRow('Exit code', exitCode(c)),
        ...metaRow('Reason', c.reason || '—'),
        ...metaRow('Spec', c.specId ? mono(c.specId) : '—'),
        ...metaRow('Run', c.runId ? mono(c.runId) : '—'),
        ...metaRow('Created', ago(c.createdAt)),
        ...metaRow('Updated', ago(c.updatedAt)),
        ...metaRow('Last change', `#${c.lastSeq}`),
        ...metaRow('Correlation', jsonBlock('Correlation', c.correlation)),
        ...metaRow('Compliance', jsonBlock('Compliance summary', c.compliance)));
    }
    this.timeline.render();
  }

  focusSearch() {
    return false;
  }

  stop() {
    this.q.stop();
  }
}
