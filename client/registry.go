package client

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"

	"cellos-allinone/api"
)

// FormationQuery filters GET /v1/formations; zero fields are left out.
type FormationQuery struct {
	Tenant string
	Status string
	Limit  int
	After  string
}

// FormationList is one page of formations, with the body as sent.
type FormationList struct {
	api.FormationList
	Raw json.RawMessage `json:"-"`
}

// FormationDetail is one formation with its cells, with the body as sent.
type FormationDetail struct {
	api.FormationDetail
	Raw json.RawMessage `json:"-"`
}

// CellQuery filters GET /v1/cells; zero fields are left out.
type CellQuery struct {
	Tenant    string
	Formation string
	State     string
	// Outcome: completed, failed, or none (cells without one).
	Outcome string
	Limit   int
	After   string
}

// CellList is one page of cells, with the body as sent.
type CellList struct {
	api.CellList
	Raw json.RawMessage `json:"-"`
}

// CellDetail is one cell, with the body as sent.
type CellDetail struct {
	api.CellDetail
	Raw json.RawMessage `json:"-"`
}

// values builds a query string from name/value pairs, leaving out empty
// values.
func values(kv ...string) url.Values {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	return q
}

func itoa(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// Formations lists one page of formations ordered by id.
func (c *Client) Formations(ctx context.Context, fq FormationQuery) (*FormationList, error) {
	var out FormationList
	q := values("tenant", fq.Tenant, "status", fq.Status, "limit", itoa(fq.Limit), "after", fq.After)
	raw, err := c.getJSON(ctx, "/v1/formations", q, &out)
	if err != nil {
		return nil, err
	}
	out.Raw = raw
	return &out, nil
}

// Formation gets one formation and its cells; a missing one is an
// *APIError with status 404 (see IsNotFound).
func (c *Client) Formation(ctx context.Context, id string) (*FormationDetail, error) {
	var out FormationDetail
	raw, err := c.getJSON(ctx, "/v1/formations/"+url.PathEscape(id), nil, &out)
	if err != nil {
		return nil, err
	}
	out.Raw = raw
	return &out, nil
}

// Cells lists one page of cells ordered by id.
func (c *Client) Cells(ctx context.Context, cq CellQuery) (*CellList, error) {
	var out CellList
	q := values("tenant", cq.Tenant, "formation", cq.Formation, "state", cq.State, "outcome", cq.Outcome,
		"limit", itoa(cq.Limit), "after", cq.After)
	raw, err := c.getJSON(ctx, "/v1/cells", q, &out)
	if err != nil {
		return nil, err
	}
	out.Raw = raw
	return &out, nil
}

// Cell gets one cell; a missing one is an *APIError with status 404.
func (c *Client) Cell(ctx context.Context, id string) (*CellDetail, error) {
	var out CellDetail
	raw, err := c.getJSON(ctx, "/v1/cells/"+url.PathEscape(id), nil, &out)
	if err != nil {
		return nil, err
	}
	out.Raw = raw
	return &out, nil
}
