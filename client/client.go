package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultServer is the API address of a server run with its defaults.
const DefaultServer = "http://127.0.0.1:8080"

// maxBody bounds what the client reads of one HTTP answer, so that a
// wrong --server cannot make it buffer without end.
const maxBody = 64 << 20

// Client talks to one server. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	hc    *http.Client // the API's requests (bounded by a timeout)
	ws    *http.Client // WebSocket handshakes (no timeout: the socket lives on)
	token string
}

// Option configures a Client.
type Option func(*options)

type options struct {
	token   string
	rootCAs *x509.CertPool
}

// WithToken sends token as Authorization: Bearer on every request and
// WebSocket handshake (docs/security.md).
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithRootCAs trusts the certificates of pool (a server whose certificate
// no system authority signed, such as a self-signed one) instead of the
// system's.
func WithRootCAs(pool *x509.CertPool) Option { return func(o *options) { o.rootCAs = pool } }

// New returns a client of the server at base, for example
// "http://127.0.0.1:8080".
func New(base string, opts ...Option) (*Client, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil {
		return nil, fmt.Errorf("server URL %q: %v", base, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want http://host:port or https://host:port", base)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("server URL %q: must not carry a query or fragment", base)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if o.rootCAs != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: o.rootCAs, MinVersion: tls.VersionTLS12}
	}
	return &Client{
		base: u, token: o.token,
		hc: &http.Client{Timeout: 60 * time.Second, Transport: tr},
		ws: &http.Client{Transport: tr},
	}, nil
}

// authorize sets the bearer token on h.
func (c *Client) authorize(h http.Header) {
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
}

// BaseURL is the server's address as given to New, without a trailing slash.
func (c *Client) BaseURL() string { return c.base.String() }

// APIError is an error answer of the API: {"error":{"code","message"}}.
type APIError struct {
	Status  int    // HTTP status
	Code    string // machine code, for example "not_found"
	Message string
	// FirstSeq is set on 410 cursor_expired: the stream's first sequence.
	FirstSeq uint64
	// Cursor is set on 503 not_caught_up: the cursor the server had
	// reached when it stopped waiting for a MinSeq.
	Cursor uint64
}

func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
	}
	return fmt.Sprintf("%s (%s, HTTP %d)", e.Message, e.Code, e.Status)
}

// IsNotCaughtUp reports whether err is the API's 503 not_caught_up: the
// server did not reach a MinSeq within the wait.
func IsNotCaughtUp(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Code == "not_caught_up"
}

// IsNotFound reports whether err is the API's 404 answer.
func IsNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

func (c *Client) url(path string, q url.Values) string {
	u := *c.base
	u.Path = c.base.Path + path
	u.RawQuery = q.Encode()
	return u.String()
}

// do sends one request and returns the body of a 2xx answer; any other
// answer becomes an *APIError.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body []byte) (status int, raw []byte, err error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, q), rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/json")
	c.authorize(req.Header)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, raw, apiError(resp.StatusCode, raw)
	}
	return resp.StatusCode, raw, nil
}

func apiError(status int, raw []byte) *APIError {
	var body struct {
		Error struct {
			Code     string `json:"code"`
			Message  string `json:"message"`
			FirstSeq uint64 `json:"firstSeq"`
			Cursor   uint64 `json:"cursor"`
		} `json:"error"`
	}
	e := &APIError{Status: status}
	if json.Unmarshal(raw, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message, e.FirstSeq, e.Cursor = body.Error.Code, body.Error.Message, body.Error.FirstSeq, body.Error.Cursor
		return e
	}
	// Not our API (a proxy, another program on the port): show a bit of it.
	msg := strings.TrimSpace(string(raw))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	e.Message = msg
	return e
}

// getJSON decodes the body of a GET into out and also returns it raw.
func (c *Client) getJSON(ctx context.Context, path string, q url.Values, out any) ([]byte, error) {
	_, raw, err := c.do(ctx, http.MethodGet, path, q, nil)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, fmt.Errorf("GET %s: answer is not the expected JSON: %v", path, err)
	}
	return raw, nil
}
