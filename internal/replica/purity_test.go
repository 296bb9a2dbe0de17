package replica

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPure fails if the cores grow a goroutine, a lock, a socket, a file or
// a clock of their own: what makes them testable deterministically is that
// the driver owns all of those.
func TestPure(t *testing.T) {
	for _, p := range impurities(t, ".") {
		t.Error(p)
	}
}

// TestPureCatches: the check is not vacuous.
func TestPureCatches(t *testing.T) {
	dir := t.TempDir()
	bad := "package bad\n\nimport (\n\t\"sync\"\n\tclock \"time\"\n)\n\nvar mu sync.Mutex\n\nfunc f() { go f(); _ = clock.Now() }\n"
	if err := os.WriteFile(filepath.Join(dir, "bad.go"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := impurities(t, dir); len(got) != 3 {
		t.Fatalf("found %d impurities in a file with 3: %q", len(got), got)
	}
}

// impurities parses the non-test Go files of dir and lists every go
// statement, every import of a package that does I/O or locking, and every
// use of a time function that reads or waits on the wall clock.
func impurities(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	banned := map[string]bool{"sync": true, "sync/atomic": true, "os": true, "net": true, "syscall": true,
		"golang.org/x/sys/unix": true, "io/fs": true, "log/slog": true}
	clock := map[string]bool{"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true,
		"AfterFunc": true, "NewTimer": true, "NewTicker": true, "Tick": true}
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
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
		t.Fatalf("no Go files in %s", dir)
	}
	return found
}
