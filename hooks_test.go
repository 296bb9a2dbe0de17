package swha

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/swha/swha/internal/replhooks"
)

// TestHooksThroughSeam: the driver reaches the store's replication hooks
// only through replhooks.Store (Node.repl), never as methods of the
// *objstore.Store it also holds for the application's API, so the seam
// lists every hook the Node uses.
func TestHooksThroughSeam(t *testing.T) {
	hooks := map[string]bool{}
	it := reflect.TypeFor[replhooks.Store]()
	for i := range it.NumMethod() {
		hooks[it.Method(i).Name] = true
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		ast.Inspect(f, func(x ast.Node) bool {
			sel, ok := x.(*ast.SelectorExpr)
			if !ok || !hooks[sel.Sel.Name] {
				return true
			}
			if inner, ok := sel.X.(*ast.SelectorExpr); ok && inner.Sel.Name == "store" {
				t.Errorf("%s: %s called on the store directly; use Node.repl (internal/replhooks)", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
	if checked == 0 {
		t.Fatal("no file of the root package checked")
	}
}
