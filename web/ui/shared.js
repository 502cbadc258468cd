// Pieces shared by the list and detail views.

import { h, emptyState, copyable } from './dom.js';

// tenantOptions lists every tenant the summary knows (the server counts
// them all), those without one left out: the API's tenant filter cannot ask
// for "no tenant".
export function tenantOptions(store) {
  return store.summary.tenantList().filter((t) => t.id).map((t) => [t.id, t.id]);
}

// registryEmpty: the server holds no formation and no cell.
export function registryEmpty(store) {
  const t = store.summary.totals();
  return t.formations === 0 && t.cells === 0;
}

// firstRunHelp is the empty state of a list without filters. It says what
// is true: a server that holds cells but no formation, or events of no
// kind the fold knows, is not a server nothing was published to.
export function firstRunHelp(store, list) {
  const origin = location.origin;
  const { cells, formations } = store.summary.totals();
  if (list === 'formations' && cells > 0) {
    return emptyState('No formations',
      h('p', null, `This server holds ${cells.toLocaleString()} cell${cells === 1 ? '' : 's'} but no formation: no formation lifecycle event has arrived (or every formation was deleted). `,
        h('a', { href: '#/cells', text: 'See the cells' }), '.'));
  }
  if (list === 'cells' && formations > 0) {
    return emptyState('No cells',
      h('p', null, `This server holds ${formations.toLocaleString()} formation${formations === 1 ? '' : 's'} but no cell event has arrived yet. `,
        h('a', { href: '#/formations', text: 'See the formations' }), '.'));
  }
  if (store.cursor > 0) {
    return emptyState(list === 'cells' ? 'No cells' : 'No formations',
      h('p', { text: `The event log holds events up to #${store.cursor.toLocaleString()}, but none of them creates a formation or a cell: they are of types this version does not fold, or malformed (see Status).` }));
  }
  const ev = JSON.stringify({
    specversion: '1.0', id: 'hello-1', source: 'cli', type: 'dev.cellos.events.formation.lifecycle.v1.created',
    data: { formationId: 'hello', name: 'Hello formation' },
  });
  return emptyState('No formations yet',
    h('p', { text: 'This page shows formations — groups of isolated execution cells — and every cell in them, live, as their lifecycle events reach the event log. Nothing has been published to this server yet.' }),
    h('p', null, h('strong', { text: 'See it come alive:' }), ' feed this server with the built-in traffic generator, in another terminal. Formations and cells appear here within seconds; no reload needed.'),
    copyable(`cellos-allinone demo --target ${origin}`),
    h('p', null, 'Without ', h('code', { text: '--target' }), ', ', h('code', { text: 'cellos-allinone demo' }),
      ' starts a server of its own with demo traffic and prints the address to open. Or publish one event yourself:'),
    copyable(`curl -sS -X POST ${origin}/v1/events -H 'Content-Type: application/json' -d '${ev}'`));
}

export function filteredEmpty(clear) {
  return emptyState('Nothing matches these filters',
    h('p', { text: 'Try a shorter id prefix, another tenant or status.' }),
    h('button', { type: 'button', class: 'btn', text: 'Clear filters', onclick: clear }));
}

export function metaRow(label, value) {
  return [h('dt', { text: label }), h('dd', null, value)];
}
