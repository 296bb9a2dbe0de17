// Package puretest checks that a core package stays pure: no goroutine,
// lock, socket, file or wall clock of its own. What makes the cores
// testable deterministically is that their drivers own all of those.
package puretest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
)

// Impurities parses the non-test Go files of dir that keep accepts (all
// when nil) and lists every go
// statement, every import of a package that does I/O or locking, and every
// use of a time function that reads or waits on the wall clock.
func Impurities(dir string, keep func(file string) bool) ([]string, error) {
	var found []string
	banned := map[string]bool{"sync": true, "sync/atomic": true, "os": true, "net": true, "syscall": true,
		"golang.org/x/sys/unix": true, "io/fs": true, "log/slog": true}
	clock := map[string]bool{"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true,
		"AfterFunc": true, "NewTimer": true, "NewTicker": true, "Tick": true}
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || (keep != nil && !keep(filepath.Base(name))) {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			return nil, err
		}
		checked++
		timeName := ""
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if banned[path] {
				found = append(found, fmt.Sprintf("%s imports %q", fset.Position(imp.Pos()), path))
			}
			if path == "time" {
				timeName = "time"
				if imp.Name != nil {
					timeName = imp.Name.Name
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GoStmt:
				found = append(found, fmt.Sprintf("%s: go statement", fset.Position(n.Pos())))
			case *ast.SelectorExpr:
				if id, ok := n.X.(*ast.Ident); ok && timeName != "" && id.Name == timeName && clock[n.Sel.Name] {
					found = append(found, fmt.Sprintf("%s: time.%s reads or waits on the wall clock", fset.Position(n.Pos()), n.Sel.Name))
				}
			}
			return true
		})
	}
	if checked == 0 {
		return nil, fmt.Errorf("no Go files to check in %s", dir)
	}
	return found, nil
}
