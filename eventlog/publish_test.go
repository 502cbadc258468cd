package eventlog_test

import (
	"testing"
	"time"

	"cellos-allinone/testutil"
)

func TestPublishStoresAMessageIDOnce(t *testing.T) {
	l := mustOpenStream(t)
	ctx := testutil.Ctx(t, 10*time.Second)
	mustPublish(t, l, "cellos.events.cell.c0.started", 1)
	first, err := l.Publish(ctx, "cellos.events.cell.c1.started", []byte(`{"id":"a"}`), "ev-a")
	if err != nil {
		t.Fatal(err)
	}
	if first.Seq != 2 || first.Duplicate {
		t.Fatalf("first Publish = %+v, want seq 2, not duplicate", first)
	}
	again, err := l.Publish(ctx, "cellos.events.cell.c1.started", []byte(`{"id":"a"}`), "ev-a")
	if err != nil {
		t.Fatal(err)
	}
	if again.Seq != 2 || !again.Duplicate {
		t.Errorf("repeated Publish = %+v, want seq 2, duplicate", again)
	}
	st, err := l.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages != 2 {
		t.Errorf("messages = %d, want 2", st.Messages)
	}
}
