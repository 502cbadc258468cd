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
	Prefix string // id prefix
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
	Prefix  string // id prefix
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
	q := values("tenant", fq.Tenant, "status", fq.Status, "prefix", fq.Prefix, "limit", itoa(fq.Limit), "after", fq.After)
	return getRaw[FormationList](ctx, c, "/v1/formations", q)
}

// Formation gets one formation and its cells; a missing one is an
// *APIError with status 404 (see IsNotFound).
func (c *Client) Formation(ctx context.Context, id string) (*FormationDetail, error) {
	return getRaw[FormationDetail](ctx, c, "/v1/formations/"+url.PathEscape(id), nil)
}

// Cells lists one page of cells ordered by id.
func (c *Client) Cells(ctx context.Context, cq CellQuery) (*CellList, error) {
	q := values("tenant", cq.Tenant, "formation", cq.Formation, "state", cq.State, "outcome", cq.Outcome,
		"prefix", cq.Prefix, "limit", itoa(cq.Limit), "after", cq.After)
	return getRaw[CellList](ctx, c, "/v1/cells", q)
}

// Cell gets one cell; a missing one is an *APIError with status 404.
func (c *Client) Cell(ctx context.Context, id string) (*CellDetail, error) {
	return getRaw[CellDetail](ctx, c, "/v1/cells/"+url.PathEscape(id), nil)
}

// Summary is the registry in numbers, with the body as sent.
type Summary struct {
	api.Summary
	Raw json.RawMessage `json:"-"`
}

// Summary gets the registry's counts: with tenant != "" the formation and
// cell counts are that tenant's; the tenant list is always whole.
func (c *Client) Summary(ctx context.Context, tenant string) (*Summary, error) {
	return getRaw[Summary](ctx, c, "/v1/summary", values("tenant", tenant))
}

// withRaw is an answer type that keeps the body it was decoded from.
type withRaw[T any] interface {
	*T
	setRaw(json.RawMessage)
}

func (l *FormationList) setRaw(raw json.RawMessage)   { l.Raw = raw }
func (d *FormationDetail) setRaw(raw json.RawMessage) { d.Raw = raw }
func (l *CellList) setRaw(raw json.RawMessage)        { l.Raw = raw }
func (d *CellDetail) setRaw(raw json.RawMessage)      { d.Raw = raw }
func (s *Summary) setRaw(raw json.RawMessage)         { s.Raw = raw }

// getRaw GETs path?q, decodes the answer into a T and keeps the body.
func getRaw[T any, PT withRaw[T]](ctx context.Context, c *Client, path string, q url.Values) (*T, error) {
	var out T
	raw, err := c.getJSON(ctx, path, q, &out)
	if err != nil {
		return nil, err
	}
	PT(&out).setRaw(raw)
	return &out, nil
}
