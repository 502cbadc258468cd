package web

import (
	"context"
	"net/http"

	"cellos-allinone/event"
	"cellos-allinone/projection"
	"cellos-allinone/projector"
)

// TimelineFilter is the subject filter of an entity's timeline: every
// event stored under cellos.events.<kind>.<id> (docs/design.md §2). A
// JetStream subject filter, so a timeline reads only that entity's
// messages, never the whole stream.
func TimelineFilter(kind event.Kind, id string) string {
	return event.Subject(kind, id, ">")
}

// cellEvents is GET /v1/cells/{id}/events.
func (s *Server) cellEvents(w http.ResponseWriter, r *http.Request) error {
	return s.timeline(w, r, event.KindCell)
}

// formationEvents is GET /v1/formations/{id}/events: the formation's own
// events. Its cells' events are stored under their cells' subjects, which
// do not name the formation (docs/design.md §2): they are on each cell's
// timeline.
func (s *Server) formationEvents(w http.ResponseWriter, r *http.Request) error {
	return s.timeline(w, r, event.KindFormation)
}

// timeline is an entity's retained events, paged like GET /v1/events
// (same parameters but subject, same page, same 410s).
func (s *Server) timeline(w http.ResponseWriter, r *http.Request, kind event.Kind) error {
	q, err := parseQuery(r.URL, "since", "from", "limit", "epoch")
	if err != nil {
		return err
	}
	pq, err := parsePageQuery(q)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if !event.ValidID(id) {
		// No event can be stored under it: no such entity.
		return Errorf(CodeNotFound, "no %s %q (an id is 1–%d letters, digits, '-' or '_')", kind, id, event.MaxIDLen)
	}
	pq.filter = TimelineFilter(kind, id)
	if err := s.entityKnown(r.Context(), kind, id, pq.filter); err != nil {
		return err
	}
	return s.servePage(w, r, pq)
}

// entityKnown answers nil when the entity has a timeline: the registry
// knows it (its events may all have expired: its timeline is empty, not
// missing), or the stream holds an event of it (a deleted formation, an
// entity during the boot replay). The registry is asked first: a local
// read, where the stream is a request to JetStream.
func (s *Server) entityKnown(ctx context.Context, kind event.Kind, id, filter string) error {
	ready := s.proj.Ready()
	if ready {
		found := false
		err := s.proj.Read(func(p projector.View) {
			if kind == event.KindCell {
				_, found = p.Cell(id)
				return
			}
			// Not p.Formation: that reads every cell of it.
			fs, _ := p.Formations(projection.FormationFilter{Prefix: id}, projection.Page{Limit: 1})
			found = len(fs) == 1 && fs[0].ID == id
		})
		if err != nil || found {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, eventsTimeout)
	defer cancel()
	held, err := s.cfg.Events.Holds(ctx, filter)
	switch {
	case err != nil:
		return Errorf(CodeUnavailable, "event log unavailable: %v", err)
	case held:
		return nil
	case !ready:
		return Errorf(CodeNotReady, "the projection is replaying the event log and no event of %s %q is retained; retry shortly (see /v1/status)", kind, id)
	}
	return Errorf(CodeNotFound, "no %s %q: the registry does not know it and the log retains no event of it", kind, id)
}
