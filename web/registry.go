package web

import (
	"net/http"
	"slices"

	"cellos-allinone/api"
	"cellos-allinone/projection"
	"cellos-allinone/projector"
)

// scopeTenant is the tenant filter a caller's list or summary reads with:
// what it asked for, or — for a tenant principal — its own tenant, and
// visible false when it asked for another (its answer is empty, never
// another tenant's).
func scopeTenant(c caller, asked string) (tenant string, visible bool) {
	own := c.tenant()
	switch {
	case own == "":
		return asked, true
	case asked == "" || asked == own:
		return own, true
	}
	return own, false
}

// defaultLimit is the page size when limit is absent.
const defaultLimit = 100

func (s *Server) listFormations(w http.ResponseWriter, r *http.Request) error {
	q, cons, err := parseRead(r.URL, "tenant", "status", "prefix", "limit", "after")
	if err != nil {
		return err
	}
	pg, err := q.page(defaultLimit)
	if err != nil {
		return err
	}
	prefix, err := q.prefix()
	if err != nil {
		return err
	}
	f := projection.FormationFilter{Tenant: q.str("tenant"), Status: q.str("status"), Prefix: prefix}
	if f.Status != "" && !projection.ValidFormationStatus(f.Status) {
		return Errorf(CodeBadParameter, "status %q is not a formation status (created, launching, running, degraded, completed, failed, cancelled)", f.Status)
	}
	var visible bool
	f.Tenant, visible = scopeTenant(callerOf(r), f.Tenant)
	resp := api.FormationList{Formations: []projection.Formation{}}
	err = s.read(w, r, cons, func(p projector.View) {
		resp.Cursor, resp.Epoch = p.Cursor(), p.Epoch
		if visible {
			resp.Formations, resp.Next = p.Formations(f, pg)
		}
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// getFormation answers a formation with the first page of its cells
// (limit, default 100); cellsNext continues with
// /v1/cells?formation={id}&after=. Only that page is read, so a
// formation's answer is bounded however many cells it holds.
func (s *Server) getFormation(w http.ResponseWriter, r *http.Request) error {
	q, cons, err := parseRead(r.URL, "limit")
	if err != nil {
		return err
	}
	limit, err := ParseLimit(q.str("limit"), q.has("limit"), defaultLimit)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	resp := api.FormationDetail{Cells: []projection.Cell{}}
	found := false
	who := callerOf(r)
	err = s.read(w, r, cons, func(p projector.View) {
		resp.Cursor, resp.Epoch = p.Cursor(), p.Epoch
		resp.Formation, found = p.Formation(id)
		// Another tenant's formation is not found, never forbidden: its
		// existence is not the caller's to know.
		if found = found && who.sees(resp.Formation.TenantID); found {
			// Its cells carry the formation's tenant (fold v3
			// inheritance); for a tenant principal one that claimed
			// another is not listed, as /v1/cells would not.
			f := projection.CellFilter{Formation: id, Tenant: who.tenant()}
			resp.Cells, resp.CellsNext = p.Cells(f, projection.Page{Limit: limit})
		}
	})
	if err != nil {
		return err
	}
	if !found {
		return Errorf(CodeNotFound, "no formation %q", id)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) listCells(w http.ResponseWriter, r *http.Request) error {
	q, cons, err := parseRead(r.URL, "tenant", "formation", "state", "outcome", "prefix", "limit", "after")
	if err != nil {
		return err
	}
	pg, err := q.page(defaultLimit)
	if err != nil {
		return err
	}
	prefix, err := q.prefix()
	if err != nil {
		return err
	}
	f := projection.CellFilter{Tenant: q.str("tenant"), Formation: q.str("formation"), State: q.str("state"), Outcome: q.str("outcome"), Prefix: prefix}
	var visible bool
	f.Tenant, visible = scopeTenant(callerOf(r), f.Tenant)
	if f.State != "" && !projection.ValidCellState(f.State) {
		return Errorf(CodeBadParameter, "state %q is not a cell state (admitted, running, completed, failed, destroyed)", f.State)
	}
	if q.has("outcome") && f.Outcome != projection.OutcomeCompleted && f.Outcome != projection.OutcomeFailed && f.Outcome != projection.OutcomeUnset {
		return Errorf(CodeBadParameter, "outcome %q is not a cell outcome (completed, failed, or none for cells without one)", f.Outcome)
	}
	resp := api.CellList{Cells: []projection.Cell{}}
	err = s.read(w, r, cons, func(p projector.View) {
		resp.Cursor, resp.Epoch = p.Cursor(), p.Epoch
		if visible {
			resp.Cells, resp.Next = p.Cells(f, pg)
		}
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) getCell(w http.ResponseWriter, r *http.Request) error {
	_, cons, err := parseRead(r.URL)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	var resp api.CellDetail
	found := false
	err = s.read(w, r, cons, func(p projector.View) {
		resp.Cursor, resp.Epoch = p.Cursor(), p.Epoch
		resp.Cell, found = p.Cell(id)
	})
	if err != nil {
		return err
	}
	if found = found && callerOf(r).sees(resp.Cell.TenantID); !found {
		return Errorf(CodeNotFound, "no cell %q", id)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// getSummary answers the registry in numbers: cursor, epoch and counts are
// read in one view, so they belong together.
func (s *Server) getSummary(w http.ResponseWriter, r *http.Request) error {
	q, cons, err := parseRead(r.URL, "tenant")
	if err != nil {
		return err
	}
	who := callerOf(r)
	tenant, visible := scopeTenant(who, q.str("tenant"))
	var resp api.Summary
	err = s.read(w, r, cons, func(p projector.View) {
		resp.Cursor, resp.Epoch = p.Cursor(), p.Epoch
		resp.Summary = p.Summary(tenant)
	})
	if err != nil {
		return err
	}
	if t := who.tenant(); t != "" {
		// A tenant learns nothing of the others, not even their names.
		resp.Tenants = slices.DeleteFunc(resp.Tenants, func(ts projection.TenantSummary) bool { return ts.ID != t })
		if !visible {
			resp.Summary.Zero()
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}
