package embed_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	natsembed "cellos-allinone/embed"
	"cellos-allinone/testutil"
)

// Once an auth set is given, nothing gets in without a principal's
// credentials: no anonymous client, no wrong secret, no forged NKey
// signature, and not the internal user over the network even with its
// secret. The process's own connection works.
func TestLoginsWithoutCredentialsAreRefused(t *testing.T) {
	pub := makePrincipal(t, "acme-pub", "publisher", "acme", "password")
	nk := makePrincipal(t, "globex-pub", "publisher", "globex", "nkey")
	srv, nc := startAuthNATS(t, natsembed.Options{Auth: authSet(t, pub, nk)})
	forger, _ := nkeys.CreateUser()
	nkPub, _ := nk.kp.PublicKey()
	for _, tc := range []struct {
		what string
		opts []nats.Option
	}{
		{"anonymous", nil},
		{"a wrong password", []nats.Option{nats.UserInfo(pub.name, "wrong")}},
		{"another's user name", []nats.Option{nats.UserInfo(nk.name, pub.secret)}},
		{"an unknown token", []nats.Option{nats.Token("wrong")}},
		{"the name as a token", []nats.Option{nats.Token(pub.name)}},
		{"a forged NKey signature", []nats.Option{nats.Nkey(nkPub, forger.Sign)}},
		{"an unknown NKey", []nats.Option{nats.Nkey(mustPublic(t, forger), forger.Sign)}},
		{"the internal user over TCP", []nats.Option{nats.UserInfo("_cellos", srv.InternalSecret())}},
	} {
		if _, err := dial(t, srv.ClientURL(), tc.opts...); err == nil || !strings.Contains(err.Error(), "Authorization Violation") {
			t.Errorf("connect with %s: %v, want an authorization violation", tc.what, err)
		}
	}
	for _, p := range []principal{pub, nk} {
		c := mustDial(t, srv.ClientURL(), p)
		if err := c.Flush(); err != nil {
			t.Errorf("%s: %v", p.name, err)
		}
	}
	if _, err := nc.Request("$JS.API.INFO", nil, 5*time.Second); err != nil {
		t.Errorf("the internal connection: %v", err)
	}
}

func mustPublic(t testing.TB, kp nkeys.KeyPair) string {
	t.Helper()
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// A refused login's log line names no password or token, and no user name
// that is not a principal's (it may be a secret in the wrong field).
func TestRefusedLoginsLogNoSecret(t *testing.T) {
	var logs testutil.Buffer
	pub := makePrincipal(t, "acme-pub", "publisher", "acme", "password")
	srv, _ := startAuthNATS(t, natsembed.Options{Auth: authSet(t, pub), Logger: logTo(&logs)})
	secrets := []string{"pw-Zq81-secret", "tok-Xy42-secret", "user-Vb73-secret", pub.secret}
	attempts := [][]nats.Option{
		{nats.UserInfo(pub.name, secrets[0])},
		{nats.Token(secrets[1])},
		{nats.UserInfo(secrets[2], secrets[0])},
		{nats.UserInfo(secrets[2], "")},
		{nats.UserInfo("nobody", pub.secret)},
	}
	for i, opts := range attempts {
		if _, err := dial(t, srv.ClientURL(), opts...); err == nil {
			t.Fatalf("attempt %d logged in", i)
		}
	}
	// nats-server logs the refusal before it tells the client.
	logs.WaitFor(t, 5*time.Second, fmt.Sprintf("%d refused logins in the log", len(attempts)), func(s string) bool {
		return strings.Count(s, "authentication error") == len(attempts)
	})
	testutil.CheckContains(t, "the log", logs.String(), []string{`User \"acme-pub\"`, `User \"[REDACTED]\"`}, secrets)
}

// Without an auth set the server is what it was: every client anonymous in
// the stream's account; SetAuth cannot add one later.
func TestWithoutAuthClientsAreAnonymous(t *testing.T) {
	srv, _ := startAuthNATS(t, natsembed.Options{})
	c, err := dial(t, srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	ack, err := c.js.Publish(testutil.Ctx(t, 5*time.Second), "cellos.events.cell.c-1.started", []byte(`{}`))
	if err != nil || ack.Sequence != 1 {
		t.Fatalf("anonymous publish: %+v, %v", ack, err)
	}
	if err := srv.SetAuth(authSet(t, makePrincipal(t, "ops", "admin", "", "token"))); err == nil {
		t.Error("SetAuth on a server started without auth succeeded")
	}
}
