package wire

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

type recordKind struct {
	name  string // Go name without "rec": Schema, Group, …
	value int64
}

// recordKinds reads the objstore record kinds from objstore/record.go,
// which declares them as unexported constants rec<Name> = <integer>. The
// package exports none; reading the source keeps this check from going
// stale without widening objstore's API.
func recordKinds(t testing.TB) []recordKind {
	t.Helper()
	const path = "../../objstore/record.go"
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var out []recordKind
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, id := range vs.Names {
				name, ok := strings.CutPrefix(id.Name, "rec")
				if !ok || name == "" || name[0] < 'A' || name[0] > 'Z' {
					continue
				}
				var lit *ast.BasicLit
				if i < len(vs.Values) {
					lit, _ = vs.Values[i].(*ast.BasicLit)
				}
				if lit == nil || lit.Kind != token.INT {
					t.Fatalf("%s: %s is not an integer literal; update recordKinds", path, id.Name)
				}
				v, err := strconv.ParseInt(lit.Value, 0, 64)
				if err != nil {
					t.Fatalf("%s: %s: %v", path, id.Name, err)
				}
				out = append(out, recordKind{name, v})
			}
		}
	}
	if len(out) < 12 {
		t.Fatalf("%s: found %d record kinds (%v), want at least the 12 of today; did they move?", path, len(out), out)
	}
	return out
}

// TestRecordKindsBelowNodeKinds: a session message's first byte tells an
// objstore record from a node message only while every record kind is
// below 0x80.
func TestRecordKindsBelowNodeKinds(t *testing.T) {
	for _, k := range recordKinds(t) {
		if k.value < 1 || k.value >= 0x80 {
			t.Errorf("objstore record kind %s = %#x: record kinds must stay in 1..0x7f, node messages start at 0x80", k.name, k.value)
		}
	}
}

// TestWireDoc: docs/WIRE.md has a table row for every node message kind
// (value, name, direction and meaning, as in Kinds) and every objstore
// record kind (value and name).
func TestWireDoc(t *testing.T) {
	b, err := os.ReadFile("../../docs/WIRE.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, k := range Kinds {
		if row := fmt.Sprintf("| %#x | %s | %s | %s |", byte(k.Kind), k.Name, k.Dir, k.Doc); !strings.Contains(doc, row) {
			t.Errorf("docs/WIRE.md lacks the row of node message %q", row)
		}
	}
	for _, k := range recordKinds(t) {
		if row := fmt.Sprintf("| %d | %s |", k.value, k.name); !strings.Contains(doc, row) {
			t.Errorf("docs/WIRE.md lacks the row of objstore record %q", row)
		}
	}
	if !strings.Contains(doc, "0x84–0x8f") {
		t.Error("docs/WIRE.md does not document 0x84–0x8f as reserved")
	}
}
