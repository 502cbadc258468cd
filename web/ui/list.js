// A filterable table over one page of a server list (GET /v1/formations or
// /v1/cells). Filters and the page live in the URL
// (#/cells?state=failed&after=c-0099&page=2), so a view can be bookmarked
// and shared; each filter is a parameter of the API, so the server filters
// and pages and the page holds one page of rows, whatever the registry's
// size. The rows are ordered by id, the only order the server pages in.

import { h, num, syncRows, Failure } from './dom.js';
import { ListQuery } from './query.js';
import { describeError } from './sync.js';

let uid = 0;
const SEARCH_DEBOUNCE = 250;

export class ListView {
  // opts: {name, caption, kind, path, filters, columns, key, version,
  //        row(item), href(item), pageSize, empty(store, filtered, clear),
  //        registryEmpty(store), total(params, store) → number | null,
  //        others(effect, store, query), base: '#/cells',
  //        fixed: {formation: id}, onChange}
  // A filter: {name (the URL's and the API's), type: 'search' | 'text' |
  //            'select', label, placeholder, any, options(store)}
  constructor(ctx, opts) {
    this.o = opts;
    this.params = new URLSearchParams();
    this.controls = {};
    this.stack = []; // the after of each page before this one
    this.q = new ListQuery(ctx, { kind: opts.kind, path: opts.path, onChange: opts.onChange, others: opts.others });
    const bar = h('div', { class: 'toolbar', role: 'search', 'aria-label': `Filter ${opts.name}` });
    this.bar = bar;
    for (const f of opts.filters) {
      const id = `f${++uid}`;
      let input;
      if (f.type === 'select') {
        input = h('select', { id });
        input.addEventListener('change', () => this.set(f.name, input.value));
      } else {
        input = h('input', {
          id, type: f.type === 'search' ? 'search' : 'text', placeholder: f.placeholder || '', autocomplete: 'off', spellcheck: 'false',
          'data-search': f.type === 'search' ? '' : undefined,
        });
        let timer = 0;
        input.addEventListener('input', () => {
          clearTimeout(timer);
          timer = setTimeout(() => this.set(f.name, input.value.trim()), SEARCH_DEBOUNCE);
        });
      }
      this.controls[f.name] = input;
      bar.append(h('div', { class: `field ${f.type}` }, h('label', { for: id, text: f.label }), input));
    }
    this.clearBtn = h('button', { type: 'button', class: 'btn small ghost', text: 'Clear filters' });
    this.clearBtn.addEventListener('click', () => {
      this.params = new URLSearchParams();
      this.stack = [];
      this.pushParams();
    });
    this.countEl = h('p', { class: 'resultcount' });
    bar.append(h('div', { class: 'field actions' }, this.clearBtn));

    this.tbody = h('tbody');
    this.tbody.addEventListener('click', (e) => {
      // The whole row is a target for the mouse; the link in it is the
      // keyboard's (and the screen reader's) way in.
      if (e.target.closest('a, button, summary, input, select')) return;
      const tr = e.target.closest('tr[data-href]');
      if (tr && !window.getSelection().toString()) location.hash = tr.dataset.href;
    });
    this.table = h('table', { class: `grid ${opts.name}` },
      h('caption', { class: 'sr-only', text: opts.caption }),
      h('thead', null, h('tr', null, opts.columns.map((c) => h('th', { scope: 'col', class: c.cls || '', text: c.label })))),
      this.tbody);
    this.prev = h('button', { type: 'button', class: 'btn small', text: '← Previous' });
    this.next = h('button', { type: 'button', class: 'btn small', text: 'Next →' });
    this.prev.addEventListener('click', () => this.page(-1));
    this.next.addEventListener('click', () => this.page(1));
    this.pageInfo = h('span', { class: 'pageinfo' });
    this.pager = h('nav', { class: 'pager', 'aria-label': `${opts.name} pages` }, this.prev, this.pageInfo, this.next);
    this.emptyEl = h('div', { class: 'emptywrap' });
    this.failure = new Failure(() => this.q.retry());
    this.tableWrap = h('div', { class: 'tablewrap' }, this.table);
    this.el = h('div', { class: 'list' }, bar, this.countEl, this.failure.el, this.emptyEl, this.tableWrap, this.pager);
  }

  // filters are the URL's filter parameters (no page).
  filters() {
    const f = new URLSearchParams();
    for (const { name } of this.o.filters) if (this.params.get(name)) f.set(name, this.params.get(name));
    return f;
  }

  set(name, value) {
    if ((this.params.get(name) || '') === value) return;
    if (value) this.params.set(name, value);
    else this.params.delete(name);
    this.params.delete('after');
    this.params.delete('page');
    this.stack = [];
    this.pushParams();
  }

  page(delta) {
    const n = this.pageNo();
    if (delta > 0) {
      if (!this.q.next || !this.q.current()) return;
      this.stack.push(this.params.get('after') || '');
      this.params.set('after', this.q.next);
      this.params.set('page', String((n || this.stack.length) + 1));
    } else {
      // Without the way back (a bookmarked page), Previous goes to the first.
      const prev = this.stack.pop() || '';
      if (prev) this.params.set('after', prev);
      else this.params.delete('after');
      if (prev && n > 2) this.params.set('page', String(n - 1));
      else this.params.delete('page');
    }
    this.pushParams();
    this.table.scrollIntoView({ block: 'nearest' });
  }

  // pageNo is the page's number, 0 when unknown (a bookmarked page).
  pageNo() {
    if (!this.params.get('after')) return 1;
    return Number(this.params.get('page')) || 0;
  }

  // pushParams records the filters and the page in the URL without a
  // history entry per keystroke, asks the server, and redraws.
  pushParams() {
    const q = this.params.toString();
    history.replaceState(null, '', `${this.o.base}${q ? `?${q}` : ''}`);
    this.ask();
    this.o.onChange?.();
  }

  // setParams takes the URL's parameters (navigation).
  setParams(params) {
    const before = this.filters().toString();
    this.params = new URLSearchParams(params);
    if (this.filters().toString() !== before) this.stack = [];
    this.ask();
  }

  // ask maps the URL's parameters to the API's and reads that page.
  ask() {
    const api = new URLSearchParams();
    for (const [k, v] of this.filters()) api.set(k, v);
    for (const [k, v] of Object.entries(this.o.fixed || {})) api.set(k, v);
    if (this.params.get('after')) api.set('after', this.params.get('after'));
    api.set('limit', String(this.o.pageSize));
    this.q.set(api);
  }

  tenant() {
    return this.params.get('tenant') || '';
  }

  syncControls(store) {
    for (const f of this.o.filters) {
      const el = this.controls[f.name];
      const v = this.params.get(f.name) || '';
      if (f.type === 'select') {
        const opts = [['', f.any], ...f.options(store)];
        const sig = opts.map((o) => o.join('\u0001')).join('\u0000');
        if (el._sig !== sig) {
          el.replaceChildren(...opts.map(([value, label]) => h('option', { value, text: label })));
          el._sig = sig;
        }
        if (v && !opts.some((o) => o[0] === v)) el.append(h('option', { value: v, text: v }));
      }
      if (el.value !== v && document.activeElement !== el) el.value = v;
    }
  }

  render(store) {
    this.syncControls(store);
    const rows = this.q.rows(store);
    syncRows(this.tbody, rows, this.o.key, this.o.version, (it) => {
      const tr = this.o.row(it);
      tr.dataset.href = this.o.href(it);
      return tr;
    });
    const current = this.q.current();
    this.table.setAttribute('aria-busy', String(!current));
    // A failed read: its error and Retry in place of the list when the
    // rows on screen are not the answer asked for (or there are none);
    // above them when they are, and only a refresh failed.
    const err = this.q.error;
    const failed = !!err && !current;
    if (err) {
      this.failure.show(current ? `Could not refresh the ${this.o.name}` : `Could not load the ${this.o.name}`,
        describeError(err), this.q.throttle.retryAt(), this.q.throttle.busy);
    } else {
      this.failure.hide();
    }
    this.el.classList.toggle('failed', failed);

    const filtered = this.o.filters.some((f) => this.params.get(f.name));
    this.clearBtn.hidden = !filtered;
    const total = this.o.total(this.filters(), store);
    const noun = this.o.name;
    const size = this.o.pageSize;
    const n = this.pageNo();
    const pages = total === null ? 0 : Math.max(1, Math.ceil(total / size));
    this.countEl.hidden = failed;
    this.countEl.textContent = !this.q.loaded ? `Loading ${noun}…`
      : !filtered ? `${num(total ?? 0)} ${noun}`
        : total !== null ? `${num(total)} ${noun} match` : `Matching ${noun}, ${num(size)} a page`;
    const empty = current && rows.length === 0;
    // An empty registry shows only what to do about it, not idle filters.
    if (empty && !filtered && this.o.registryEmpty(store)) this.bar.hidden = this.countEl.hidden = true;
    else this.bar.hidden = false;
    this.tableWrap.hidden = rows.length === 0 || failed;
    // Rebuilt only when its kind changes, so that its buttons keep focus.
    const sig = empty ? `${filtered}|${this.o.registryEmpty(store)}` : '';
    if (sig !== this.emptySig) {
      this.emptySig = sig;
      this.emptyEl.replaceChildren(empty ? this.o.empty(store, filtered, () => this.clearBtn.click()) : '');
    }
    const first = n === 1;
    this.pager.hidden = (first && !this.q.next) || failed;
    this.prev.disabled = first;
    this.next.disabled = !this.q.next || !current;
    const from = n ? (n - 1) * size + 1 : 0;
    const range = rows.length === 0 ? 'none' : from ? `${num(from)}–${num(from + rows.length - 1)}` : `${num(rows.length)} from ${rows[0].id}`;
    this.pageInfo.textContent = `${range}${total !== null ? ` of ${num(total)}` : ''} · page ${n ? num(n) : '?'}${pages ? ` of ${num(pages)}` : ''}`;
  }

  focusSearch() {
    const s = this.el.querySelector('[data-search]');
    if (s) s.focus();
    return !!s;
  }

  stop() {
    this.q.stop();
  }
}

// td builds a table cell labelled for the narrow (card) layout.
export function td(label, ...children) {
  // The state column is placed beside the title on the narrow layout.
  const cls = label === 'State' || label === 'Status' ? 'st' : label === 'Cells' ? 'wide' : undefined;
  return h('td', { 'data-label': label, class: cls }, ...children);
}
