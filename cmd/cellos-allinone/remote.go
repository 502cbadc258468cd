package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"cellos-allinone/client"
)

// The commands that talk to a running server (tail, get, publish, demo
// --target) share this file: the --server flag, the -o flag and how
// server answers become exit codes.

// serverFlag binds --server (env twin CELLOS_SERVER) to p.
func serverFlag(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "server", client.DefaultServer, "base URL of the cellos-allinone HTTP API")
}

// newClient is a usage error for a malformed --server.
func newClient(server string) (*client.Client, error) {
	c, err := client.New(server)
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
		return fmt.Errorf("%s: %s", server, ae.Error())
	}
	var ue *url.Error
	var oe *net.OpError
	if errors.As(err, &ue) && errors.As(err, &oe) && oe.Op == "dial" {
		return fmt.Errorf("%w\n(is the server running at %s? set it with --server or CELLOS_SERVER)", err, server)
	}
	return err
}
