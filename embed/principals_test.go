package embed_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"cellos-allinone/auth"
	natsembed "cellos-allinone/embed"
	"cellos-allinone/eventlog"
	"cellos-allinone/testutil"
)

// principal is one line of a test auth file and how it logs in.
type principal struct {
	name, roles, tenant string
	login               string // "password", "token" or "nkey"
	secret              string
	kp                  nkeys.KeyPair
}

func (p principal) admin() bool { return p.roles == "admin" }

// makePrincipal gives p a secret for its login: a token or an NKey.
func makePrincipal(t testing.TB, name, roles, tenant, login string) principal {
	t.Helper()
	p := principal{name: name, roles: roles, tenant: tenant, login: login, secret: name + "-s3cret"}
	if login == "nkey" {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		p.kp, p.secret = kp, ""
	}
	return p
}

// line is p's line in an auth file.
func (p principal) line() string {
	secret := auth.Digest(p.secret)
	if p.kp != nil {
		pub, _ := p.kp.PublicKey()
		secret = "nkey:" + pub
	}
	return strings.TrimSpace(strings.Join([]string{p.name, secret, p.roles, p.tenant}, " "))
}

// options are the nats.go options p logs in with.
func (p principal) options() []nats.Option {
	switch p.login {
	case "token":
		return []nats.Option{nats.Token(p.secret)}
	case "nkey":
		pub, _ := p.kp.PublicKey()
		return []nats.Option{nats.Nkey(pub, p.kp.Sign)}
	}
	return []nats.Option{nats.UserInfo(p.name, p.secret)}
}

// authSet parses the auth file of ps.
func authSet(t testing.TB, ps ...principal) *auth.Set {
	t.Helper()
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.line() + "\n")
	}
	set, err := auth.Parse(strings.NewReader(b.String()), "test-auth")
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// startAuthNATS starts a server with the principals of set (and o's other
// options), opens the event log's stream through the internal connection
// and returns both.
func startAuthNATS(t testing.TB, o natsembed.Options) (*natsembed.Server, *nats.Conn) {
	t.Helper()
	o.DataDir, o.Addr = t.TempDir(), "127.0.0.1:0"
	if o.Logger == nil {
		o.Logger = testutil.Logger()
	}
	srv, err := natsembed.Start(o)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatalf("internal connection: %v", err)
	}
	t.Cleanup(nc.Close)
	if _, err := eventlog.Open(testutil.Ctx(t, 10*time.Second), nc, eventlog.Config{}); err != nil {
		t.Fatal(err)
	}
	return srv, nc
}

// client is a network connection with what the server told it
// asynchronously (permission violations) and whether it closed.
type client struct {
	*nats.Conn
	js     jetstream.JetStream
	closed chan struct{}

	mu      sync.Mutex
	errs    []error
	changed chan struct{} // closed at the next error
}

// dial connects to url with opts; it never reconnects, so a connection the
// server closes stays closed.
func dial(t testing.TB, url string, opts ...nats.Option) (*client, error) {
	t.Helper()
	c := &client{closed: make(chan struct{}), changed: make(chan struct{})}
	opts = append([]nats.Option{
		nats.NoReconnect(),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.errs = append(c.errs, err)
			close(c.changed)
			c.changed = make(chan struct{})
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(c.closed) }),
	}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, err
	}
	t.Cleanup(nc.Close)
	c.Conn = nc
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	return c, nil
}

// mustDial is dial as principal p that must succeed.
func mustDial(t testing.TB, url string, p principal, opts ...nats.Option) *client {
	t.Helper()
	c, err := dial(t, url, append(p.options(), opts...)...)
	if err != nil {
		t.Fatalf("%s cannot connect: %v", p.name, err)
	}
	return c
}

// violation returns a channel that receives the first permission
// violation the server reports for subject (the closing quote included,
// so that a.b does not match a.b.c).
func (c *client) violation(ctx context.Context, subject string) <-chan error {
	out := make(chan error, 1)
	go func() {
		for seen := 0; ; {
			c.mu.Lock()
			errs, changed := c.errs, c.changed
			c.mu.Unlock()
			for ; seen < len(errs); seen++ {
				if err := errs[seen]; errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), fmt.Sprintf("%q", subject)) {
					out <- err
					return
				}
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// refusal says how nats-server refused a request on subject: a permission
// violation, no responders, or a JetStream API error. It returns "" when
// the request was answered without an error (an operation that went
// through).
func (c *client) refusal(t testing.TB, subject string, data []byte) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	violated := c.violation(ctx, subject)
	type answer struct {
		msg *nats.Msg
		err error
	}
	answered := make(chan answer, 1)
	go func() {
		msg, err := c.RequestWithContext(ctx, subject, data)
		answered <- answer{msg, err}
	}()
	select {
	case err := <-violated:
		return "permission violation: " + err.Error()
	case a := <-answered:
		switch {
		case errors.Is(a.err, nats.ErrNoResponders):
			return "no responders"
		case a.err != nil:
			t.Fatalf("request on %s: %v (neither refused nor answered)", subject, a.err)
		case strings.Contains(string(a.msg.Data), `"error"`):
			return "API error: " + string(a.msg.Data)
		}
		return ""
	}
}

// publishRefusal says how nats-server refused a plain publish on subject
// (a permission violation), or "" when it did not within 5 s (nats.go
// reports the violation on a goroutine of its own: no round trip orders
// it before anything the test can wait on).
func (c *client) publishRefusal(t testing.TB, subject string) string {
	t.Helper()
	return c.asyncRefusal(t, subject, func() (func(), error) {
		return func() {}, c.Publish(subject, []byte(`{}`))
	})
}

// subscribeRefusal is publishRefusal for a subscription to subject.
func (c *client) subscribeRefusal(t testing.TB, subject string) string {
	t.Helper()
	return c.asyncRefusal(t, subject, func() (func(), error) {
		sub, err := c.SubscribeSync(subject)
		if err != nil {
			return nil, err
		}
		return func() { _ = sub.Unsubscribe() }, nil
	})
}

func (c *client) asyncRefusal(t testing.TB, subject string, do func() (undo func(), err error)) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	violated := c.violation(ctx, subject)
	undo, err := do()
	if err != nil {
		t.Fatal(err)
	}
	defer undo()
	select {
	case err := <-violated:
		return "permission violation: " + err.Error()
	case <-ctx.Done():
		return ""
	}
}

// waitClosed waits until the server closed c.
func (c *client) waitClosed(t testing.TB, who string) {
	t.Helper()
	select {
	case <-c.closed:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s's connection is still open", who)
	}
}

// logTo is a logger into b at debug level.
func logTo(b *testutil.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
