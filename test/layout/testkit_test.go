package layout

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The test kits (testutil, apptest) are imported only from _test.go files
// and from each other: no product code depends on them.
func TestTestKitsOnlyInTests(t *testing.T) {
	kits := map[string]bool{"testutil": true, "apptest": true}
	root, files := moduleGoFiles(t)
	for _, rel := range files {
		if strings.HasSuffix(rel, "_test.go") || kits[strings.Split(filepath.ToSlash(rel), "/")[0]] {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, rel), nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if kit, ok := strings.CutPrefix(p, "cellos-allinone/"); ok && kits[kit] {
				t.Errorf("%s imports %s: the test kits are for _test.go files only", rel, p)
			}
		}
	}
}
