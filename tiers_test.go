package switchboard_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// tiers is DESIGN.md §2: a package may import only project packages of a
// strictly lower tier. Every project package must be listed, so that a new
// package is placed deliberately. A pattern ending in "/..." matches the
// package and everything below it.
var tiers = map[string]int{
	"switchboard/xmpp/config":  0,
	"switchboard/xmpp/metrics": 0,
	"switchboard/xmpp/wire":    0, // the XML layer
	"switchboard/xmpp/listen":  0, // the listeners' accept loop

	"switchboard/xmpp":  1, // the kernel
	"switchboard/store": 1,

	"switchboard/xmpp/router":       2,
	"switchboard/xmpp/auth":         2,
	"switchboard/roster":            2,
	"switchboard/presence":          2,
	"switchboard/xmpp/mam":          2,
	"switchboard/xmpp/carbons":      2,
	"switchboard/xmpp/disco":        2,
	"switchboard/xmpp/offline":      2,
	"switchboard/xmpp/ping":         2,
	"switchboard/xmpp/session":      2,
	"switchboard/xmpp/version":      2,
	"switchboard/xmpp/entitytime":   2,
	"switchboard/xmpp/register":     2,
	"switchboard/xmpp/blocking":     2,
	"switchboard/xmpp/lastactivity": 2,
	"switchboard/xmpp/pep":          2,
	"switchboard/xmpp/vcard":        2,
	"switchboard/xmpp/private":      2,
	"switchboard/xmpp/push":         2,
	"switchboard/xmpp/directory":    2,
	"switchboard/xmpp/adhoc":        2,
	"switchboard/xmpp/xmpptest":     2,

	"switchboard/muc":         3,
	"switchboard/xmpp/c2s":    3,
	"switchboard/xmpp/s2s":    3,
	"switchboard/xmpp/upload": 3,
	// External components (XEP-0114), a listener like s2s.
	"switchboard/xmpp/component": 3,

	"switchboard/xmpp/ws":      4,
	"switchboard/xmpp/bosh":    4,
	"switchboard/xmpp/httpapi": 4,
	// XEP-0156 discovery of the web transports.
	"switchboard/xmpp/hostmeta": 4,

	"switchboard/xmpp/server":            5,
	"switchboard/xmpp/server/servertest": 5,

	"switchboard/cmd/...":      6,
	"switchboard/bench/report": 6,
}

// allowedImports are the exceptions DESIGN.md §2 names. muc → xmpp/mam
// is the one exception to "features never import each other" (the tiers
// allow it already; it is listed to record it). servertest is the
// real-socket harness of xmpp/server and is tiered with it, so it must
// import it.
var allowedImports = map[[2]string]bool{
	{"switchboard/muc", "switchboard/xmpp/mam"}:                       true,
	{"switchboard/xmpp/server/servertest", "switchboard/xmpp/server"}: true,
}

// tierOf returns the tier of the project package path.
func tierOf(path string) (int, bool) {
	if t, ok := tiers[path]; ok {
		return t, true
	}
	best, tier := "", 0
	for pattern, t := range tiers {
		prefix, ok := strings.CutSuffix(pattern, "/...")
		if !ok || (path != prefix && !strings.HasPrefix(path, prefix+"/")) {
			continue
		}
		if len(prefix) > len(best) {
			best, tier = prefix, t
		}
	}
	return tier, best != ""
}

// listedPackage is the part of `go list -json` the test reads.
type listedPackage struct {
	ImportPath     string
	Name           string
	Dir            string
	GoFiles        []string
	CgoFiles       []string
	IgnoredGoFiles []string
	Imports        []string // of GoFiles and CgoFiles: test files are exempt
	Module         *struct{ Path string }
	Error          *struct{ Err string }
}

func goList(t *testing.T, args ...string) []listedPackage {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", append([]string{"list", "-e", "-json"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list: decode: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// TestImportTiers enforces the import tiers of DESIGN.md §2 on every
// package of the module.
func TestImportTiers(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not in PATH")
	}
	pkgs := goList(t, "./...")
	if len(pkgs) == 0 {
		t.Fatal("go list ./... found no packages")
	}
	module := ""
	for _, p := range pkgs {
		if p.Module != nil {
			module = p.Module.Path
			break
		}
	}
	if module != "switchboard" {
		t.Fatalf("module path %q: the tier table names switchboard/... packages", module)
	}
	isProject := func(path string) bool { return path == module || strings.HasPrefix(path, module+"/") }

	for _, p := range pkgs {
		if p.Error != nil {
			t.Errorf("%s: %s", p.ImportPath, p.Error.Err)
			continue
		}
		if len(p.GoFiles)+len(p.CgoFiles)+len(p.IgnoredGoFiles) == 0 {
			continue // test files only (like this one): nothing can import it
		}
		tier, ok := tierOf(p.ImportPath)
		if !ok {
			t.Errorf("package %s has no tier: add it to the tier table in tiers_test.go and DESIGN.md §2 (T0 config/metrics/wire … T6 cmd)", p.ImportPath)
			continue
		}
		imports := p.Imports
		files, err := importingFiles(p)
		if err != nil {
			t.Errorf("%s: %v", p.ImportPath, err)
		}
		for imp := range files {
			if !slices.Contains(imports, imp) {
				imports = append(imports, imp) // in files for other platforms
			}
		}
		for _, imp := range imports {
			if !isProject(imp) || allowedImports[[2]string{p.ImportPath, imp}] {
				continue
			}
			where := ""
			if fs := files[imp]; len(fs) > 0 {
				where = " (in " + strings.Join(fs, ", ") + ")"
			}
			it, ok := tierOf(imp)
			switch {
			case !ok:
				t.Errorf("%s imports %s%s, which has no tier: add it to the tier table in tiers_test.go and DESIGN.md §2", p.ImportPath, imp, where)
			case it >= tier:
				t.Errorf("%s (T%d) imports %s (T%d)%s: a package may import only project packages of a strictly lower tier (DESIGN.md §2)",
					p.ImportPath, tier, imp, it, where)
			}
		}
	}
}

// importingFiles maps each import of p's non-test files to the files (by
// base name) that import it. It reads the files go list ignored for build
// constraints too, when they belong to the package, so that imports in
// files for other platforms are checked.
func importingFiles(p listedPackage) (map[string][]string, error) {
	files := map[string][]string{}
	fset := token.NewFileSet()
	var errs []error
	names := slices.Concat(p.GoFiles, p.CgoFiles, p.IgnoredGoFiles)
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.ImportsOnly)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if slices.Contains(p.IgnoredGoFiles, name) && f.Name.Name != p.Name {
			continue // e.g. a //go:build ignore generator in package main
		}
		for _, s := range f.Imports {
			path, err := strconv.Unquote(s.Path.Value)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: import %s: %w", name, s.Path.Value, err))
				continue
			}
			if !slices.Contains(files[path], name) {
				files[path] = append(files[path], name)
			}
		}
	}
	return files, errors.Join(errs...)
}

// TestTierOf checks the table lookup the tier test relies on.
func TestTierOf(t *testing.T) {
	cases := []struct {
		path string
		tier int
		ok   bool
	}{
		{"switchboard/xmpp/wire", 0, true},
		{"switchboard/xmpp", 1, true},
		{"switchboard/xmpp/c2s", 3, true},
		{"switchboard/xmpp/server/servertest", 5, true},
		{"switchboard/cmd/switchboard", 6, true},
		{"switchboard/cmd", 6, true},
		{"switchboard/cmdline", 0, false},
		{"switchboard/xmpp/unknown", 0, false},
		{"switchboard/xmpp/wire/sub", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			tier, ok := tierOf(tc.path)
			if tier != tc.tier || ok != tc.ok {
				t.Fatalf("tierOf(%q) = %d, %v; want %d, %v", tc.path, tier, ok, tc.tier, tc.ok)
			}
		})
	}
}
