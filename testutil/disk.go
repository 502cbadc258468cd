package testutil

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// SmallDisk mounts a tmpfs of size (mount's notation: "8m") on dir, or on
// a fresh directory when dir is "", and returns where; it is unmounted
// when the test ends. A test run should not mount file systems on its
// host unasked: the test is skipped unless the environment has
// CELLOS_FULLDISK=1 or CI=true. Mounting needs root: without it the test
// is skipped too, unless CI=true, where it fails instead.
func SmallDisk(tb testing.TB, dir, size string) string {
	tb.Helper()
	if os.Getenv("CELLOS_FULLDISK") != "1" && os.Getenv("CI") != "true" {
		tb.Skip("mounts a tmpfs on this host (as root): run with CELLOS_FULLDISK=1 (CI=true runs it too)")
	}
	if dir == "" {
		dir = tb.TempDir()
	}
	mount(tb, "mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir)
	return dir
}

// BindMount mounts the directory from on to (both exist) until the test
// ends: part of a tree on a SmallDisk can live on the ordinary disk.
func BindMount(tb testing.TB, from, to string) {
	tb.Helper()
	mount(tb, "mount", "--bind", from, to)
}

func mount(tb testing.TB, args ...string) {
	tb.Helper()
	target := args[len(args)-1]
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%v: %v %s (CI=true, so this fails instead of skipping)", args, err, out)
		}
		tb.Skipf("cannot mount (needs root): %v %s", err, out)
	}
	tb.Cleanup(func() {
		if out, err := exec.Command("umount", target).CombinedOutput(); err != nil {
			tb.Errorf("umount %s: %v %s", target, err, out)
		}
	})
}

// FillDisk writes a file into dir until its file system is full and
// returns the function that removes it again.
func FillDisk(tb testing.TB, dir string) (free func()) {
	tb.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for len(chunk) > 0 {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				f.Close()
				tb.Fatalf("fill %s: %v", dir, err)
			}
			chunk = chunk[:len(chunk)/2] // the last bytes, smaller
		}
	}
	if err := f.Close(); err != nil && !errors.Is(err, syscall.ENOSPC) {
		tb.Fatal(err)
	}
	return func() {
		tb.Helper()
		if err := os.Remove(path); err != nil {
			tb.Fatal(err)
		}
	}
}
