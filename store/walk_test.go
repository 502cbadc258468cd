package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cellos-allinone/projection"
)

// renameInFile copies the state file at path to a new one in which the
// record key has become to (of the same length), its value sealed again
// under to: a record that reads as believable on its own but sits out of
// key order, where bbolt's search for it, and for the keys after it, is
// no longer sound.
func renameInFile(t *testing.T, path string, bucket []byte, key, to string) string {
	t.Helper()
	if len(key) != len(to) {
		t.Fatalf("%q and %q differ in length", key, to)
	}
	val := stored(t, path, bucket, []byte(key))
	inner, ok := unseal([]byte(key), val)
	if !ok {
		t.Fatalf("record %q is not sealed", key)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	old := append([]byte(key), val...)
	repl := append([]byte(to), sealed([]byte(to), inner)...)
	if !bytes.Contains(data, old) {
		t.Fatalf("record %q not found in the file", key)
	}
	out := filepath.Join(t.TempDir(), "renamed.db")
	if err := os.WriteFile(out, bytes.ReplaceAll(data, old, repl), 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// The whole-state reads (Dump, Entities, Registry) walk as the state hash
// does: a record whose key was changed, and sealed again, to one past its
// neighbours is damage — not the record read through its new key and the
// neighbours after it, which bbolt's search no longer finds, skipped.
func TestWholeStateReadOfKeysOutOfOrderIsDamage(t *testing.T) {
	path := sealedState(t, 600)
	// f-00003-c04 becomes f-00003-z04: above c05, c06… of its leaf.
	damaged := renameInFile(t, path, bucketCells, "f-00003-c04", "f-00003-z04")
	for name, read := range map[string]func(v *View){
		"Dump":     func(v *View) { v.Dump() },
		"Entities": func(v *View) { v.Entities() },
		"Registry": func(v *View) { v.Registry() },
		"Hash":     func(v *View) { _, _ = projection.Hash(v) },
	} {
		mustBeDamaged(t, damaged, name, read)
	}
}

// A point read that finds nothing and a scan that starts at the same
// place check the key before it with one check, and say the same: a key
// before whose seal does not hold is damage to both.
func TestAbsentAndScanCheckTheKeyBeforeAlike(t *testing.T) {
	path := sealedState(t, 600)
	key := []byte("f-00003-c04")
	val := stored(t, path, bucketCells, key)
	s := mustOpen(t, flipInFile(t, path, key, val, len(key)+len(val)-1, 0x01)) // its seal
	defer s.Close()
	const at = "f-00003-c04a" // no such cell: between c04 and c05
	want := `key "f-00003-c04": damaged state file: checksum mismatch (the key before "f-00003-c04a")`
	errs := map[string]error{
		"Cell": s.View(func(v *View) error { v.Cell(at); return nil }),
		"Cells": s.View(func(v *View) error {
			v.Cells(projection.CellFilter{}, projection.Page{After: at, Limit: 5})
			return nil
		}),
	}
	for name, err := range errs {
		if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s after a key whose seal does not hold = %v, want ErrDamaged: %s", name, err, want)
		}
	}
}
