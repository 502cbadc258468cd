package embed

import (
	"crypto/tls"
	"errors"
	"sync/atomic"
)

// certificate is the client port's certificate, swapped at runtime
// (SIGHUP): nats-server keeps our *tls.Config (or a clone, which keeps
// GetCertificate), and every handshake asks it for the current pair.
type certificate struct {
	p atomic.Pointer[tls.Certificate]
}

func (c *certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.p.Load(), nil
}

// config is the client port's TLS: 1.2 at least, the current certificate.
func (c *certificate) config() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.get}
}

// SetCertificate makes cert the certificate of new TLS connections to the
// client port; open ones keep theirs. It fails on a server started
// without Options.Certificate: TLS cannot be turned on while clients are
// connected in plain text.
func (s *Server) SetCertificate(cert *tls.Certificate) error {
	if s.cert == nil {
		return errors.New("embed: SetCertificate on a server started without TLS (Options.Certificate)")
	}
	if cert == nil || len(cert.Certificate) == 0 || cert.PrivateKey == nil {
		return errors.New("embed: SetCertificate needs a certificate with its private key")
	}
	s.cert.p.Store(cert)
	return nil
}
