package tlscert

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"

	"cellos-allinone/testutil"
)

// A reload swaps the certificate new handshakes see; a broken pair keeps
// the old one; TLS 1.1 is refused.
func TestReloadAndMinVersion(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	first := testutil.WriteCert(t, certFile, keyFile, "first.example")
	p, err := Load(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", p.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	served := func(pool *x509.CertPool, name string) error {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: name})
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := served(first, "first.example"); err != nil {
		t.Fatalf("first certificate: %v", err)
	}
	second := testutil.WriteCert(t, certFile, keyFile, "second.example")
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := served(second, "second.example"); err != nil {
		t.Fatalf("after reload: %v", err)
	}
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(); err == nil {
		t.Fatal("Reload of a broken key = nil error")
	}
	if err := served(second, "second.example"); err != nil {
		t.Fatalf("after a failed reload the old certificate must stay: %v", err)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	old := tls.Client(c, &tls.Config{RootCAs: second, ServerName: "second.example", MaxVersion: tls.VersionTLS11})
	if err := old.Handshake(); err == nil {
		t.Fatal("a TLS 1.1 handshake succeeded")
	}
	old.Close()
}
