package embed_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	natsembed "cellos-allinone/embed"
	"cellos-allinone/testutil"
)

// natsCLI is the nats CLI (github.com/nats-io/natscli) named by
// CELLOS_NATS_CLI, or the nats on PATH; the test is skipped without one.
func natsCLI(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CELLOS_NATS_CLI"); p != "" {
		return p
	}
	p, err := exec.LookPath("nats")
	if err != nil {
		t.Skip("no nats CLI: go install github.com/nats-io/natscli/nats@latest, then set CELLOS_NATS_CLI or put it on PATH")
	}
	return p
}

// runCLI runs the nats CLI as principal p against url, with its own empty
// configuration (no context of the user's).
func runCLI(t *testing.T, cli, url string, p principal, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	home := t.TempDir()
	args = append([]string{"--server", url, "--user", p.name, "--password", p.secret}, args...)
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The commands the package doc gives tenant producers and readers work
// with the real nats CLI, and the CLI gets no further than its sub-tree.
func TestNATSCLI(t *testing.T) {
	cli := natsCLI(t)
	pub := makePrincipal(t, "acme-pub", "publisher", "acme", "password")
	reader := makePrincipal(t, "acme-read", "reader", "acme", "password")
	srv, nc := startAuthNATS(t, natsembed.Options{Auth: authSet(t, pub, reader)})
	testutil.MustPublish(t, nc, append(tenantEvents("acme", 2), tenantEvents("globex", 2)...)...)

	// A supervisor publishes the seed's subjects with its tenant's
	// credentials; the event is stored in the tenant's sub-tree.
	publish := []string{"pub", "--jetstream", "-H", "Nats-Msg-Id:acme/e-1", "cellos.events.formation.acme-f1.created", `{"specversion":"1.0","id":"e-1"}`}
	out, err := runCLI(t, cli, srv.ClientURL(), pub, publish...)
	if err != nil || !strings.Contains(out, "Stored in Stream: CELLOS_EVENTS Sequence: 5") {
		t.Fatalf("nats pub: %v\n%s", err, out)
	}
	out, err = runCLI(t, cli, srv.ClientURL(), pub, publish...)
	if err != nil || !strings.Contains(out, "Duplicate: true") {
		t.Errorf("nats pub, again: %v\n%s", err, out)
	}

	// A reader reads its sub-tree from the start and stops at the end.
	out, err = runCLI(t, cli, srv.ClientURL(), reader, "sub", "cellos.events.acme.>", "--stream", "CELLOS_EVENTS", "--all", "-T", "--subjects-only")
	if err != nil {
		t.Fatalf("nats sub: %v\n%s", err, out)
	}
	testutil.CheckContains(t, "nats sub's output", out,
		[]string{"cellos.events.acme.cell.acme-c0.started", "cellos.events.acme.cell.acme-c1.started", "cellos.events.acme.formation.acme-f1.created"},
		[]string{"globex"})
	if out, err := runCLI(t, cli, srv.ClientURL(), reader, "stream", "info", "CELLOS_EVENTS"); err != nil || !strings.Contains(out, "Subjects: cellos.events.>") {
		t.Errorf("nats stream info: %v\n%s", err, out)
	}

	// Nothing beyond: each refused at once (a permission violation),
	// though the CLI only gives up at its timeout.
	for _, args := range [][]string{
		{"--timeout", "500ms", "sub", "cellos.events.>", "--stream", "CELLOS_EVENTS", "--all", "-T"},
		{"--timeout", "500ms", "stream", "purge", "CELLOS_EVENTS", "-f"},
		{"--timeout", "500ms", "stream", "rm", "CELLOS_EVENTS", "-f"},
	} {
		if out, err := runCLI(t, cli, srv.ClientURL(), reader, args...); err == nil {
			t.Errorf("nats %s as a tenant reader succeeded:\n%s", strings.Join(args, " "), out)
		}
	}
	if out, err := runCLI(t, cli, srv.ClientURL(), pub, "--timeout", "500ms", "pub", "--jetstream", "cellos.events.globex.formation.f.created", "{}"); err == nil {
		t.Errorf("nats pub into another tenant succeeded:\n%s", out)
	}
}
