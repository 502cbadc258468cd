package embed_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	natsembed "cellos-allinone/embed"
	"cellos-allinone/eventlog"
	"cellos-allinone/testutil"
)

// A reload closes the connections of exactly the principals it removes or
// changes; the others keep theirs, working, and a new tenant's principal
// gets in at once, into its own sub-tree.
func TestSetAuthClosesExactlyTheChangedPrincipals(t *testing.T) {
	keep := makePrincipal(t, "acme-read", "reader", "acme", "token")
	keepPub := makePrincipal(t, "acme-pub", "publisher", "acme", "nkey")
	admin := makePrincipal(t, "ops", "admin", "", "password")
	rotated := makePrincipal(t, "globex-pub", "publisher", "globex", "password")
	moved := makePrincipal(t, "globex-read", "reader", "globex", "password")
	removed := makePrincipal(t, "any-read", "reader", "", "password")
	srv, nc := startAuthNATS(t, natsembed.Options{Auth: authSet(t, keep, keepPub, admin, rotated, moved, removed)})
	ctx := testutil.Ctx(t, 20*time.Second)

	conns := map[string][]*client{}
	for _, p := range []principal{keep, keepPub, admin, rotated, moved, removed} {
		for range 2 {
			conns[p.name] = append(conns[p.name], mustDial(t, srv.ClientURL(), p))
		}
	}
	// The unchanged reader is in the middle of reading when the reload
	// comes.
	testutil.MustPublish(t, nc, tenantEvents("acme", 2)...)
	cons, err := conns[keep.name][0].js.OrderedConsumer(ctx, eventlog.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"cellos.events.acme.>"}})
	if err != nil {
		t.Fatal(err)
	}
	it, err := cons.Messages()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Stop()
	for range 2 {
		if _, err := it.Next(jetstream.NextContext(ctx)); err != nil {
			t.Fatal(err)
		}
	}

	rotatedNew := rotated
	rotatedNew.secret = "a-new-secret"
	movedNew := moved
	movedNew.tenant = "acme"
	newcomer := makePrincipal(t, "initech-pub", "publisher", "initech", "token")
	if err := srv.SetAuth(authSet(t, keep, keepPub, admin, rotatedNew, movedNew, newcomer)); err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{rotated.name, moved.name, removed.name} {
		for _, c := range conns[name] {
			c.waitClosed(t, name)
		}
	}
	for _, name := range []string{keep.name, keepPub.name, admin.name} {
		for i, c := range conns[name] {
			if err := c.Flush(); err != nil || c.IsClosed() {
				t.Errorf("%s's connection %d after the reload: %v (closed %v)", name, i, err, c.IsClosed())
			}
		}
	}
	// They still work: the reader's consumer goes on, the publisher's
	// events still land in its sub-tree.
	ack, err := conns[keepPub.name][0].js.Publish(ctx, "cellos.events.cell.acme-c9.started", []byte(`{}`))
	if err != nil {
		t.Fatalf("the unchanged publisher after the reload: %v", err)
	}
	m, err := it.Next(jetstream.NextContext(ctx))
	if err != nil || m.Subject() != "cellos.events.acme.cell.acme-c9.started" {
		t.Fatalf("the unchanged reader after the reload read %v, %v", m, err)
	}
	if md, _ := m.Metadata(); md.Sequence.Stream != ack.Sequence {
		t.Errorf("the unchanged reader read sequence %d, want %d", md.Sequence.Stream, ack.Sequence)
	}

	// New logins use the new set.
	if _, err := dial(t, srv.ClientURL(), rotated.options()...); err == nil {
		t.Errorf("%s logged in with its old secret", rotated.name)
	}
	if _, err := dial(t, srv.ClientURL(), removed.options()...); err == nil {
		t.Errorf("the removed %s logged in", removed.name)
	}
	mustDial(t, srv.ClientURL(), rotatedNew)
	movedConn := mustDial(t, srv.ClientURL(), movedNew)
	if _, err := movedConn.js.OrderedConsumer(ctx, eventlog.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"cellos.events.acme.>"}}); err != nil {
		t.Errorf("%s, moved to acme, cannot read acme's events: %v", moved.name, err)
	}
	c := mustDial(t, srv.ClientURL(), newcomer)
	ack, err = c.js.Publish(ctx, "cellos.events.formation.initech-f1.created", []byte(`{}`))
	if err != nil {
		t.Fatalf("the new tenant's publisher: %v", err)
	}
	js, _ := jetstream.New(nc)
	stream, err := js.Stream(ctx, eventlog.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if stored, err := stream.GetMsg(ctx, ack.Sequence); err != nil || stored.Subject != "cellos.events.initech.formation.initech-f1.created" {
		t.Errorf("the new tenant's event stored as %v, %v", stored, err)
	}

	// A reload that changes nothing closes nothing.
	conns[newcomer.name] = []*client{c}
	conns[moved.name] = []*client{movedConn}
	if err := srv.SetAuth(authSet(t, keep, keepPub, admin, rotatedNew, movedNew, newcomer)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{keep.name, keepPub.name, admin.name, moved.name, newcomer.name} {
		for _, c := range conns[name] {
			if err := c.Flush(); err != nil {
				t.Errorf("%s after a reload that changed nothing: %v", name, err)
			}
		}
	}
}

// The logins forget connections that closed, and only those: a reload
// still closes a changed principal's connection opened before a prune.
func TestPruneForgetsOnlyClosedConnections(t *testing.T) {
	kept := makePrincipal(t, "acme-read", "reader", "acme", "token")
	churn := makePrincipal(t, "acme-pub", "publisher", "acme", "password")
	srv, _ := startAuthNATS(t, natsembed.Options{Auth: authSet(t, kept, churn)})
	base := srv.NumClients() // this process's own
	c := mustDial(t, srv.ClientURL(), kept)
	for range 20 {
		mustDial(t, srv.ClientURL(), churn).Close()
	}
	testutil.WaitFor(t, 5*time.Second, "the server to see the closed connections go", func() bool { return srv.NumClients() == base+1 })
	srv.PruneLogins()
	if got := srv.RecordedLogins(); got != 1 {
		t.Fatalf("%d connections remembered after the prune, want 1", got)
	}
	if err := srv.SetAuth(authSet(t, churn)); err != nil {
		t.Fatal(err)
	}
	c.waitClosed(t, kept.name)
}
