package embed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	natsembed "cellos-allinone/embed"
	"cellos-allinone/eventlog"
	"cellos-allinone/testutil"
)

var tenants = []string{"acme", "globex", "initech"}

// matrixPrincipals: an admin, a publisher and a reader per tenant (one
// of them both), an untenanted publisher and reader; every way to log in.
func matrixPrincipals(t testing.TB) []principal {
	return []principal{
		makePrincipal(t, "ops", "admin", "", "password"),
		makePrincipal(t, "acme-pub", "publisher", "acme", "password"),
		makePrincipal(t, "acme-read", "reader", "acme", "token"),
		makePrincipal(t, "globex-pub", "publisher", "globex", "nkey"),
		makePrincipal(t, "globex-read", "reader", "globex", "password"),
		makePrincipal(t, "initech-sup", "publisher,reader", "initech", "nkey"),
		makePrincipal(t, "any-pub", "publisher", "", "token"),
		makePrincipal(t, "any-read", "reader", "", "password"),
	}
}

// tenantEvents are events in tenant's sub-tree whose ids name the tenant:
// a byte of another tenant's would show.
func tenantEvents(tenant string, n int) []testutil.Event {
	var out []testutil.Event
	for i := range n {
		ev := testutil.Cell(fmt.Sprintf("%s-c%d", tenant, i), "started", map[string]any{"tenantId": tenant})
		ev.Subject = strings.Replace(ev.Subject, "cellos.events.", "cellos.events."+tenant+".", 1)
		out = append(out, ev)
	}
	return out
}

// createRequest is a consumer create request as nats.go sends it, on the
// filtered-subject form when filter is set.
func createRequest(name, filter string, extra map[string]any) (string, []byte) {
	cfg := map[string]any{"name": name, "deliver_policy": "all", "ack_policy": "none", "replay_policy": "instant", "num_replicas": 0}
	subject := "$JS.API.CONSUMER.CREATE." + eventlog.StreamName + "." + name
	if filter != "" {
		cfg["filter_subject"] = filter
		subject += "." + filter
	}
	for k, v := range extra {
		cfg[k] = v
	}
	body, err := json.Marshal(map[string]any{"stream_name": eventlog.StreamName, "config": cfg})
	if err != nil {
		panic(err)
	}
	return subject, body
}

// outside is a tenant other than p's (for an untenanted principal, a
// subject outside the event log altogether).
func outside(p principal) (filter, subject string) {
	if p.tenant == "" {
		return "other.>", "other.cell.x.started"
	}
	other := tenants[(slices.Index(tenants, p.tenant)+1)%len(tenants)]
	return "cellos.events." + other + ".>", "cellos.events." + other + ".cell.x.started"
}

// Every non-admin principal is refused, by nats-server, everything that is
// not its own: the stream's purge and deletion, consumers (outside its
// sub-tree, push, durable), publishing outside its sub-tree, subscribing
// to the events. The stream is untouched afterwards.
func TestNonAdminsAreRefused(t *testing.T) {
	ps := matrixPrincipals(t)
	srv, nc := startAuthNATS(t, natsembed.Options{Auth: authSet(t, ps...)})
	var seed []testutil.Event
	for _, tenant := range tenants {
		seed = append(seed, tenantEvents(tenant, 3)...)
	}
	testutil.MustPublish(t, nc, seed...)

	for _, p := range ps {
		if p.admin() {
			continue
		}
		t.Run(p.name, func(t *testing.T) {
			c := mustDial(t, srv.ClientURL(), p)
			outFilter, outSubject := outside(p)
			outCreate, outBody := createRequest("x", outFilter, nil)
			checks := []struct {
				what    string
				refusal func() string
			}{
				{"stream purge", func() string { return c.refusal(t, "$JS.API.STREAM.PURGE."+eventlog.StreamName, nil) }},
				{"stream delete", func() string { return c.refusal(t, "$JS.API.STREAM.DELETE."+eventlog.StreamName, nil) }},
				{"consumer delete", func() string { return c.refusal(t, "$JS.API.CONSUMER.DELETE."+eventlog.StreamName+".x", nil) }},
				{"stream list", func() string { return c.refusal(t, "$JS.API.STREAM.LIST", nil) }},
				{"consumer create outside the sub-tree", func() string { return c.refusal(t, outCreate, outBody) }},
				{"publish outside the sub-tree", func() string { return c.publishRefusal(t, outSubject) }},
				{"subscribe to the events", func() string { return c.subscribeRefusal(t, "cellos.events.>") }},
			}
			if !strings.Contains(p.roles, "publisher") {
				own := "cellos.events.cell.x.started"
				if p.tenant != "" {
					own = "cellos.events." + p.tenant + ".cell.x.started"
				}
				checks = append(checks, struct {
					what    string
					refusal func() string
				}{"a reader's publish", func() string { return c.publishRefusal(t, own) }})
			}
			if strings.Contains(p.roles, "reader") {
				tree := "cellos.events.>"
				if p.tenant != "" {
					tree = "cellos.events." + p.tenant + ".>"
				}
				for what, extra := range map[string]map[string]any{
					// Delivered by JetStream into the stream's account.
					"push consumer":               {"deliver_subject": "$JS.API.STREAM.PURGE." + eventlog.StreamName},
					"durable consumer":            {"durable_name": "x"},
					"filter unlike the subject's": {"filter_subject": outFilter},
				} {
					subject, body := createRequest("x", tree, extra)
					checks = append(checks, struct {
						what    string
						refusal func() string
					}{what, func() string { return c.refusal(t, subject, body) }})
				}
			} else {
				tree := "cellos.events.>"
				if p.tenant != "" {
					tree = "cellos.events." + p.tenant + ".>"
				}
				subject, body := createRequest("x", tree, nil)
				checks = append(checks, struct {
					what    string
					refusal func() string
				}{"a publisher's consumer", func() string { return c.refusal(t, subject, body) }})
			}
			for _, ch := range checks {
				if got := ch.refusal(); got == "" {
					t.Errorf("%s by %s went through", ch.what, p.name)
				} else {
					t.Logf("%s: %s", ch.what, got)
				}
			}
			if c.IsClosed() {
				t.Errorf("%s's connection was closed by a refusal", p.name)
			}
		})
	}

	js, _ := jetstream.New(nc)
	s, err := js.Stream(testutil.Ctx(t, 5*time.Second), eventlog.StreamName)
	if err != nil {
		t.Fatalf("the stream after the refusals: %v", err)
	}
	if got := s.CachedInfo().State.Msgs; got != uint64(len(seed)) {
		t.Errorf("the stream holds %d messages after the refusals, want the %d published", got, len(seed))
	}
	if got := s.CachedInfo().State.Consumers; got != 0 {
		t.Errorf("the stream has %d consumers after the refusals, want none", got)
	}
}

// A tenant publisher's seed-form publish is acknowledged and stored in its
// sub-tree, deduplicated by Nats-Msg-Id; its tenant-form publish is stored
// as it is. An untenanted publisher's events stay untenanted. A tenant
// reader's ordered consumer reads exactly its tenant's events; an
// untenanted reader's reads them all. Admins see everything.
func TestPrincipalsDoTheirWork(t *testing.T) {
	ps := matrixPrincipals(t)
	srv, nc := startAuthNATS(t, natsembed.Options{Auth: authSet(t, ps...)})
	ctx := testutil.Ctx(t, 20*time.Second)
	js, _ := jetstream.New(nc)
	internal, err := js.Stream(ctx, eventlog.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]principal{}
	for _, p := range ps {
		byName[p.name] = p
	}

	// The admin watches every event as it is stored.
	admin := mustDial(t, srv.ClientURL(), byName["ops"])
	watched, err := admin.SubscribeSync("cellos.events.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Flush(); err != nil {
		t.Fatal(err)
	}

	want := map[string]int{} // events per tenant ("" untenanted)
	publishers := []string{"acme-pub", "globex-pub", "initech-sup", "any-pub"}
	for _, name := range publishers {
		p := byName[name]
		c := mustDial(t, srv.ClientURL(), p)
		tag := p.tenant
		if tag == "" {
			tag = "untenanted"
		}
		// The seed's form: cellos.events.cell.<id>.<phase>.
		seedForm := fmt.Sprintf("cellos.events.cell.%s-c1.started", tag)
		ack, err := c.js.Publish(ctx, seedForm, []byte(`{"by":"`+tag+`"}`), jetstream.WithMsgID(tag+"/e-1"))
		if err != nil {
			t.Fatalf("%s: publish %s: %v", name, seedForm, err)
		}
		stored, err := internal.GetMsg(ctx, ack.Sequence)
		if err != nil {
			t.Fatal(err)
		}
		wantSubject := seedForm
		if p.tenant != "" {
			wantSubject = strings.Replace(seedForm, "cellos.events.", "cellos.events."+p.tenant+".", 1)
		}
		if stored.Subject != wantSubject {
			t.Errorf("%s published %s, stored as %s, want %s", name, seedForm, stored.Subject, wantSubject)
		}
		again, err := c.js.Publish(ctx, seedForm, []byte(`{"by":"`+tag+`"}`), jetstream.WithMsgID(tag+"/e-1"))
		if err != nil || !again.Duplicate || again.Sequence != ack.Sequence {
			t.Errorf("%s published message id %s again: %+v, %v; want a duplicate of %d", name, tag+"/e-1", again, err, ack.Sequence)
		}
		want[p.tenant]++
		if p.tenant != "" {
			tenantForm := "cellos.events." + p.tenant + ".formation." + p.tenant + "-f1.created"
			ack, err := c.js.Publish(ctx, tenantForm, []byte(`{"by":"`+tag+`"}`))
			if err != nil {
				t.Fatalf("%s: publish %s: %v", name, tenantForm, err)
			}
			if stored, err := internal.GetMsg(ctx, ack.Sequence); err != nil || stored.Subject != tenantForm {
				t.Errorf("%s published %s, stored as %v (%v)", name, tenantForm, stored, err)
			}
			want[p.tenant]++
			// Async, as supervisors publish.
			f, err := c.js.PublishAsync("cellos.events.formation."+p.tenant+"-f2.created", []byte(`{"by":"`+tag+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			select {
			case ack := <-f.Ok():
				want[p.tenant]++
				if stored, err := internal.GetMsg(ctx, ack.Sequence); err != nil || !strings.HasPrefix(stored.Subject, "cellos.events."+p.tenant+".formation.") {
					t.Errorf("%s's async publish stored as %v (%v)", name, stored, err)
				}
			case err := <-f.Err():
				t.Fatalf("%s: async publish: %v", name, err)
			case <-ctx.Done():
				t.Fatalf("%s: no async ack", name)
			}
		}
	}
	total := 0
	for _, n := range want {
		total += n
	}
	for range total {
		if _, err := watched.NextMsg(5 * time.Second); err != nil {
			t.Fatalf("the admin's subscription to cellos.events.>: %v", err)
		}
	}

	readers := map[string]string{"acme-read": "acme", "globex-read": "globex", "initech-sup": "initech", "any-read": ""}
	for name, tenant := range readers {
		c := mustDial(t, srv.ClientURL(), byName[name])
		cfg := jetstream.OrderedConsumerConfig{}
		if tenant != "" {
			cfg.FilterSubjects = []string{"cellos.events." + tenant + ".>"}
		}
		cons, err := c.js.OrderedConsumer(ctx, eventlog.StreamName, cfg)
		if err != nil {
			t.Fatalf("%s: ordered consumer: %v", name, err)
		}
		got := readAll(t, cons)
		wantN := total
		if tenant != "" {
			wantN = want[tenant]
		}
		if len(got) != wantN {
			t.Errorf("%s read %d events, want %d", name, len(got), wantN)
		}
		for _, m := range got {
			if tenant == "" {
				continue
			}
			for _, other := range tenants {
				if other != tenant && (strings.Contains(m.Subject(), other) || strings.Contains(string(m.Data()), other)) {
					t.Errorf("%s read %s %s: %s's", name, m.Subject(), m.Data(), other)
				}
			}
		}
		info, err := c.js.Stream(ctx, eventlog.StreamName)
		if err != nil {
			t.Errorf("%s: stream info: %v", name, err)
		} else if info.CachedInfo().State.Msgs != uint64(total) {
			t.Errorf("%s: stream info says %d messages, want %d", name, info.CachedInfo().State.Msgs, total)
		}
	}
}

// readAll reads cons to the end of what it matches now: until a message
// says nothing more is pending.
func readAll(t testing.TB, cons jetstream.Consumer) []jetstream.Msg {
	t.Helper()
	it, err := cons.Messages()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Stop()
	var got []jetstream.Msg
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			t.Fatalf("read after %d messages: %v", len(got), err)
		}
		got = append(got, m)
		md, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		if md.NumPending == 0 {
			return got
		}
	}
}
