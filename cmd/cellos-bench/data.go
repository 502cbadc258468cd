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
// is timed so that generating events never counts in a measurement.
// Payloads share one arena.
type dataset struct {
	arena    []byte
	off      []int // payload i is arena[off[i]:off[i+1]]
	subjects []string
	ids      []string
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
	d := &dataset{
		arena:    make([]byte, 0, n*400),
		off:      make([]int, 1, n+1),
		subjects: make([]string, 0, n),
		ids:      make([]string, 0, n),
	}
	entities := map[string]struct{}{}
	for i := range n {
		m, err := next(g)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i+1, err)
		}
		d.arena = append(d.arena, m.payload...)
		d.off = append(d.off, len(d.arena))
		d.subjects = append(d.subjects, m.subject)
		d.ids = append(d.ids, m.id)
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

func (d *dataset) len() int { return len(d.subjects) }

func (d *dataset) at(i int) message {
	return message{subject: d.subjects[i], id: d.ids[i], payload: d.arena[d.off[i]:d.off[i+1]]}
}

// avgPayload is the mean size of the first n payloads in bytes.
func (d *dataset) avgPayload(n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.off[n]) / float64(n)
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

func newLive(seed uint64) *live {
	probe := demo.New(trafficOptions(seed)).Next()
	id := probe.ID
	return &live{g: demo.New(trafficOptions(seed)), prefix: id[:strings.LastIndexByte(id, '-')+1]}
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
