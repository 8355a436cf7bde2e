package apidoc

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// publicPackages are the module's packages that applications import, by
// directory from the module root.
var publicPackages = []string{"orchestration", "persistence", "persistence/persistencetest", "projection", "peontest", "migrations"}

func TestDocNamesNoUnexportedIdentifier(t *testing.T) {
	t.Parallel()
	for _, dir := range publicPackages {
		t.Run(strings.ReplaceAll(dir, "/", "_"), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join("..", "..", filepath.FromSlash(dir))
			if _, err := os.Stat(path); err != nil {
				t.Skipf("no package %s in this tree", dir)
			}
			unexported, docs := parsePackage(t, path)
			var problems []string
			for _, d := range docs {
				for _, name := range namedIn(d.text, unexported) {
					problems = append(problems, d.where+" names "+name)
				}
			}
			require.Empty(t, problems, "go doc shows these comments: say what the identifier means instead of naming it")
		})
	}
}

func TestNamedIn(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		text, name string
		want       bool
	}{
		{"within pollInterval (SQLite)", "pollInterval", true},
		{"every fallbackPoll.", "fallbackPoll", true},
		{"The others go through `do`: when", "do", true},
		{"it calls do() for each", "do", true},
		{"what to do next", "do", false},
		{"the event catalogue", "catalogue", false},
		{"see Store.pollInterval", "pollInterval", false},
		{`the key "pollInterval" of the map`, "pollInterval", false},
	} {
		require.Equal(t, tc.want, slices.Contains(namedIn(tc.text, []string{tc.name}), tc.name), "%q in %q", tc.name, tc.text)
	}
}

// word is an identifier-like word of a comment.
var word = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)

// namedIn returns the identifiers of unexported that text names: a
// camelCase or digit-bearing word (pollInterval) anywhere, any word
// written as code (`do`) or called (do()). A word after a dot (Store.x)
// or in double quotes is something else's; a plain English word that is
// also an identifier (do, catalogue) is left to the reviewer.
func namedIn(text string, unexported []string) []string {
	var named []string
	for _, m := range word.FindAllStringIndex(text, -1) {
		w := text[m[0]:m[1]]
		var before, after byte
		if m[0] > 0 {
			before = text[m[0]-1]
		}
		if m[1] < len(text) {
			after = text[m[1]]
		}
		if _, found := slices.BinarySearch(unexported, w); !found || before == '.' || before == '"' {
			continue
		}
		camel := strings.ToLower(w) != w || strings.ContainsAny(w, "_0123456789")
		if camel || (before == '`' && after == '`') || after == '(' {
			named = append(named, w)
		}
	}
	return named
}

// comment is one doc comment that go doc shows, and where it is.
type comment struct{ where, text string }

// parsePackage returns the unexported identifiers declared in the package
// at dir (not counting its tests) and the comments go doc -all shows.
func parsePackage(t *testing.T, dir string) (unexported []string, docs []comment) {
	t.Helper()
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var files []*ast.File
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.ParseComments)
		require.NoError(t, err)
		files = append(files, f)
	}
	seen := map[string]bool{}
	add := func(id *ast.Ident) {
		if id != nil && !id.IsExported() && id.Name != "_" && len(id.Name) > 1 && !seen[id.Name] {
			seen[id.Name] = true
			unexported = append(unexported, id.Name)
		}
	}
	for _, f := range files {
		for _, d := range f.Decls {
			ast.Inspect(d, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.FuncDecl:
					add(n.Name)
					return false // parameters and locals are not what go doc hides
				case *ast.TypeSpec:
					add(n.Name)
				case *ast.ValueSpec:
					for _, id := range n.Names {
						add(id)
					}
				case *ast.StructType:
					for _, fl := range n.Fields.List {
						for _, id := range fl.Names {
							add(id)
						}
					}
				case *ast.InterfaceType:
					for _, m := range n.Methods.List {
						for _, id := range m.Names {
							add(id)
						}
					}
				}
				return true
			})
		}
	}
	slices.Sort(unexported)

	p, err := doc.NewFromFiles(fset, files, "example.com/"+filepath.Base(dir))
	require.NoError(t, err)
	docs = append(docs, comment{"package " + p.Name, p.Doc})
	// go/doc moves a declaration's own comment to Doc; the comments of
	// struct fields, interface methods and grouped values stay in Decl.
	collect := func(where, text string, node ast.Node) {
		docs = append(docs, comment{where, text})
		ast.Inspect(node, func(n ast.Node) bool {
			if cg, ok := n.(*ast.CommentGroup); ok {
				docs = append(docs, comment{where, cg.Text()})
				return false
			}
			return true
		})
	}
	values := func(vs []*doc.Value) {
		for _, v := range vs {
			collect(strings.Join(v.Names, ", "), v.Doc, v.Decl)
		}
	}
	funcs := func(prefix string, fs []*doc.Func) {
		for _, f := range fs {
			collect(prefix+f.Name, f.Doc, f.Decl)
		}
	}
	values(p.Consts)
	values(p.Vars)
	funcs("", p.Funcs)
	for _, ty := range p.Types {
		collect(ty.Name, ty.Doc, ty.Decl)
		values(ty.Consts)
		values(ty.Vars)
		funcs("", ty.Funcs)
		funcs(ty.Name+".", ty.Methods)
	}
	return unexported, docs
}
