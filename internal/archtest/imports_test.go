package archtest

import (
	"go/build"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/custos-cdp/custos"

// adapters talk to one outside thing each (a database, the log, HTTP
// clients, the browser). They may import the domain and shared helpers,
// never each other.
var adapters = []string{
	"internal/sqlstore", "internal/bus", "internal/api", "internal/ingest",
	"internal/web", "internal/loadgen", "internal/destinations", "internal/dsrapi",
}

func isAdapter(rel string) bool {
	for _, a := range adapters {
		if rel == a || strings.HasPrefix(rel, a+"/") {
			return true
		}
	}
	return false
}

func isStdlib(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

// internalPackages maps each package under internal/ (relative path) to
// its non-test imports.
func internalPackages(t *testing.T) map[string][]string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	pkgs := map[string][]string{}
	err = filepath.WalkDir(filepath.Join(root, "internal"), func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if d.Name() == "testdata" {
			return filepath.SkipDir
		}
		p, err := build.ImportDir(path, 0)
		if err != nil {
			if _, ok := err.(*build.NoGoError); ok {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(root, path)
		pkgs[filepath.ToSlash(rel)] = p.Imports
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// violations lists every import that breaks the layering.
func violations(pkgs map[string][]string) []string {
	var out []string
	for pkg, imports := range pkgs {
		for _, imp := range imports {
			rel, ours := strings.CutPrefix(imp, module+"/")
			switch {
			case pkg == "internal/cdp" && !isStdlib(imp):
				out = append(out, pkg+" imports "+imp+": the domain imports only the standard library")
			case ours && isAdapter(pkg) && isAdapter(rel) && !sameAdapter(pkg, rel):
				out = append(out, pkg+" imports "+imp+": adapters never import each other")
			case ours && !isAdapter(pkg) && isAdapter(rel) && pkg != "internal/testenv":
				out = append(out, pkg+" imports "+imp+": business logic never imports an adapter")
			case ours && strings.HasPrefix(rel, "cmd/"):
				out = append(out, pkg+" imports "+imp+": nothing imports a command")
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestLayering(t *testing.T) {
	pkgs := internalPackages(t)
	if _, ok := pkgs["internal/cdp"]; !ok {
		t.Fatal("internal/cdp not found: the walk is broken")
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
}

func TestViolationsFindsBreaks(t *testing.T) {
	tests := []struct {
		name    string
		pkgs    map[string][]string
		wantLen int
	}{
		{"domain imports a module", map[string][]string{"internal/cdp": {"github.com/nats-io/nats.go"}}, 1},
		{"domain imports stdlib", map[string][]string{"internal/cdp": {"encoding/json", "log/slog"}}, 0},
		{"adapter imports adapter", map[string][]string{"internal/api": {module + "/internal/sqlstore"}}, 1},
		{"adapter imports domain", map[string][]string{"internal/api": {module + "/internal/cdp"}}, 0},
		{"logic imports adapter", map[string][]string{"internal/processor": {module + "/internal/bus"}}, 1},
		{"import of a command", map[string][]string{"internal/processor": {module + "/cmd/custos"}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := violations(tt.pkgs); len(got) != tt.wantLen {
				t.Errorf("got %d violations %v, want %d", len(got), got, tt.wantLen)
			}
		})
	}
}

func sameAdapter(a, b string) bool {
	root := func(p string) string {
		for _, ad := range adapters {
			if p == ad || strings.HasPrefix(p, ad+"/") {
				return ad
			}
		}
		return p
	}
	return root(a) == root(b)
}

func TestAdapterListIsCurrent(t *testing.T) {
	pkgs := internalPackages(t)
	for _, a := range adapters {
		if _, ok := pkgs[a]; !ok && !slices.Contains([]string{"internal/web", "internal/destinations"}, a) {
			t.Errorf("adapter %s does not exist: update the list", a)
		}
	}
}
