package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"cellos-allinone/test/lazyfs"
)

// swapChildEnv runs this test binary as a child that compacts the state
// file named in it and stops at a point: "<path> <point>".
const swapChildEnv = "CELLOS_STORE_SWAP_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(swapChildEnv); spec != "" {
		var path, point string
		if _, err := fmt.Sscan(spec, &path, &point); err != nil {
			fmt.Fprintf(os.Stderr, "bad %s %q: %v\n", swapChildEnv, spec, err)
			os.Exit(2)
		}
		if err := swapChild(path, point); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// The points of a compaction a crash is tried at, in order: the copy
// written but neither closed nor its directory synced; Compact returned
// (the copy complete and durable); the rename done; the directory synced;
// SwapIn returned (the old file closed).
var swapPoints = []string{"copying", "copied", "renamed", "synced", "swapped"}

// swapChild compacts the state file at path and swaps the copy in; at
// point it says "at <point>" and waits to be killed.
func swapChild(path, point string) error {
	stop := func(at string) {
		if at == point {
			fmt.Println("at " + at)
			time.Sleep(time.Minute) // killed long before
			os.Exit(3)
		}
	}
	compactHook = func() { stop("copying") }
	swapHook = stop
	s, aside, err := Open(path)
	if err != nil || aside != "" {
		return fmt.Errorf("open %s: %v (aside %q)", path, err, aside)
	}
	c, err := s.Compact()
	if err != nil {
		return err
	}
	stop("copied")
	var mu sync.Mutex
	if err := s.SwapIn(c, &mu); err != nil {
		return err
	}
	stop("swapped")
	return fmt.Errorf("no point %q", point)
}

// freePages leaves n bytes more of free pages in s's file: a bucket of
// that much is written and deleted. The state it serves stays the same.
func freePages(t *testing.T, s *Store, n int) {
	t.Helper()
	junk := []byte("junk")
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(junk)
		if err != nil {
			return err
		}
		v := bytes.Repeat([]byte{'j'}, 4000) // a page each
		for i := range n / 4096 {
			if err := b.Put(fmt.Appendf(nil, "%08d", i), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = s.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(junk) })
	}
	if err != nil {
		t.Fatal(err)
	}
}

// killSwapChild runs the child on path until it reports point, then
// kills it (SIGKILL).
func killSwapChild(t *testing.T, path, point string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), swapChildEnv+"="+path+" "+point)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- l
	}()
	select {
	case l := <-line:
		if l != "at "+point+"\n" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("compacting child said %q, want at %s\n%s", l, point, stderr.Bytes())
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("compacting child did not reach %s in time\n%s", point, stderr.Bytes())
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// A crash followed by a power cut at any point of a compaction and its
// swap leaves one complete state file holding the commit it held: the old
// file until the copy's rename is durable, the compacted one from then on,
// never neither and never a torn one. The compaction runs in a child
// process on lazyfs (a FUSE file system that forgets what was not
// fsynced), which is killed at the point; the power is then cut, dropping
// every unsynced change whole or keeping a torn part of it.
func TestCompactionSurvivesACrashAtAnyPoint(t *testing.T) {
	for i, point := range swapPoints {
		for _, mode := range []lazyfs.Mode{lazyfs.Whole, lazyfs.Torn} {
			t.Run(point+"/"+mode.String(), func(t *testing.T) {
				backing := t.TempDir()
				path := filepath.Join(backing, "cp.db")
				s, want := bloatedAt(t, path, 3_000, 300)
				freePages(t, s, 16<<20)
				before, err := s.FileStats()
				if err != nil {
					t.Fatal(err)
				}
				cp, _, err := s.Info()
				if err != nil {
					t.Fatal(err)
				}
				s.Close()

				m := lazyfs.Mount(t, backing)
				killSwapChild(t, filepath.Join(m.Dir(), "cp.db"), point)
				rep, err := m.Cut(mode, rand.New(rand.NewPCG(uint64(i), uint64(mode))))
				if err != nil {
					t.Fatal(err)
				}
				t.Log(rep)

				s2 := mustOpen(t, path) // fails on a file moved aside
				got, _, err := s2.Info()
				if err != nil || got.Epoch != cp.Epoch || got.Meta.Cursor != cp.Meta.Cursor || !got.At.Equal(cp.At) {
					t.Fatalf("after a crash at %s: Info() = %+v, %v; want %+v", point, got, err, cp)
				}
				if dumpOf(t, s2) != want {
					t.Fatalf("after a crash at %s the state file serves another state", point)
				}
				after, err := s2.FileStats()
				if err != nil {
					t.Fatal(err)
				}
				compacted := after.FileBytes < before.FileBytes/2
				switch point {
				case "copying", "copied":
					if compacted {
						t.Fatalf("a crash at %s left the compacted file (%+v) at the state file's name, before its rename", point, after)
					}
				case "synced", "swapped":
					if !compacted || after.FreeBytes > after.LiveBytes {
						t.Fatalf("a crash at %s left %+v, want the compacted file (the old one: %+v)", point, after, before)
					}
				}
				t.Logf("after a crash at %s: %d bytes (before %d), compacted %v", point, after.FileBytes, before.FileBytes, compacted)
				if err := RemoveLeftovers(path); err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(path + CompactSuffix); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("a leftover copy after RemoveLeftovers: %v", err)
				}
				// The file takes commits as any other.
				if err := s2.View(func(v *View) error {
					if d := v.Check(5); len(d) > 0 {
						return fmt.Errorf("Check() = %q", d)
					}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}
