package main

import (
	"fmt"
	"strconv"
	"strings"

	"cellos-allinone/demo"
	"cellos-allinone/event"
)

// message is one event ready to publish: its subject, its CloudEvent id
// (the Nats-Msg-Id) and its JSON.
type message struct {
	subject, id string
	payload     []byte
}

// dataset is the generated traffic of a run, built once before anything
// is timed so that generating events never counts in a measurement. It
// holds no pointers (one arena and offsets), so the garbage collector of
// this process, which also runs the bare nats-server and the socket
// readers, never scans it.
type dataset struct {
	arena []byte
	off   []int // event i is payload, subject, id at arena[off[3i]:off[3i+1]:off[3i+2]:off[3i+3]]
	// Distinct entity ids the events name (the registry holds fewer
	// formations: deleted ones leave it).
	formations, cells int
}

// trafficOptions are the demo generator's options for a seed: the
// defaults of `cellos-allinone demo` (4 tenants, 6 formations in flight).
func trafficOptions(seed uint64) demo.Options {
	return demo.Options{Seed: seed}
}

// generate makes n events of the demo generator, routed as a supervisor
// routes them (event.Route).
func generate(seed uint64, n int) (*dataset, error) {
	g := demo.New(trafficOptions(seed))
	d := &dataset{arena: make([]byte, 0, n*450), off: make([]int, 1, 3*n+1)}
	entities := map[string]struct{}{}
	for i := range n {
		m, err := next(g)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i+1, err)
		}
		for _, part := range [][]byte{m.payload, []byte(m.subject), []byte(m.id)} {
			d.arena = append(d.arena, part...)
			d.off = append(d.off, len(d.arena))
		}
		// cellos.events.<entity>.<id>.<phase>
		parts := strings.SplitN(m.subject, ".", 5)
		if _, seen := entities[parts[2]+"/"+parts[3]]; !seen {
			entities[parts[2]+"/"+parts[3]] = struct{}{}
			if parts[2] == "formation" {
				d.formations++
			} else {
				d.cells++
			}
		}
	}
	return d, nil
}

func (d *dataset) len() int { return len(d.off) / 3 }

func (d *dataset) at(i int) message {
	o := d.off[3*i : 3*i+4]
	return message{payload: d.arena[o[0]:o[1]], subject: string(d.arena[o[1]:o[2]]), id: string(d.arena[o[2]:o[3]])}
}

// avgPayload is the mean size of the payloads in bytes.
func (d *dataset) avgPayload() float64 {
	n, sum := d.len(), 0
	for i := range n {
		sum += d.off[3*i+1] - d.off[3*i]
	}
	return float64(sum) / float64(max(n, 1))
}

// next draws one event from g and routes it.
func next(g *demo.Generator) (message, error) {
	p := g.Next().JSON()
	subject, id, err := event.Route(p)
	if err != nil {
		return message{}, err
	}
	return message{subject: subject, id: id, payload: p}, nil
}

// live is traffic made while it is sent (paced loads of a few thousand
// events per second at most): a generator of its own seed, so its ids
// and entities never meet those of the data set.
type live struct {
	g      *demo.Generator
	prefix string // "demo-<run>-": every id of this generator starts so
}

func newLive(seed uint64) *live { return newLiveOf(trafficOptions(seed)) }

func newLiveOf(o demo.Options) *live {
	probe := demo.New(o).Next()
	id := probe.ID
	return &live{g: demo.New(o), prefix: id[:strings.LastIndexByte(id, '-')+1]}
}

func (l *live) next() (message, error) { return next(l.g) }

// index is the number n of a live id (the generator's n-th event, from 1).
func (l *live) index(id string) (int, bool) {
	rest, ok := strings.CutPrefix(id, l.prefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil
}
