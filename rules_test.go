package kaiwa_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// rootPath is the module's import path, the package of the core.
const rootPath = "github.com/kaiwa-chat/kaiwa"

// outsideTheCore lists, exactly, the places outside the core layer (the
// root package's core*.go files) allowed to publish a live change or
// record an event: the UA's sessions recording their own events. Each is
// "package-relative-path.function" (methods as "(*T).m"). An entry that no
// longer matches anything fails the test too, so that the list stays
// exact.
var outsideTheCore = map[string]string{
	"ua.(*session).start":  "records connect",
	"ua.(*session).run":    "records disconnect",
	"ua.(*session).join":   "records join",
	"ua.(*session).leave":  "records leave",
	"ua.(*session).filter": "records ng_blocked and ng_masked",
}

// TestOnlyTheCoreChangesState checks, on the module's type-checked source
// (test files left out), that nothing outside the core layer publishes a
// live change or records an event: no call of a PublishControl method
// taking a [kaiwa.Control], of a Record method taking a [kaiwa.Event], or
// of the core's own record and settle, except the places in
// [outsideTheCore]. An implementation of either method may pass the call
// on to another (the kaiwa command's bus connects on first use): it
// forwards what the core asked for.
func TestOnlyTheCoreChangesState(t *testing.T) {
	t.Parallel()
	pkgs := listModule(t)
	fset := token.NewFileSet()
	exports := map[string]string{}
	for _, p := range pkgs {
		exports[p.ImportPath] = p.Export
	}
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		f, ok := exports[path]
		if !ok || f == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	})

	used := map[string]bool{}
	var found []string
	checked := 0
	for _, p := range pkgs {
		if p.Standard || (p.ImportPath != rootPath && !strings.HasPrefix(p.ImportPath, rootPath+"/")) {
			continue
		}
		checked++
		var files []*ast.File
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		info := &types.Info{Selections: map[*ast.SelectorExpr]*types.Selection{}, Uses: map[*ast.Ident]types.Object{}}
		conf := types.Config{Importer: imp}
		if _, err := conf.Check(p.ImportPath, fset, files, info); err != nil {
			t.Fatalf("type-check %s: %v", p.ImportPath, err)
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, rootPath), "/")
		for i, f := range files {
			inCore := p.ImportPath == rootPath && strings.HasPrefix(p.GoFiles[i], "core")
			for _, decl := range f.Decls {
				fn, ok := decl.(*ast.FuncDecl)
				if !ok {
					continue
				}
				place := rel + "." + funcName(fn)
				forwards := fn.Recv != nil && (fn.Name.Name == "PublishControl" || fn.Name.Name == "Record")
				ast.Inspect(fn, func(n ast.Node) bool {
					sel, ok := n.(*ast.SelectorExpr)
					if !ok {
						return true
					}
					what := changesState(info, sel)
					if what == "" || inCore || forwards && what == fn.Name.Name {
						return true
					}
					if _, ok := outsideTheCore[place]; ok && what == "Record" {
						used[place] = true
						return true
					}
					found = append(found, fmt.Sprintf("%s: %s calls %s", fset.Position(sel.Pos()), place, what))
					return true
				})
			}
		}
	}
	if checked < 10 {
		t.Fatalf("only %d packages of the module checked", checked)
	}
	for _, f := range found {
		t.Errorf("%s outside the core layer: move the change into a kaiwa.Core method", f)
	}
	for place := range outsideTheCore {
		if !used[place] {
			t.Errorf("allow-list entry %s matches nothing: remove it", place)
		}
	}
}

// changesState names what sel selects when it publishes a live change or
// records an event: a PublishControl method taking a [kaiwa.Control], a
// Record method taking a [kaiwa.Event], or the core's record or settle.
// Otherwise it returns "".
func changesState(info *types.Info, sel *ast.SelectorExpr) string {
	s, ok := info.Selections[sel]
	if !ok {
		return ""
	}
	fn, ok := s.Obj().(*types.Func)
	if !ok {
		return ""
	}
	sig := fn.Type().(*types.Signature)
	takes := func(name string) bool {
		for v := range sig.Params().Variables() {
			if n, ok := v.Type().(*types.Named); ok && n.Obj().Name() == name && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == rootPath {
				return true
			}
		}
		return false
	}
	switch {
	case fn.Name() == "PublishControl" && takes("Control"):
		return "PublishControl"
	case fn.Name() == "Record" && takes("Event"):
		return "Record"
	case fn.Pkg() != nil && fn.Pkg().Path() == rootPath && slices.Contains([]string{"record", "settle"}, fn.Name()):
		return fn.Name()
	}
	return ""
}

// funcName returns a declared function's name, "(*T).m" or "T.m" for a
// method.
func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	typ := fn.Recv.List[0].Type
	if idx, ok := typ.(*ast.IndexExpr); ok { // generic receiver
		typ = idx.X
	}
	if star, ok := typ.(*ast.StarExpr); ok {
		if id, ok := star.X.(*ast.Ident); ok {
			return "(*" + id.Name + ")." + fn.Name.Name
		}
	}
	if id, ok := typ.(*ast.Ident); ok {
		return id.Name + "." + fn.Name.Name
	}
	return fn.Name.Name
}

// listedPackage is what go list says of a package.
type listedPackage struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Export     string
	Standard   bool
}

// listModule lists the module's packages and their dependencies, with
// export data to type-check against.
func listModule(t *testing.T) []listedPackage {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the module's packages: %v", err)
	}
	cmd := exec.CommandContext(t.Context(), goCmd, "list", "-e", "-export", "-deps",
		"-json=ImportPath,Dir,GoFiles,Export,Standard,Error", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			listedPackage
			Error *struct{ Err string }
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.Error != nil {
			t.Fatalf("go list %s: %s", p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, p.listedPackage)
	}
	return pkgs
}
