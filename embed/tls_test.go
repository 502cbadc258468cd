package embed_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	neturl "net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	natsembed "cellos-allinone/embed"
	"cellos-allinone/testutil"
)

// servedSerial connects with TLS (at most version max, 0 for any) and
// returns the serial of the certificate the server showed and the TLS
// version it spoke.
func servedSerial(t testing.TB, url string, ca *testutil.CA, maxVersion uint16, opts ...nats.Option) (int64, uint16, error) {
	t.Helper()
	c, err := dial(t, url, append(opts, nats.Secure(&tls.Config{RootCAs: ca.Pool, MaxVersion: maxVersion}))...)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	st, err := c.TLSConnectionState()
	if err != nil {
		t.Fatal(err)
	}
	return st.PeerCertificates[0].SerialNumber.Int64(), st.Version, nil
}

// The client port speaks TLS 1.2 or later only, with the certificate
// given; a replaced certificate is what new connections see, while open
// ones go on. A client that will not speak TLS does not get in. The
// process's own connection stays in-process without TLS.
func TestTLSServesTheCurrentCertificate(t *testing.T) {
	ca := testutil.NewCA(t)
	p := makePrincipal(t, "acme-pub", "publisher", "acme", "password")
	srv, nc := startAuthNATS(t, natsembed.Options{Auth: authSet(t, p), Certificate: ca.Issue(t, 101, "127.0.0.1")})

	serial, version, err := servedSerial(t, srv.ClientURL(), ca, 0, p.options()...)
	if err != nil {
		t.Fatal(err)
	}
	if serial != 101 || version < tls.VersionTLS12 {
		t.Errorf("first certificate: serial %d over TLS %#x, want 101 over 1.2 or later", serial, version)
	}
	if _, _, err := servedSerial(t, srv.ClientURL(), ca, tls.VersionTLS11, p.options()...); err == nil {
		t.Error("a client limited to TLS 1.1 connected")
	}
	open := mustDial(t, srv.ClientURL(), p, nats.Secure(&tls.Config{RootCAs: ca.Pool}))

	if err := srv.SetCertificate(ca.Issue(t, 102, "127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if serial, _, err := servedSerial(t, srv.ClientURL(), ca, 0, p.options()...); err != nil || serial != 102 {
		t.Errorf("after the replacement: serial %d, %v; want 102", serial, err)
	}
	if err := open.Flush(); err != nil {
		t.Errorf("a connection opened before the replacement: %v", err)
	}
	if err := srv.SetCertificate(nil); err == nil {
		t.Error("SetCertificate(nil) succeeded")
	}

	if plainAnswered(t, srv.ClientURL(), p) {
		t.Error("a client speaking plain text got an answer")
	}
	if _, err := nc.TLSConnectionState(); err == nil {
		t.Error("the internal connection speaks TLS")
	}
}

// plainAnswered speaks the client protocol in plain text (nats.go would
// upgrade to TLS when the server requires it) and reports whether the
// server answered its PING.
func plainAnswered(t testing.TB, url string, p principal) bool {
	t.Helper()
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	info, err := r.ReadString('\n')
	if err != nil || !strings.Contains(info, `"tls_required":true`) {
		t.Fatalf("INFO %q, %v: want tls_required", info, err)
	}
	fmt.Fprintf(conn, "CONNECT {\"user\":%q,\"pass\":%q,\"verbose\":false}\r\nPING\r\n", p.name, p.secret)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return false // closed
		}
		if strings.HasPrefix(line, "PONG") {
			return true
		}
	}
}

// Without a certificate at start there is no TLS to replace.
func TestSetCertificateNeedsTLS(t *testing.T) {
	srv, _ := startAuthNATS(t, natsembed.Options{})
	if err := srv.SetCertificate(testutil.NewCA(t).Issue(t, 1, "127.0.0.1")); err == nil {
		t.Error("SetCertificate on a server started without TLS succeeded")
	}
}
