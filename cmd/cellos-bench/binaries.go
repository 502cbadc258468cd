package main

import (
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// binary is one cellos-allinone executable under measurement.
type binary struct {
	Label  string `json:"label"`  // "now" or "before"
	Path   string `json:"path"`   //
	Source string `json:"source"` // where it came from, for the report
	// Read from the executable's build information.
	Go         string `json:"go"`
	NATSServer string `json:"natsServer"`
}

// describe fills what the executable says about its build.
func (b *binary) describe() {
	info, err := buildinfo.ReadFile(b.Path)
	if err != nil {
		return
	}
	b.Go = info.GoVersion
	for _, m := range info.Deps {
		if m.Path == "github.com/nats-io/nats-server/v2" {
			b.NATSServer = m.Version
		}
	}
}

// moduleRoot is the nearest directory at or above the working directory
// that holds a go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod at or above the working directory: run cellos-bench from the repository")
		}
		dir = parent
	}
}

func command(ctx context.Context, dir string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// revision names the checkout's commit, with "-dirty" when the work tree
// has changes outside docs/ (where this command writes its report).
func revision(ctx context.Context, root string) string {
	rev, err := command(ctx, root, "git", "rev-parse", "--short", "HEAD")
	if err != nil {
		return "unknown revision"
	}
	if st, err := command(ctx, root, "git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs"); err == nil && st != "" {
		rev += "-dirty"
	}
	return rev
}

// buildCheckout builds ./cmd/cellos-allinone of the checkout at root.
func buildCheckout(ctx context.Context, root, out string) (binary, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if _, err := command(ctx, root, "go", "build", "-o", out, "./cmd/cellos-allinone"); err != nil {
		return binary{}, err
	}
	return binary{Path: out, Source: "built from the checkout at " + revision(ctx, root)}, nil
}

// buildRef builds ./cmd/cellos-allinone as it was at the git ref, from a
// `git archive` of that commit in dir.
func buildRef(ctx context.Context, root, ref, dir, out string) (binary, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	rev, err := command(ctx, root, "git", "rev-parse", "--short", ref+"^{commit}")
	if err != nil {
		return binary{}, fmt.Errorf("--before-ref %q: %w", ref, err)
	}
	src := filepath.Join(dir, "src-"+rev)
	if err := os.MkdirAll(src, 0o755); err != nil {
		return binary{}, err
	}
	tarball := filepath.Join(dir, "src-"+rev+".tar")
	if _, err := command(ctx, root, "git", "archive", "--format=tar", "-o", tarball, rev); err != nil {
		return binary{}, err
	}
	if _, err := command(ctx, src, "tar", "-xf", tarball); err != nil {
		return binary{}, err
	}
	if _, err := command(ctx, src, "go", "build", "-buildvcs=false", "-o", out, "./cmd/cellos-allinone"); err != nil {
		return binary{}, err
	}
	source := fmt.Sprintf("built from %s (%s)", ref, rev)
	if strings.HasPrefix(rev, ref) || strings.HasPrefix(ref, rev) {
		source = "built from " + rev
	}
	return binary{Path: out, Source: source}, nil
}

// givenBinary is an executable named on the command line.
func givenBinary(path string) (binary, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return binary{}, err
	}
	if fi, err := os.Stat(abs); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return binary{}, fmt.Errorf("%s is not an executable file", path)
	}
	return binary{Path: abs, Source: "given: " + path}, nil
}
