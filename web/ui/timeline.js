// An entity's timeline on its page: its retained events from
// GET /v1/{cells,formations}/{id}/events, oldest first, a page at a time
// (More), then — once the pages reached the stream's end — the entity's
// new events as the page's stream brings them, appended at the end.
//
// "The entity's events" is what the API means by it: those stored under
// cellos.events.<kind>.<id>. or, in a tenant's sub-tree,
// cellos.events.<tenant>.<kind>.<id>. (docs/design.md §2; web/timeline.go),
// so live events are matched by subject too.

import { h } from './dom.js';
import { describe } from './store.js';
import { entry } from './feed.js';
import { getJSON, HTTPError, describeError } from './sync.js';

const PAGE = 50;

// entitySubject says whether a subject is one of the entity's, as the
// API's filters match them: cellos.events.<kind>.<id>.> and
// cellos.events.*.<kind>.<id>.> — the second left out for an entity called
// like its kind, for which the two overlap.
function entitySubject(kind, id) {
  const root = 'cellos.events.';
  const plain = `${root}${kind}.${id}.`;
  const tail = `.${kind}.${id}.`;
  return (subject) => {
    if (typeof subject !== 'string' || !subject.startsWith(root)) return false;
    if (subject.startsWith(plain)) return true;
    const dot = subject.indexOf('.', root.length);
    return id !== kind && dot > root.length && subject.startsWith(tail, dot);
  };
}

export class Timeline {
  // ctx is the app's (ctx.store() gives the page's epoch); log the page's
  // event ring (feed.js).
  constructor(ctx, kind, id, log, onChange) {
    this.ctx = ctx;
    this.kind = kind;
    this.log = log;
    this.onChange = onChange;
    this.path = `/v1/${kind}s/${encodeURIComponent(id)}/events`;
    this.subjectOf = entitySubject(kind, id);
    this.reset();
    const hid = `tl-${kind}-h`;
    this.list = h('ol', { class: 'events compact timeline', 'aria-label': `Timeline of this ${kind}, oldest first` });
    this.note = h('p', { class: 'muted tlnote' });
    this.more = h('button', { type: 'button', class: 'btn small tlmore', text: 'More', onclick: () => this.load() });
    this.el = h('section', { class: 'tl', 'aria-labelledby': hid },
      h('h2', { id: hid, text: 'Timeline' }), this.list, this.note, this.more);
    this.load();
  }

  reset() {
    this.gen = (this.gen || 0) + 1; // a page read before a reset is dropped
    this.items = []; // oldest first
    this.last = 0; // the newest sequence shown
    this.next = null; // since of the next page; null: start at the oldest retained
    this.epoch = '';
    this.done = false; // the pages reached the stream's end: live from here
    this.error = '';
    this.drawn = 0;
    this.logVersion = -1;
    this.list?.replaceChildren();
  }

  add(seq, subject, event) {
    if (seq <= this.last) return;
    this.items.push({ seq, subject, event, d: describe(event), at: '' });
    this.last = seq;
  }

  // load reads the next page (the first when none was read).
  async load() {
    if (this.busy) return;
    this.busy = true;
    this.onChange();
    const gen = this.gen;
    let again = false;
    try {
      const q = new URLSearchParams({ limit: String(PAGE) });
      if (this.next !== null) {
        q.set('since', String(this.next));
        q.set('epoch', this.epoch);
      }
      const p = await getJSON(`${this.path}?${q}`);
      if (gen === this.gen) {
        this.epoch = p.epoch;
        for (const f of p.events) this.add(f.seq, f.subject, f.event);
        this.next = Math.max(p.next, this.last);
        this.done = p.next >= p.lastSeq;
        this.error = '';
      } else again = true;
    } catch (err) {
      if (gen !== this.gen) again = true;
      else if (err instanceof HTTPError && err.status === 410 && this.next !== null) {
        // Expired under the page, or another stream: read it again from
        // its oldest retained event.
        this.reset();
        again = true;
      } else if (err instanceof HTTPError && err.status === 404) {
        // No event of it up to the server's end: its first one arrives
        // live, after what the page has applied.
        const store = this.ctx.store();
        this.done = true;
        this.next = this.next ?? store?.cursor ?? 0;
        this.epoch = this.epoch || store?.epoch || '';
        this.error = '';
      } else {
        this.error = `Could not read the timeline. ${describeError(err)}`;
      }
    } finally {
      this.busy = false;
      this.onChange();
    }
    if (again) this.load();
  }

  // live appends the entity's events the page's stream brought after the
  // last page, when the event ring still holds every event since then;
  // else (the ring moved on, or a resync skipped some) it reads the next
  // page from the server instead.
  live() {
    const store = this.ctx.store();
    if (store && store.epoch !== this.storeEpoch) {
      const changed = this.storeEpoch !== undefined;
      this.storeEpoch = store.epoch;
      if (changed && store.epoch !== this.epoch) {
        // The page moved to a recreated stream: its sequences are another
        // log's. Read the timeline again.
        this.reset();
        this.load();
        return;
      }
    }
    if (!this.done || this.busy || this.log.version === this.logVersion) return;
    this.logVersion = this.log.version;
    const ring = this.log.ring;
    const newest = ring[ring.length - 1];
    if (!newest || newest.mark || newest.seq <= this.next) return;
    // Walk back over the newest events while their sequences follow each
    // other, down to the one after the last page.
    let i = ring.length - 1;
    while (i > 0 && ring[i].seq > this.next + 1 && !ring[i - 1].mark && ring[i - 1].seq === ring[i].seq - 1) i--;
    if (ring[i].seq > this.next + 1) {
      // The ring does not hold every event since: ask the server.
      this.done = false;
      this.load();
      return;
    }
    for (let j = i; j < ring.length; j++) {
      const e = ring[j];
      if (e.seq > this.next && this.subjectOf(e.subject)) this.add(e.seq, e.subject, e.event);
    }
    this.next = newest.seq;
  }

  render() {
    this.live();
    if (this.drawn < this.items.length) {
      this.list.append(...this.items.slice(this.drawn).map((e) => entry(e)));
      this.drawn = this.items.length;
    }
    this.more.hidden = this.done && !this.error;
    this.more.disabled = !!this.busy;
    const label = this.busy ? 'Loading…' : this.error ? 'Retry' : 'More';
    if (this.more.textContent !== label) this.more.textContent = label;
    let text;
    if (this.error) text = this.error;
    else if (this.next === null) text = 'Loading…';
    else if (!this.done) text = `Oldest first; ${this.items.length} shown, more after them.`;
    else if (this.items.length) text = `New events of this ${this.kind} appear at the end as they arrive.`;
    else text = `No retained events of this ${this.kind}; new ones appear here as they arrive.`;
    if (this.note.textContent !== text) this.note.textContent = text;
  }
}
