// Package layout checks the repository's conventions.
package layout

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every package has exactly one package doc comment, so `go doc` tells what
// it is for and no two files disagree.
func TestEveryPackageHasOneDoc(t *testing.T) {
	root, files := moduleGoFiles(t)
	dirs := map[string]bool{}
	for _, f := range files {
		dirs[filepath.Join(root, filepath.Dir(f))] = true
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
