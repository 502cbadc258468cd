//go:build unix

package embed_test

import (
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"cellos-allinone/auth"
	natsembed "cellos-allinone/embed"
)

// BenchmarkPublishThroughImport measures acknowledged async publishing
// over loopback TCP by who publishes: an anonymous client of a server
// without auth (the laptop case, as before accounts existed), and on a
// server with an auth set an admin (the stream's account, no import), a
// tenant publisher sending the seed's subjects (the service import that
// maps them into its sub-tree) and an untenanted publisher (an import
// without mapping). Each on a fresh server. Besides acknowledged messages
// per second it reports the process's CPU time per message (client and
// server are both in it): on a shared machine the throughput swings with
// the neighbours' load, the CPU cost much less.
func BenchmarkPublishThroughImport(b *testing.B) {
	payload := []byte(`{"specversion":"1.0","id":"x","source":"/bench","type":"dev.cellos.events.cell.lifecycle.v1.started","data":{"cellId":"c-1","formationId":"f-1","tenantId":"t-1","specId":"s","runId":"r"}}`)
	admin := makePrincipal(b, "ops", "admin", "", "password")
	tenant := makePrincipal(b, "acme-pub", "publisher", "acme", "password")
	untenanted := makePrincipal(b, "any-pub", "publisher", "", "password")
	set := authSet(b, admin, tenant, untenanted)
	type publisher struct {
		name string
		auth bool
		opts []nats.Option
	}
	for _, tc := range []publisher{
		{"anonymous-no-auth", false, nil},
		{"admin-global-account", true, admin.options()},
		{"tenant-mapped-import", true, tenant.options()},
		{"untenanted-import", true, untenanted.options()},
	} {
		for _, msgID := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/msg-id=%v", tc.name, msgID), func(b *testing.B) { benchPublish(b, set, tc.auth, tc.opts, msgID, payload) })
		}
	}
}

// benchPublish publishes b.N events asynchronously, with a Nats-Msg-Id
// each when msgID (as the HTTP ingest and careful producers do).
func benchPublish(b *testing.B, set *auth.Set, withAuth bool, opts []nats.Option, msgID bool, payload []byte) {
	o := natsembed.Options{}
	if withAuth {
		o.Auth = set
	}
	srv, _ := startAuthNATS(b, o)
	c, err := dial(b, srv.ClientURL(), opts...)
	if err != nil {
		b.Fatal(err)
	}
	js, _ := jetstream.New(c.Conn, jetstream.WithPublishAsyncMaxPending(4096))
	b.SetBytes(int64(len(payload)))
	cpu0 := cpuTime(b)
	start := time.Now()
	i := 0
	for b.Loop() {
		i++
		popts := []jetstream.PublishOpt{jetstream.WithStallWait(time.Minute)}
		if msgID {
			popts = append(popts, jetstream.WithMsgID(strconv.Itoa(i)))
		}
		if _, err := js.PublishAsync("cellos.events.cell.c-"+strconv.Itoa(i%64)+".started", payload, popts...); err != nil {
			b.Fatalf("publish %d: %v", i, err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatalf("%d of %d acks missing after a minute (connection closed %v, last error %v)", js.PublishAsyncPending(), b.N, c.IsClosed(), c.LastError())
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "acked-msgs/s")
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
