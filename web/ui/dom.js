// Small DOM helpers. Every text goes through textContent: event payloads
// are untrusted, and the page's CSP forbids inline code anyway.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

const nf = new Intl.NumberFormat();
export const num = (n) => nf.format(n);

// ago renders a timestamp as "12s ago" inside a <time> that the app
// refreshes every few seconds (data-ts), with the exact time as a tooltip.
export function ago(iso) {
  if (!iso) return h('span', { class: 'muted', text: '—' });
  return h('time', { datetime: iso, title: new Date(iso).toLocaleString(), 'data-ts': iso, text: relTime(iso) });
}

export function relTime(iso, now = Date.now()) {
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (Number.isNaN(s)) return '—';
  if (s < 5) return 'just now';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return new Date(iso).toLocaleDateString();
}

export function clock(iso) {
  const d = iso ? new Date(iso) : new Date();
  return d.toLocaleTimeString([], { hour12: false });
}

// badge shows a state with its colour and its name, so that colour is never
// the only signal.
export function badge(state, extra = '') {
  return h('span', { class: `badge s-${state} ${extra}` }, h('span', { class: 'dot', 'aria-hidden': 'true' }), state || '—');
}

// The segments of a cells bar: disjoint parts of the cells counted by the
// fold v2 rules (admitted and running by state, completed and failed by
// outcome, also after teardown; the rest were torn down without one).
export const CELL_BAR = ['admitted', 'running', 'completed', 'failed', 'destroyed'];

// cellBar draws fold v2 cell counts as one bar: the destroyed segment holds
// only the cells torn down without an outcome, so no cell counts twice.
export function cellBar(counts) {
  const rest = counts.total - counts.admitted - counts.running - counts.completed - counts.failed;
  return stackBar({ ...counts, destroyed: Math.max(0, rest) }, CELL_BAR);
}

// stackBar draws counts as one bar with a segment per state.
export function stackBar(counts, states) {
  const label = states.filter((s) => counts[s]).map((s) => `${counts[s]} ${s}`).join(', ') || 'no cells';
  const bar = h('span', { class: 'stack', role: 'img', 'aria-label': label, title: label });
  for (const s of states) {
    if (!counts[s]) continue;
    const seg = h('span', { class: `seg s-${s}` });
    seg.style.flexGrow = String(counts[s]);
    bar.append(seg);
  }
  return h('span', { class: 'stackwrap' }, bar, h('span', { class: 'stacknum', text: num(counts.total) }));
}

export function mono(text, cls = '') {
  return h('code', { class: `id ${cls}`, text: text || '—', title: text || undefined });
}

// syncRows makes tbody show rows for items in order, reusing the <tr> of an
// item whose version is unchanged and moving nodes only where the order
// differs, so that a focused link keeps its focus through live updates.
export function syncRows(tbody, items, key, version, render) {
  const old = tbody._rows || new Map();
  const next = new Map();
  let cursor = tbody.firstChild;
  for (const it of items) {
    const k = key(it);
    const v = version(it);
    let rec = old.get(k);
    if (!rec) {
      rec = { tr: render(it), v };
    } else if (rec.v !== v) {
      const tr = render(it);
      const hadFocus = rec.tr.contains(document.activeElement);
      if (rec.tr === cursor) cursor = tr;
      rec.tr.replaceWith(tr);
      if (hadFocus) tr.querySelector('a, button')?.focus({ preventScroll: true });
      rec = { tr, v };
    }
    next.set(k, rec);
    if (rec.tr === cursor) {
      cursor = cursor.nextSibling;
    } else {
      tbody.insertBefore(rec.tr, cursor);
    }
  }
  while (cursor) {
    const n = cursor.nextSibling;
    cursor.remove();
    cursor = n;
  }
  tbody._rows = next;
}

export function emptyState(title, ...body) {
  return h('div', { class: 'empty' }, h('h2', { text: title }), ...body);
}

// copyable is a command line with a copy button.
export function copyable(cmd) {
  const btn = h('button', { type: 'button', class: 'btn small', text: 'Copy' });
  btn.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(cmd);
      btn.textContent = 'Copied';
    } catch {
      btn.textContent = 'Select and copy';
    }
    setTimeout(() => (btn.textContent = 'Copy'), 1500);
  });
  return h('div', { class: 'cmd' }, h('code', { text: cmd }), btn);
}

// Failure stands in place of a list or a page whose read failed — never
// an empty list that would look like "no data": what failed and why, when
// the page tries again by itself, and Retry.
export class Failure {
  constructor(onRetry) {
    this.title = h('h2');
    this.msg = h('p', { class: 'failmsg' });
    this.when = h('p', { class: 'failwhen' });
    this.btn = h('button', { type: 'button', class: 'btn', text: 'Retry' });
    this.btn.addEventListener('click', onRetry);
    // Only what failed and why is announced, not the countdown.
    this.el = h('div', { class: 'failure', hidden: true }, h('div', { role: 'alert' }, this.title, this.msg), this.when, this.btn);
  }

  // show: retryAt is when the page tries again by itself (Date.now()
  // time, 0 for not scheduled); busy while a read is on its way.
  show(title, message, retryAt = 0, busy = false, now = Date.now()) {
    setText(this.title, title);
    setText(this.msg, message);
    const secs = Math.max(1, Math.ceil((retryAt - now) / 1000));
    setText(this.when, busy ? 'Trying again…' : retryAt ? `The page tries again by itself in ${secs} s.` : '');
    this.btn.disabled = busy;
    this.el.hidden = false;
  }

  hide() {
    this.el.hidden = true;
  }
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}
