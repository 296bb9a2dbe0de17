package swha

import (
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestFileLayering: the root package's files form layers, each using the
// declarations (functions, methods, types, variables, constants; not struct
// fields) of the files below it and never of a file above. A cycle between
// files is where a god object starts growing back.
func TestFileLayering(t *testing.T) {
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	files := map[string]*ast.File{}
	var list []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = f
		list = append(list, f)
	}
	// Imported packages need not resolve: only this package's own
	// declarations matter, and those the checker resolves regardless.
	info := &types.Info{Uses: map[*ast.Ident]types.Object{}}
	conf := types.Config{Importer: importer.Default(), Error: func(error) {}}
	pkg, _ := conf.Check("swha", fset, list, info)
	uses := map[string]map[string]bool{}
	for name := range files {
		uses[name] = map[string]bool{}
	}
	for id, obj := range info.Uses {
		if obj.Pkg() != pkg || !obj.Pos().IsValid() {
			continue
		}
		if v, ok := obj.(*types.Var); ok && (v.IsField() || v.Parent() != pkg.Scope()) {
			continue // fields and locals
		}
		if _, ok := obj.(*types.Func); !ok && obj.Parent() != pkg.Scope() {
			continue // local types and constants
		}
		from, to := fset.Position(id.Pos()).Filename, fset.Position(obj.Pos()).Filename
		if from != to {
			uses[from][to] = true
		}
	}
	// A cycle is a path from a file back to itself.
	var path []string
	var visit func(string)
	state := map[string]int{} // 1: on the path, 2: done
	visit = func(f string) {
		state[f] = 1
		path = append(path, f)
		deps := make([]string, 0, len(uses[f]))
		for d := range uses[f] {
			deps = append(deps, d)
		}
		slices.Sort(deps)
		for _, d := range deps {
			if state[d] == 1 {
				i := slices.Index(path, d)
				t.Errorf("files use each other in a cycle: %s → %s", strings.Join(path[i:], " → "), d)
			}
			if state[d] == 0 {
				visit(d)
			}
		}
		path = path[:len(path)-1]
		state[f] = 2
	}
	keys := make([]string, 0, len(files))
	for k := range files {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if state[k] == 0 {
			path = path[:0]
			visit(k)
		}
	}
}
