package realbinary_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// longEnv must be "1" for these tests to run.
const longEnv = "CELLOS_LONG"

var (
	buildOnce sync.Once
	binDir    string // removed by TestMain
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// requireLong skips the test unless CELLOS_LONG=1.
func requireLong(t *testing.T) {
	t.Helper()
	if os.Getenv(longEnv) != "1" {
		t.Skipf("long test over the real binary, skipped by default; run it with: %s=1 go test -race -count=1 -v ./test/realbinary/", longEnv)
	}
}

// binary builds cmd/cellos-allinone once per test run and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		start := time.Now()
		binPath, buildErr = build()
		if buildErr == nil {
			t.Logf("built %s in %s", binPath, time.Since(start).Round(time.Millisecond))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func build() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	if binDir, err = os.MkdirTemp("", "cellos-crashloop-bin-"); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out := filepath.Join(binDir, "cellos-allinone")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/cellos-allinone")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/cellos-allinone in %s: %v\n%s", root, err, b)
	}
	return out, nil
}

// moduleRoot is the nearest directory above the working directory that
// holds a go.mod.
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
			return "", errors.New("no go.mod above the test's working directory")
		}
		dir = parent
	}
}
