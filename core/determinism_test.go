// Package core_test holds the lint that keeps core/ deterministic
// (shared/DESIGN.md section 3): every decision in core/ must depend only on
// its inputs, so that the simulator can replay any run bit for bit.
package core_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// forbiddenImports may not appear in core/ at all.
var forbiddenImports = map[string]string{
	"os":          "IO belongs to the drivers",
	"net":         "IO belongs to the drivers",
	"net/http":    "IO belongs to the drivers",
	"syscall":     "IO belongs to the drivers",
	"sync":        "the core is single-threaded",
	"sync/atomic": "the core is single-threaded",
	"crypto/rand": "randomness comes from the seeded source the driver hands in",
	"math/rand":   "randomness comes from the seeded source the driver hands in",
	"unsafe":      "pointer tricks can leak addresses into outputs",
}

// forbiddenCalls are package-level functions whose result depends on the
// machine or the moment. math/rand/v2 may be imported for rand.New and its
// sources; its global functions are banned.
var forbiddenCalls = map[string]map[string]bool{
	"time": {"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true, "AfterFunc": true,
		"Tick": true, "NewTimer": true, "NewTicker": true},
	"math/rand/v2": {"Int": true, "IntN": true, "Int32": true, "Int32N": true, "Int64": true, "Int64N": true,
		"Uint32": true, "Uint64": true, "Uint32N": true, "Uint64N": true, "UintN": true, "Float32": true,
		"Float64": true, "Perm": true, "Shuffle": true, "N": true, "NormFloat64": true, "ExpFloat64": true},
}

func TestCoreIsDeterministic(t *testing.T) {
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		checked++
		for _, v := range violations(fset, f) {
			t.Errorf("core/%s", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 10 {
		t.Fatalf("only %d files checked: the walk is not finding core's sources", checked)
	}
}

func violations(fset *token.FileSet, f *ast.File) []string {
	var out []string
	report := func(n ast.Node, format string, args ...any) {
		out = append(out, fset.Position(n.Pos()).String()+": "+fmt.Sprintf(format, args...))
	}
	// Local names of imported packages, to resolve calls like time.Now.
	names := map[string]string{}
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		if why, bad := forbiddenImports[path]; bad {
			report(imp, "imports %q: %s", path, why)
		}
		name := path[strings.LastIndexByte(path, '/')+1:]
		if path == "math/rand/v2" {
			name = "rand"
		}
		if imp.Name != nil {
			name = imp.Name.Name
		}
		names[name] = path
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			report(n, "go statement: the core never starts goroutines")
		case *ast.SelectStmt:
			report(n, "select: the core has no channels")
		case *ast.ChanType:
			report(n, "channel type: the core has no channels")
		case *ast.SendStmt:
			report(n, "channel send: the core has no channels")
		case *ast.SelectorExpr:
			if id, ok := n.X.(*ast.Ident); ok {
				if fns := forbiddenCalls[names[id.Name]]; fns[n.Sel.Name] {
					report(n, "%s.%s: time and randomness come from the driver", names[id.Name], n.Sel.Name)
				}
			}
		}
		return true
	})
	return out
}

// TestLintCatchesViolations keeps the lint honest: each banned construct
// in a sample file must be reported.
func TestLintCatchesViolations(t *testing.T) {
	const src = `package x
import (
	"os"
	"sync"
	"time"
	mr "math/rand/v2"
)
func f() {
	_ = os.Args
	var mu sync.Mutex
	_ = mu
	_ = time.Now()
	_ = mr.IntN(3)
	c := make(chan int)
	go func() { c <- 1 }()
	select {}
}`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(violations(fset, f), "\n")
	for _, want := range []string{`imports "os"`, `imports "sync"`, "time.Now", "math/rand/v2.IntN", "channel type", "go statement", "channel send", "select"} {
		if !strings.Contains(got, want) {
			t.Errorf("lint missed %q; it reported:\n%s", want, got)
		}
	}
}
