package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"time"

	"cellos-allinone/api"
	"cellos-allinone/projection"
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

// FormationDetail is one formation with a page of its cells (all of them
// from FormationAll), with the body as sent.
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

// ReadOption tunes one registry read.
type ReadOption func(url.Values)

// MinSeq asks for read-your-writes: an answer from a state that holds the
// event stored at seq (the Seq of Publish), which the server waits for up
// to Wait (docs/design.md §5). When it does not come in time the error is
// an *APIError 503 not_caught_up (IsNotCaughtUp) with the Cursor reached.
// A seq the stream has not reached yet is waited for like any other.
func MinSeq(seq uint64) ReadOption {
	return func(q url.Values) { q.Set("min_seq", strconv.FormatUint(seq, 10)) }
}

// Wait bounds how long the server waits for MinSeq: 0 to 30 s, default
// 5 s. It is sent only with MinSeq.
func Wait(d time.Duration) ReadOption {
	return func(q url.Values) { q.Set("wait", d.String()) }
}

// CellsLimit is the size of the page of cells Formation holds: 1 to 1000,
// default 100.
func CellsLimit(n int) ReadOption {
	return func(q url.Values) { q.Set("limit", strconv.Itoa(n)) }
}

// with applies opts to q; a Wait without MinSeq is left out.
func with(q url.Values, opts []ReadOption) url.Values {
	if q == nil {
		q = url.Values{}
	}
	for _, o := range opts {
		o(q)
	}
	if !q.Has("min_seq") {
		q.Del("wait")
	}
	return q
}

// Formations lists one page of formations ordered by id.
func (c *Client) Formations(ctx context.Context, fq FormationQuery, opts ...ReadOption) (*FormationList, error) {
	q := values("tenant", fq.Tenant, "status", fq.Status, "prefix", fq.Prefix, "limit", itoa(fq.Limit), "after", fq.After)
	return getRaw[FormationList](ctx, c, "/v1/formations", with(q, opts))
}

// Formation gets one formation and the first page of its cells (CellsLimit,
// default 100); CellsNext continues them with Cells (CellQuery.Formation
// and After), "" when there are no more. A missing formation is an
// *APIError with status 404 (see IsNotFound).
func (c *Client) Formation(ctx context.Context, id string, opts ...ReadOption) (*FormationDetail, error) {
	return getRaw[FormationDetail](ctx, c, "/v1/formations/"+url.PathEscape(id), with(nil, opts))
}

// FormationAll gets one formation with every one of its cells, following
// CellsNext a page of 1,000 at a time. Each page after the first is read
// from a state at least as recent as the first (MinSeq of its cursor);
// Cursor and Epoch are the last page's, and Raw is the first page's body.
func (c *Client) FormationAll(ctx context.Context, id string, opts ...ReadOption) (*FormationDetail, error) {
	d, err := c.Formation(ctx, id, slices.Concat(opts, []ReadOption{CellsLimit(1000)})...)
	if err != nil {
		return nil, err
	}
	for d.CellsNext != "" {
		l, err := c.Cells(ctx, CellQuery{Formation: id, After: d.CellsNext, Limit: 1000}, slices.Concat(opts, []ReadOption{MinSeq(d.Cursor)})...)
		if err != nil {
			return nil, err
		}
		d.Cells = append(d.Cells, l.Cells...)
		d.CellsNext, d.Cursor, d.Epoch = l.Next, l.Cursor, l.Epoch
	}
	return d, nil
}

// Cells lists one page of cells ordered by id.
func (c *Client) Cells(ctx context.Context, cq CellQuery, opts ...ReadOption) (*CellList, error) {
	q := values("tenant", cq.Tenant, "formation", cq.Formation, "state", cq.State, "outcome", cq.Outcome,
		"prefix", cq.Prefix, "limit", itoa(cq.Limit), "after", cq.After)
	return getRaw[CellList](ctx, c, "/v1/cells", with(q, opts))
}

// Cell gets one cell; a missing one is an *APIError with status 404.
func (c *Client) Cell(ctx context.Context, id string, opts ...ReadOption) (*CellDetail, error) {
	return getRaw[CellDetail](ctx, c, "/v1/cells/"+url.PathEscape(id), with(nil, opts))
}

// Summary is the registry in numbers, with the body as sent.
type Summary struct {
	api.Summary
	Raw json.RawMessage `json:"-"`
}

// Summary gets the registry's counts: with tenant != "" the formation and
// cell counts are that tenant's; the tenant list is always whole.
func (c *Client) Summary(ctx context.Context, tenant string, opts ...ReadOption) (*Summary, error) {
	return getRaw[Summary](ctx, c, "/v1/summary", with(values("tenant", tenant), opts))
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

// HashedStatus is what GET /v1/status?hash=1 says of the state hash: the
// hash, and the status's cursor and event counters, read just after it
// (those of the hashed state when the cursors are equal).
type HashedStatus struct {
	Hash   api.StateHash       `json:"-"`
	Cursor uint64              `json:"cursor"`
	Events projection.Counters `json:"events"`
}

// StateHash asks the server to compute the state hash of the state it
// serves (GET /v1/status?hash=1, admin only) and returns it.
func (c *Client) StateHash(ctx context.Context) (*HashedStatus, error) {
	var out struct {
		HashedStatus
		Integrity struct {
			Hash *api.StateHash `json:"hash"`
		} `json:"integrity"`
	}
	if _, err := c.getJSON(ctx, "/v1/status", url.Values{"hash": {"1"}}, &out); err != nil {
		return nil, err
	}
	if out.Integrity.Hash == nil {
		return nil, errors.New("GET /v1/status?hash=1: the answer has no integrity.hash (a server without the state hash)")
	}
	out.HashedStatus.Hash = *out.Integrity.Hash
	return &out.HashedStatus, nil
}
