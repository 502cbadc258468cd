package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// version and commit are stamped by the release build
// (-ldflags "-X main.version=… -X main.commit=…", see .ci/release); when
// empty, the Go toolchain's own build information stands in.
var (
	version = ""
	commit  = ""
)

// natsServerModule is the module whose version `version` reports.
const natsServerModule = "github.com/nats-io/nats-server/v2"

// buildInfo is what `version` prints.
type buildInfo struct {
	Version    string // the stamp, else the module version go build recorded, else "dev"
	Commit     string // the stamp, else vcs.revision (+dirty when vcs.modified), else "unknown"
	Go         string // toolchain and target, e.g. "go1.26.8 linux/arm64"
	NATSServer string // the nats-server module linked in
}

func readBuildInfo() buildInfo {
	b := buildInfo{
		Version:    version,
		Commit:     commit,
		Go:         runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		NATSServer: "v" + server.VERSION,
	}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
		if b.Commit == "" {
			b.Commit = vcsCommit(bi.Settings)
		}
		for _, d := range bi.Deps {
			if d.Path != natsServerModule {
				continue
			}
			if d.Replace != nil {
				d = d.Replace
			}
			if d.Version != "" {
				b.NATSServer = d.Version
			}
		}
	}
	if b.Version == "" {
		b.Version = "dev"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	return b
}

// vcsCommit is the revision go build recorded from git, marked +dirty when
// the work tree had uncommitted changes.
func vcsCommit(settings []debug.BuildSetting) string {
	var rev string
	var dirty bool
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" && dirty {
		rev += "+dirty"
	}
	return rev
}

// versionString is the short version that help, logs and /v1/status show.
func versionString() string { return readBuildInfo().Version }

// String is the output of `version`: one "key: value" line each, so that a
// script can pick a field with grep or awk.
func (b buildInfo) String() string {
	var s strings.Builder
	fmt.Fprintf(&s, "cellos-allinone %s\n", b.Version)
	fmt.Fprintf(&s, "commit:      %s\n", b.Commit)
	fmt.Fprintf(&s, "go:          %s\n", b.Go)
	fmt.Fprintf(&s, "nats-server: %s\n", b.NATSServer)
	return s.String()
}

func versionCmd(_ context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("version", "Prints the version, the commit it was built from, the Go toolchain and the nats-server it embeds.", "cellos-allinone version")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected arguments: %v", fs.Args())}
	}
	fmt.Fprint(stdout, readBuildInfo())
	return nil
}
