package embed

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkIngest measures acknowledged async publishing over loopback TCP
// under each fsync policy, side by side in one run (docs/durability.md).
func BenchmarkIngest(b *testing.B) {
	payload := []byte(`{"specversion":"1.0","id":"x","source":"/bench","type":"dev.cellos.events.cell.lifecycle.v1.started","data":{"cellId":"c-1","formationId":"f-1","tenantId":"t-1","specId":"s","runId":"r"}}`)
	for _, mode := range []struct {
		name     string
		always   bool
		interval time.Duration
	}{
		{"sync=always", true, 0},
		{"sync=interval-1s", false, time.Second},
		{"sync=nats-default-2m", false, 0},
	} {
		b.Run(mode.name, func(b *testing.B) {
			srv, err := Start(Options{DataDir: b.TempDir(), Addr: "127.0.0.1:0", SyncAlways: mode.always, SyncInterval: mode.interval})
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Shutdown()
			nc, err := nats.Connect(srv.ClientURL())
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			js, _ := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
			ctx := context.Background()
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "B", Subjects: []string{"b.>"}, Storage: jetstream.FileStorage}); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(payload)))
			start := time.Now()
			i := 0
			for b.Loop() {
				i++
				if _, err := js.PublishAsync(fmt.Sprintf("b.%d", i%64), payload, jetstream.WithStallWait(time.Minute)); err != nil {
					b.Fatalf("publish %d: %v", i, err)
				}
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(5 * time.Minute):
				b.Fatal("acks did not complete")
			}
			// Until the last ack: a publish counts once it is acknowledged.
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "acked-msgs/s")
		})
	}
}
