// The header: connection state (announced politely to screen readers only
// when its wording changes), cursor, lag, events per second with a
// sparkline of the last two minutes (or since the page opened), and the stream epoch.

import { h, num } from './dom.js';

const BUCKETS = 120; // seconds in the sparkline

export class Rate {
  constructor() {
    this.buckets = new Array(BUCKETS).fill(0);
    this.sec = Math.floor(Date.now() / 1000);
    this.since = this.sec;
  }

  // recent is the completed seconds since the page opened, at most the
  // whole window (at least ten), so that a fresh page draws a shape at once
  // instead of a flat line that fills in over two minutes.
  recent() {
    this.roll();
    const n = Math.min(BUCKETS - 1, Math.max(10, this.sec - this.since));
    return this.buckets.slice(BUCKETS - 1 - n, BUCKETS - 1);
  }

  roll(now = Date.now()) {
    const s = Math.floor(now / 1000);
    const n = Math.min(BUCKETS, s - this.sec);
    for (let i = 0; i < n; i++) {
      this.buckets.shift();
      this.buckets.push(0);
    }
    if (n > 0) this.sec = s;
  }

  hit(n = 1) {
    this.roll();
    this.buckets[BUCKETS - 1] += n;
  }

  // perSecond averages the last five whole seconds.
  perSecond() {
    this.roll();
    let sum = 0;
    for (let i = BUCKETS - 6; i < BUCKETS - 1; i++) sum += this.buckets[i];
    return sum / 5;
  }
}

const SVG = 'http://www.w3.org/2000/svg';

function sparkPoints(values, w, hgt) {
  const max = Math.max(1, ...values);
  const step = w / (values.length - 1);
  return values.map((v, i) => `${(i * step).toFixed(1)},${(hgt - 1 - (v / max) * (hgt - 3)).toFixed(1)}`).join(' ');
}

export class Header {
  constructor(root, { onRetry }) {
    this.conn = root.querySelector('#conn');
    this.live = root.querySelector('#conn-live');
    this.connText = h('span', { class: 'conntext' });
    this.retryBtn = h('button', { type: 'button', class: 'btn small', hidden: true, text: 'Retry now' });
    this.retryBtn.addEventListener('click', onRetry);
    this.conn.replaceChildren(h('span', { class: 'dot', 'aria-hidden': 'true' }), this.connText);
    this.conn.after(this.retryBtn);
    this.cursor = root.querySelector('#m-cursor');
    this.lag = root.querySelector('#m-lag');
    this.eps = root.querySelector('#m-eps');
    this.epoch = root.querySelector('#m-epoch');
    this.spark = root.querySelector('#spark');
    this.line = document.createElementNS(SVG, 'polyline');
    this.area = document.createElementNS(SVG, 'polygon');
    this.area.setAttribute('class', 'area');
    this.spark.append(this.area, this.line);
    this.said = '';
  }

  // connection describes sync's phase in words.
  connection(sync, now = Date.now()) {
    const secs = Math.max(0, Math.ceil((sync.retryAt - now) / 1000));
    switch (sync.phase) {
      case 'live':
        return ['live', 'Live'];
      case 'loading':
        return ['loading', 'Loading snapshot…'];
      case 'connecting':
        return ['connecting', 'Connecting…'];
      case 'reconnecting':
        return ['reconnecting', sync.retryAt ? `Reconnecting in ${secs}s` : 'Reconnecting…'];
      case 'waiting':
        return ['reconnecting', sync.retryAt ? `Server starting · retry in ${secs}s` : 'Server starting…'];
      case 'resyncing':
        return ['resyncing', sync.retryAt ? `Resync in ${secs}s` : 'Resyncing…'];
      case 'stopped':
        return ['stopped', 'Disconnected'];
      case 'signin':
        return ['stopped', 'Not signed in'];
    }
    return ['connecting', sync.phase];
  }

  render(sync, rate, status) {
    const [cls, text] = this.connection(sync);
    this.conn.className = `conn c-${cls}`;
    this.conn.dataset.state = sync.phase;
    // The countdown changes every second; screen readers hear the state
    // (through a separate live region) only when the state itself changes.
    const spoken = text.replace(/ ?(in|·)? ?\d+s$/, '');
    if (spoken !== this.said) {
      this.said = spoken;
      this.live.textContent = `Connection: ${spoken}`;
    }
    this.connText.textContent = text;
    this.conn.title = [
      sync.retryAt ? `Next attempt at ${new Date(sync.retryAt).toLocaleTimeString([], { hour12: false })}` : '',
      sync.lastError ? `Last problem: ${sync.lastError}` : '',
    ].filter(Boolean).join(' · ');
    this.retryBtn.hidden = !sync.retryAt;

    const store = sync.store;
    const cursor = store ? store.cursor : 0;
    this.cursor.textContent = store ? `#${num(cursor)}` : '—';
    const last = Math.max(status?.stream?.lastSeq || 0, sync.hello?.lastSeq || 0, cursor);
    this.lag.textContent = store ? num(last - cursor) : '—';
    this.lag.classList.toggle('warn', last - cursor > 1000);

    const eps = rate.perSecond();
    this.eps.textContent = eps >= 10 ? num(Math.round(eps)) : eps.toFixed(1);
    const pts = sparkPoints(rate.recent(), 120, 24);
    this.line.setAttribute('points', pts);
    this.area.setAttribute('points', `0,24 ${pts} 120,24`);

    const epoch = store?.epoch || status?.epoch || '';
    const d = Date.parse(epoch);
    this.epoch.textContent = epoch ? (Number.isNaN(d) ? epoch : new Date(d).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' })) : '—';
    this.epoch.title = epoch ? `Stream incarnation ${epoch} (the stream's creation time)` : '';
  }
}

// toast shows a short notice, announced by the live region it lives in.
let toastTimer = 0;
export function toast(text, kind = 'info') {
  const el = document.getElementById('toast');
  // The region itself stays in place (never hidden) so that assistive
  // technology announces what is put into it.
  el.replaceChildren(h('div', { class: `toastmsg t-${kind}`, text }));
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.replaceChildren(), 6000);
}
