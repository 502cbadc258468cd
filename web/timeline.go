package web

import (
	"context"
	"net/http"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"cellos-allinone/event"
	"cellos-allinone/projection"
	"cellos-allinone/projector"
)

// TimelineFilters are the subject filters of an entity's timeline: the
// events stored under the entity's id (docs/design.md §2) — for a tenant
// reader those in its sub-tree, cellos.events.<tenant>.<kind>.<id>.>; for
// everyone else both forms, cellos.events.<kind>.<id>.> and
// cellos.events.*.<kind>.<id>.>. JetStream subject filters, so a
// timeline reads only that entity's messages, never the whole stream. For
// the one id for which the two forms overlap (an entity called like an
// entity kind, which JetStream refuses as one consumer's filters) the
// untenanted form alone is read.
func TimelineFilters(kind event.Kind, id, tenant string) []string {
	if tenant != "" {
		return []string{event.TenantSubject(tenant, kind, id, ">")}
	}
	plain, tenants := event.Subject(kind, id, ">"), event.TenantSubject("*", kind, id, ">")
	if natsserver.SubjectsCollide(plain, tenants) {
		return []string{plain}
	}
	return []string{plain, tenants}
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
	who := callerOf(r)
	pq.filters = TimelineFilters(kind, id, who.tenant())
	if err := s.entityKnown(r.Context(), who, kind, id, pq.filters); err != nil {
		return err
	}
	return s.servePage(w, r, pq)
}

// entityKnown answers nil when the entity has a timeline the caller may
// read: the registry knows it as one of the caller's (its events may all
// have expired: its timeline is empty, not missing), or the stream holds
// an event of it under filters (a deleted formation, an entity during the
// boot replay). The registry is asked first: a local read, where the
// stream is a request to JetStream. Another tenant's entity is not found.
func (s *Server) entityKnown(ctx context.Context, who caller, kind event.Kind, id string, filters []string) error {
	ready := s.proj.Ready()
	if ready {
		found, tenant := false, ""
		err := s.proj.Read(func(p projector.View) {
			if kind == event.KindCell {
				var c projection.Cell
				c, found = p.Cell(id)
				tenant = c.TenantID
				return
			}
			// Not p.Formation: that reads every cell of it.
			fs, _ := p.Formations(projection.FormationFilter{Prefix: id}, projection.Page{Limit: 1})
			found = len(fs) == 1 && fs[0].ID == id
			if found {
				tenant = fs[0].TenantID
			}
		})
		if err != nil {
			return err
		}
		if found && who.sees(tenant) {
			return nil
		}
		if found {
			return timelineNotFound(kind, id)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, eventsTimeout)
	defer cancel()
	held, err := s.cfg.Events.Holds(ctx, filters...)
	switch {
	case err != nil:
		return Errorf(CodeUnavailable, "event log unavailable: %v", err)
	case held:
		return nil
	case !ready:
		return Errorf(CodeNotReady, "the projection is replaying the event log and no event of %s %q is retained; retry shortly (see /v1/status)", kind, id)
	}
	return timelineNotFound(kind, id)
}

// timelineNotFound is the one answer for an entity without a timeline the
// caller may read: another tenant's entity gets the very same words.
func timelineNotFound(kind event.Kind, id string) error {
	return Errorf(CodeNotFound, "no %s %q: the registry does not know it and the log retains no event of it", kind, id)
}
