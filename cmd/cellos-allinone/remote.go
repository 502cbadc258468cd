package main

import (
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"

	"cellos-allinone/client"
)

// The commands that talk to a running server (tail, get, publish, demo
// --target) share this file: the --server flag, the -o flag and how
// server answers become exit codes.

// remote is where a command finds a running server and how it proves who
// it is: --server, --token or --creds, and --cacert for a server whose
// certificate no system authority signed.
type remote struct {
	server, token, creds, cacert string
}

// bind binds the flags; serverDefault is --server's default ("" for
// commands where the server is optional).
func (rm *remote) bind(fs *flag.FlagSet, serverDefault string) {
	fs.StringVar(&rm.server, "server", serverDefault, "base URL of the cellos-allinone HTTP API (https:// with TLS)")
	rm.bindCredentials(fs)
}

// bindCredentials binds the flags besides --server (demo calls its server
// --target).
func (rm *remote) bindCredentials(fs *flag.FlagSet) {
	fs.StringVar(&rm.token, "token", "", "bearer token of a principal of the server's auth file (prefer --creds or CELLOS_TOKEN: a flag shows in ps)")
	fs.StringVar(&rm.creds, "creds", "", "file whose first line is the bearer token (keeps it out of the shell history and ps)")
	fs.StringVar(&rm.cacert, "cacert", "", "PEM file of the certificate authority (or the self-signed certificate) to trust for an https:// server")
}

// credential is the bearer token to send: --token, else the first line of
// --creds; "" for none.
func (rm *remote) credential() (string, error) {
	if rm.token != "" && rm.creds != "" {
		return "", usageError{"--token and --creds exclude each other"}
	}
	if rm.creds == "" {
		return rm.token, nil
	}
	b, err := os.ReadFile(rm.creds)
	if err != nil {
		return "", fmt.Errorf("--creds: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	if line = strings.TrimSpace(line); line == "" {
		return "", fmt.Errorf("--creds %s: the first line is empty; it must hold the token", rm.creds)
	}
	return line, nil
}

// client is a client of server (rm.server when ""); a malformed URL is a
// usage error.
func (rm *remote) client(server string) (*client.Client, error) {
	if server == "" {
		server = rm.server
	}
	token, err := rm.credential()
	if err != nil {
		return nil, err
	}
	opts := []client.Option{client.WithToken(token)}
	if rm.cacert != "" {
		pem, err := os.ReadFile(rm.cacert)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageError{fmt.Sprintf("--cacert %s: no PEM certificate in it", rm.cacert)}
		}
		opts = append(opts, client.WithRootCAs(pool))
	}
	c, err := client.New(server, opts...)
	if err != nil {
		return nil, usageError{"--server: " + err.Error()}
	}
	return c, nil
}

// outputFlag binds -o and its long twin --output to one value that must
// be one of choices.
type outputFlag struct {
	value   string
	choices []string
}

func (o *outputFlag) String() string { return o.value }

func (o *outputFlag) Set(s string) error {
	if !slices.Contains(o.choices, s) {
		return fmt.Errorf("want %s", strings.Join(o.choices, " or "))
	}
	o.value = s
	return nil
}

func bindOutput(fs *flag.FlagSet, choices ...string) *outputFlag {
	o := &outputFlag{value: choices[0], choices: choices}
	usage := "output format: " + strings.Join(choices, " or ")
	fs.Var(o, "o", usage)
	fs.Var(o, "output", usage+" (same as -o)")
	return o
}

// parseInterspersed parses flags that may stand before, between and after
// positional arguments ("get cell c-1 -o json"), then fills flags not given
// from their environment twins. It returns the positional arguments and
// the names of the flags given on the command line.
func parseInterspersed(fs *flag.FlagSet, args []string) (pos []string, given map[string]bool, err error) {
	for {
		if err := parseFlags(fs, args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, nil, err
			}
			return nil, nil, usageError{err.Error()}
		}
		// fs.Parse stops at the first positional argument, and after "--".
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	given = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	return pos, given, parse(fs, nil)
}

// remoteError explains a failed call to the server. A 400 answer means a
// parameter the user gave is wrong: a usage error (exit 2), if badInput.
func remoteError(server string, err error, badInput bool) error {
	var ae *client.APIError
	if errors.As(err, &ae) {
		if badInput && ae.Status == 400 {
			return usageError{ae.Message}
		}
		if ae.Status == 401 {
			return fmt.Errorf("%s: %s\n(give the token of a principal of its auth file with --creds FILE or CELLOS_TOKEN)", server, ae.Error())
		}
		return fmt.Errorf("%s: %s", server, ae.Error())
	}
	var ue *url.Error
	var oe *net.OpError
	if errors.As(err, &ue) && errors.As(err, &oe) && oe.Op == "dial" {
		return fmt.Errorf("%w\n(is the server running at %s? set it with --server or CELLOS_SERVER)", err, server)
	}
	return err
}

// connectNATS connects to the server's NATS at url with the remote's
// credentials: an admin's token is also its NATS credential
// (docs/security.md), and --cacert verifies its certificate.
func (rm *remote) connectNATS(url, name string) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name(name)}
	if token, _ := rm.credential(); token != "" {
		opts = append(opts, nats.Token(token))
	}
	if rm.cacert != "" {
		opts = append(opts, nats.RootCAs(rm.cacert))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to the server's NATS at %s: %w", url, err)
	}
	return nc, nil
}
