// Package tlscert holds the process's TLS certificate (--tls-cert,
// --tls-key): one pair for HTTP and the NATS client port, replaced in
// place when the files change and the process is told to reload (SIGHUP),
// without dropping a connection. Handshakes after a reload present the
// new certificate; a pair that does not load keeps the old one.
package tlscert

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Pair is a certificate and its key, loaded from two PEM files.
type Pair struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// Load reads the pair; the certificate must match the key and be valid
// now.
func Load(certFile, keyFile string) (*Pair, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("TLS needs both --tls-cert and --tls-key")
	}
	p := &Pair{certFile: certFile, keyFile: keyFile}
	if err := p.Reload(); err != nil {
		return nil, err
	}
	return p, nil
}

// Reload reads the files again; on an error the pair keeps serving the
// certificate it had.
func (p *Pair) Reload() error {
	c, err := tls.LoadX509KeyPair(p.certFile, p.keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate %s with key %s: %w", p.certFile, p.keyFile, err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return fmt.Errorf("TLS certificate %s: %w", p.certFile, err)
	}
	if now := time.Now(); now.After(leaf.NotAfter) {
		return fmt.Errorf("TLS certificate %s expired on %s", p.certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	c.Leaf = leaf
	p.cur.Store(&c)
	return nil
}

// Certificate is the certificate served now.
func (p *Pair) Certificate() *tls.Certificate { return p.cur.Load() }

// Config is a server configuration of TLS 1.2 or later that presents the
// pair's current certificate at every handshake.
func (p *Pair) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return p.cur.Load(), nil
		},
	}
}
