// A filterable, paginated table over the store. Filters live in the URL
// (#/cells?state=failed&page=2), so a view can be bookmarked and shared.
// Only one page of rows is ever in the DOM, so 10,000 cells cost no more to
// draw than 100; the filtered list is recomputed only when the store or the
// filters changed.

import { h, num, syncRows } from './dom.js';

let uid = 0;

export class ListView {
  // opts: {name, caption, filters, columns, items(store, params), key,
  //        version, row(item), href(item), pageSize, empty(store, filtered),
  //        base: '#/cells', fixed: {formation: id}}
  constructor(opts) {
    this.o = opts;
    this.params = new URLSearchParams();
    this.controls = {};
    this.cacheKey = '';
    this.list = [];
    const bar = h('div', { class: 'toolbar', role: 'search', 'aria-label': `Filter ${opts.name}` });
    this.bar = bar;
    for (const f of opts.filters) {
      const id = `f${++uid}`;
      let input;
      if (f.type === 'search') {
        input = h('input', { id, type: 'search', placeholder: f.placeholder || '', autocomplete: 'off', spellcheck: 'false', 'data-search': '' });
        input.addEventListener('input', () => this.set(f.name, input.value.trim()));
      } else {
        input = h('select', { id });
        input.addEventListener('change', () => this.set(f.name, input.value));
      }
      this.controls[f.name] = input;
      bar.append(h('div', { class: `field ${f.type}` }, h('label', { for: id, text: f.label }), input));
    }
    this.clearBtn = h('button', { type: 'button', class: 'btn small ghost', text: 'Clear filters' });
    this.clearBtn.addEventListener('click', () => {
      this.params = new URLSearchParams();
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
    this.tableWrap = h('div', { class: 'tablewrap' }, this.table);
    this.el = h('div', { class: 'list' }, bar, this.countEl, this.emptyEl, this.tableWrap, this.pager);
  }

  set(name, value) {
    if (value) this.params.set(name, value);
    else this.params.delete(name);
    this.params.delete('page');
    this.pushParams();
  }

  page(delta) {
    const p = Math.max(1, (Number(this.params.get('page')) || 1) + delta);
    if (p === 1) this.params.delete('page');
    else this.params.set('page', String(p));
    this.pushParams();
    this.table.scrollIntoView({ block: 'nearest' });
  }

  // pushParams records the filters in the URL without a history entry per
  // keystroke, then redraws.
  pushParams() {
    const q = this.params.toString();
    history.replaceState(null, '', `${this.o.base}${q ? `?${q}` : ''}`);
    this.o.onChange?.();
  }

  setParams(params) {
    this.params = new URLSearchParams(params);
  }

  syncControls(store) {
    for (const f of this.o.filters) {
      const el = this.controls[f.name];
      const v = this.params.get(f.name) || '';
      if (f.type === 'select') {
        const opts = [['', f.any], ...f.options(store)];
        const sig = opts.map((o) => o[0]).join('\u0000');
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
    const key = `${store.version}|${store.idsVersion}|${this.params}`;
    if (key !== this.cacheKey || store !== this.cacheStore) {
      this.list = this.o.items(store, this.params);
      this.cacheKey = key;
      this.cacheStore = store;
    }
    const all = this.list;
    const size = this.o.pageSize;
    const pages = Math.max(1, Math.ceil(all.length / size));
    const page = Math.min(pages, Math.max(1, Number(this.params.get('page')) || 1));
    const rows = all.slice((page - 1) * size, page * size);
    syncRows(this.tbody, rows, this.o.key, this.o.version, (it) => {
      const tr = this.o.row(it);
      tr.dataset.href = this.o.href(it);
      return tr;
    });

    const filtered = this.o.filters.some((f) => this.params.get(f.name));
    this.clearBtn.hidden = !filtered;
    const total = this.o.total(store);
    const noun = this.o.name;
    this.countEl.textContent = store.loading ? `Loading… ${num(total)} ${noun} so far`
      : filtered ? `${num(all.length)} of ${num(total)} ${noun} match` : `${num(total)} ${noun}`;
    const empty = all.length === 0 && !store.loading;
    // An empty registry shows only what to do about it, not idle filters.
    this.bar.hidden = this.countEl.hidden = empty && !filtered && total === 0;
    this.tableWrap.hidden = all.length === 0;
    // Rebuilt only when its kind changes, so that its buttons keep focus.
    const sig = empty ? `${filtered}|${total > 0}` : '';
    if (sig !== this.emptySig) {
      this.emptySig = sig;
      this.emptyEl.replaceChildren(empty ? this.o.empty(store, filtered, () => this.clearBtn.click()) : '');
    }
    this.pager.hidden = pages <= 1;
    this.prev.disabled = page <= 1;
    this.next.disabled = page >= pages;
    this.pageInfo.textContent = `${num((page - 1) * size + 1)}–${num(Math.min(all.length, page * size))} of ${num(all.length)} · page ${page} of ${pages}`;
  }

  focusSearch() {
    const s = this.el.querySelector('[data-search]');
    if (s) s.focus();
    return !!s;
  }
}

// td builds a table cell labelled for the narrow (card) layout.
export function td(label, ...children) {
  // The state column is placed beside the title on the narrow layout.
  const cls = label === 'State' || label === 'Status' ? 'st' : label === 'Cells' ? 'wide' : undefined;
  return h('td', { 'data-label': label, class: cls }, ...children);
}
