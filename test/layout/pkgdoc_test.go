// Package layout checks the repository's conventions.
package layout

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every package has exactly one package doc comment, so `go doc` tells what
// it is for and no two files disagree.
func TestEveryPackageHasOneDoc(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found from %s", root)
	}
	dirs := map[string]bool{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") && path != root {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") {
			dirs[filepath.Dir(path)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for dir := range dirs {
		// Docs per package name: a directory holds one package besides its
		// external tests, which are left out.
		docs := map[string]int{}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		fset := token.NewFileSet()
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.ParseComments|parser.PackageClauseOnly)
			if err != nil {
				t.Fatalf("parse %s: %v", e.Name(), err)
			}
			if _, seen := docs[f.Name.Name]; !seen {
				docs[f.Name.Name] = 0
			}
			if f.Doc != nil {
				docs[f.Name.Name]++
			}
		}
		for name, n := range docs {
			rel, _ := filepath.Rel(root, dir)
			if n != 1 {
				t.Errorf("package %s (%s) has %d package doc comments, want exactly 1", name, rel, n)
			}
		}
	}
}
