// The live event feed: newest first, bounded, pausable; each entry opens
// to its CloudEvent JSON. Events arrive many per frame and are drawn once
// per frame: only the newest SHOWN of a burst are ever turned into nodes.

import { describe } from './store.js';
import { h, clock } from './dom.js';

const KEEP = 2000; // events kept in memory (also feed the entity pages)
const SHOWN = 200; // entries in the feed list

const PHASE_CLASS = {
  started: 'running', admitted: 'admitted', completed: 'completed', failed: 'failed', destroyed: 'destroyed',
  summary: 'summary', created: 'created', launching: 'launching', running: 'running', degraded: 'degraded',
  cancelled: 'cancelled', deleted: 'destroyed',
};

export class EventLog {
  constructor() {
    this.ring = []; // oldest first, at most KEEP
    this.seen = new Set(); // seqs in the ring: no entry is ever shown twice
    this.pending = []; // arrived since the last draw
    this.total = 0; // events ever added
    this.version = 0;
  }

  add(seq, subject, event) {
    if (this.seen.has(seq)) return;
    const e = { seq, subject, event, d: describe(event), at: new Date().toISOString() };
    this.seen.add(seq);
    this.ring.push(e);
    this.pending.push(e);
    this.total++;
    if (this.ring.length > KEEP) this.seen.delete(this.ring.shift().seq);
    // A hidden tab draws nothing; only the newest SHOWN could ever be drawn.
    if (this.pending.length > 2 * SHOWN) this.pending.splice(0, this.pending.length - SHOWN);
    this.version++;
  }

  // mark inserts a notice (for example "resynced") between events.
  mark(text) {
    const e = { seq: 0, mark: text, at: new Date().toISOString() };
    this.ring.push(e);
    this.pending.push(e);
    this.version++;
  }

  clear() {
    this.ring = [];
    this.seen.clear();
    this.pending = [];
    this.version++;
  }

  newest(n, pred = () => true) {
    const out = [];
    for (let i = this.ring.length - 1; i >= 0 && out.length < n; i--) {
      if (!this.ring[i].mark && pred(this.ring[i])) out.push(this.ring[i]);
    }
    return out;
  }
}

function eventTitle(e) {
  const d = e.d;
  if (!d.kind) return d.valid === false && d.phase === 'malformed' ? 'malformed event' : `ignored: ${e.event?.type ?? '?'}`;
  return `${d.kind} ${d.phase}`;
}

// entry draws one event; its JSON is built only when it is opened.
export function entry(e, resolveName) {
  if (e.mark) return h('li', { class: 'ev mark', role: 'note', text: e.mark });
  const d = e.d;
  const cls = PHASE_CLASS[d.phase] || 'other';
  const when = typeof e.event?.time === 'string' ? e.event.time : e.at;
  const details = h('details', null,
    h('summary', null,
      h('span', { class: 'seq', text: `#${e.seq}` }),
      h('span', { class: `etype s-${cls}` }, h('span', { class: 'dot', 'aria-hidden': 'true' }), eventTitle(e)),
      h('code', { class: 'id', text: (resolveName && resolveName(d)) || d.id || '—' }),
      h('time', { class: 'clock', datetime: when || undefined, text: when ? clock(when) : '' })));
  details.addEventListener('toggle', () => {
    if (!details.open || details.querySelector('pre')) return;
    const link = d.kind === 'formation' && d.id ? h('a', { href: `#/formations/${encodeURIComponent(d.id)}`, text: 'Open formation' })
      : d.kind === 'cell' && d.id ? h('a', { href: `#/cells/${encodeURIComponent(d.id)}`, text: 'Open cell' }) : null;
    details.append(h('div', { class: 'evbody' },
      h('div', { class: 'evmeta' }, h('code', { text: e.subject || '' }), link),
      h('pre', { class: 'json', tabindex: '0', text: JSON.stringify(e.event, null, 2) })));
  });
  return h('li', { class: 'ev', 'data-seq': String(e.seq) }, details);
}

// Feed is the feed panel. It can be moved between the side column and the
// main area (the Events view) without losing its state.
export class Feed {
  constructor(log, { resolveName }) {
    this.log = log;
    this.resolveName = resolveName;
    this.paused = false;
    this.pausedAt = 0;
    this.pauseBtn = h('button', { type: 'button', class: 'btn small', 'aria-pressed': 'false', text: 'Pause' });
    this.pauseBtn.addEventListener('click', () => this.setPaused(!this.paused));
    this.note = h('p', { class: 'feednote', hidden: true });
    this.list = h('ol', { class: 'events', 'aria-label': 'Events, newest first' });
    this.empty = h('p', { class: 'muted feedempty', text: 'Waiting for events… they appear here as producers publish them.' });
    this.el = h('section', { class: 'feed', 'aria-labelledby': 'feed-h' },
      h('div', { class: 'feedhead' },
        h('h2', { id: 'feed-h' }, h('span', { class: 'pulse', 'aria-hidden': 'true' }), 'Live events'),
        this.pauseBtn),
      this.note, this.empty, this.list);
  }

  setPaused(p) {
    this.paused = p;
    this.pausedAt = this.log.total;
    this.pauseBtn.textContent = p ? 'Resume' : 'Pause';
    this.pauseBtn.setAttribute('aria-pressed', String(p));
    this.el.classList.toggle('paused', p);
    if (!p) {
      // Redraw from the ring: what arrived meanwhile shows up in order.
      this.list.replaceChildren();
      this.log.pending = this.log.ring.slice(-SHOWN);
    }
    this.draw();
  }

  draw() {
    const pending = this.log.pending;
    if (this.paused) {
      const missed = this.log.total - this.pausedAt;
      this.log.pending = [];
      this.note.hidden = false;
      this.note.textContent = missed ? `Paused · ${missed} new event${missed === 1 ? '' : 's'} held back` : 'Paused · new events are held back';
      return;
    }
    this.note.hidden = true;
    if (pending.length) {
      const frag = document.createDocumentFragment();
      const from = Math.max(0, pending.length - SHOWN);
      for (let i = pending.length - 1; i >= from; i--) frag.append(entry(pending[i], this.resolveName));
      this.list.prepend(frag);
      this.log.pending = [];
      while (this.list.childElementCount > SHOWN) this.list.lastElementChild.remove();
    }
    this.empty.hidden = this.list.childElementCount > 0;
  }

  reset() {
    this.list.replaceChildren();
    this.draw();
  }
}
