package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// RELIABILITY.md names, for each guarantee, the tests that show it: test
// functions (`TestX`, `FuzzX`, `TestX/subtest`), mostly after the file or
// folder that holds them (`path/x_test.go` › `TestX`, `TestY`), and go test
// commands to run them. Every such citation must stay true as tests move.
func TestReliabilityCitesRealTests(t *testing.T) {
	t.Parallel()
	root := moduleRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, "RELIABILITY.md"))
	if err != nil {
		t.Fatal(err)
	}
	c := citations(string(doc))
	if len(c.funcs) < 40 || len(c.paths) < 20 || len(c.commands) < 5 {
		t.Fatalf("read only %d test names, %d paths and %d go test commands in RELIABILITY.md: has the way it cites tests changed?",
			len(c.funcs), len(c.paths), len(c.commands))
	}
	for _, p := range checkCitations(root, c, testFuncs(t, root)) {
		t.Errorf("RELIABILITY.md: %s", p)
	}
}

// The check finds each kind of broken citation.
func TestReliabilityCheckFindsBrokenCitations(t *testing.T) {
	t.Parallel()
	root := moduleRoot(t)
	doc := "| 1 | x | `cmd/atm/nosuch_test.go` › `TestCrashDurability`; `cmd/atm/offline_test.go` › `TestCrashDurability`, `TestNoSuchThing` |\n" +
		"| 2 | y | `cmd/atm` › `TestOfflineTools/read only`, `TestOfflineTools/no such case`; `cmd/atm/internal` › `TestOfflineTools` |\n" +
		"```sh\n" +
		"go test -race -v -run 'TestOfflineTools|TestNoSuch' ./cmd/atm   # a comment\n" +
		"go test -run XXX -fuzz '^FuzzDecode$' ./cmd/atm\n" +
		"go test ./nosuch\n" +
		"```\n"
	got := checkCitations(root, citations(doc), testFuncs(t, root))
	want := []string{
		"cmd/atm/nosuch_test.go does not exist",
		"cmd/atm/offline_test.go › TestCrashDurability: no func TestCrashDurability( there",
		"TestNoSuchThing: no func TestNoSuchThing( in any _test.go file",
		// (the name in two pieces: whole, it would be a string literal in
		// this folder's _test.go files, where the check looks for it)
		`TestOfflineTools/no such case: no subtest named "no such ` + `case" in the _test.go files of cmd/atm`,
		"cmd/atm/internal › TestOfflineTools: no func TestOfflineTools( there",
		"go test ... ./cmd/atm: -run alternative TestNoSuch matches no test there",
		"go test ... ./cmd/atm: -fuzz alternative ^FuzzDecode$ matches no test there",
		"go test ... ./nosuch: no tests in nosuch",
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("the check missed %q", w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("the check found %d problems, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
}

// moduleRoot is the folder of go.mod, above the test's working directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// testFunc is a test function and the folder (slash-separated, relative to
// the module root) and file that define it.
type testFunc struct{ dir, file string }

var testFuncRE = regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Benchmark|Example)\w*)\(`)

// testFuncs finds every test function of the module's _test.go files.
func testFuncs(t *testing.T, root string) map[string][]testFunc {
	t.Helper()
	funcs := map[string][]testFunc{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		for _, m := range testFuncRE.FindAllSubmatch(b, -1) {
			funcs[string(m[1])] = append(funcs[string(m[1])], testFunc{dir: pathDir(rel), file: rel})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return funcs
}

// pathDir is the folder of a slash-separated path, "" at the root.
func pathDir(p string) string {
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return p[:i]
	}
	return ""
}

// citation is a test function named in the document: name, with a
// subtest after a "/", and the file or folder it is cited in ("" if the
// citation names none).
type citation struct {
	name, sub, in string
}

// goTest is a go test command of the document: its -run and -fuzz
// patterns and its package arguments.
type goTest struct {
	line      string
	run, fuzz string
	pkgs      []string
}

type cited struct {
	funcs    []citation
	paths    []string
	commands []goTest
}

var (
	codeSpanRE = regexp.MustCompile("`([^`]+)`")
	testNameRE = regexp.MustCompile(`^((?:Test|Fuzz|Benchmark|Example)[A-Za-z0-9_]*)(?:/(.+))?$`)
	pathRE     = regexp.MustCompile(`^[\w.-]+(/[\w.-]+)*/?$`)
	goTestRE   = regexp.MustCompile(`(?:^|\s)go test\s`)
	flagArgRE  = regexp.MustCompile(`\s-(run|fuzz)[ =]('[^']*'|"[^"]*"|\S+)`)
)

// isPath reports whether a code span names a file or folder of the
// repository: one word of path characters with a slash, or a .go or .md
// file.
func isPath(s string) bool {
	return pathRE.MatchString(s) && !strings.HasPrefix(s, ".") && !strings.HasPrefix(s, "-") &&
		(strings.Contains(s, "/") || strings.HasSuffix(s, ".go") || strings.HasSuffix(s, ".md"))
}

// citations reads what the document cites: in its text, the code spans
// that are test names or paths, a test name belonging to the path before it
// on its line when a "›" stands between them and no ";" ends the citation;
// in its code blocks, the go test commands.
func citations(doc string) cited {
	var c cited
	inCode := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inCode = !inCode
			continue
		}
		if inCode {
			if cmd, _, _ := strings.Cut(line, "#"); goTestRE.MatchString(cmd) {
				c.commands = append(c.commands, parseGoTest(cmd))
			}
			continue
		}
		in, inEnd := "", 0 // the path cited last on the line, and where its span ends
		for _, m := range codeSpanRE.FindAllStringSubmatchIndex(line, -1) {
			span := line[m[2]:m[3]]
			if tm := testNameRE.FindStringSubmatch(span); tm != nil {
				owner := ""
				if between := line[inEnd:m[0]]; in != "" && strings.Contains(between, "›") && !strings.Contains(between, ";") {
					owner = in
				}
				c.funcs = append(c.funcs, citation{name: tm[1], sub: tm[2], in: owner})
				continue
			}
			if isPath(span) {
				c.paths = append(c.paths, strings.TrimSuffix(span, "/"))
				in, inEnd = strings.TrimSuffix(span, "/"), m[1]
			}
		}
	}
	return c
}

// parseGoTest reads a go test command line (its comment cut off).
func parseGoTest(line string) goTest {
	g := goTest{line: strings.TrimSpace(line)}
	for _, m := range flagArgRE.FindAllStringSubmatch(line, -1) {
		v := strings.Trim(m[2], `'"`)
		if m[1] == "run" {
			g.run = v
		} else {
			g.fuzz = v
		}
	}
	for _, f := range strings.Fields(line) {
		if f == "./..." || strings.HasPrefix(f, "./") {
			g.pkgs = append(g.pkgs, f)
		}
	}
	return g
}

// checkCitations returns what is wrong with the citations c, given the
// module's test functions.
func checkCitations(root string, c cited, funcs map[string][]testFunc) []string {
	var problems []string
	for _, p := range c.paths {
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(p))); err != nil {
			problems = append(problems, p+" does not exist")
		}
	}
	for _, f := range c.funcs {
		defs := funcs[f.name]
		if len(defs) == 0 {
			problems = append(problems, fmt.Sprintf("%s: no func %s( in any _test.go file", f.name, f.name))
			continue
		}
		if f.in != "" {
			if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(f.in))); err != nil {
				continue // reported with the paths
			}
			if !slices.ContainsFunc(defs, func(d testFunc) bool { return d.file == f.in || d.dir == f.in }) {
				problems = append(problems, fmt.Sprintf("%s › %s: no func %s( there", f.in, f.name, f.name))
				continue
			}
		}
		if f.sub != "" && !subtestNamed(root, defs, f.sub) {
			problems = append(problems, fmt.Sprintf("%s/%s: no subtest named %q in the _test.go files of %s", f.name, f.sub, f.sub, defs[0].dir))
		}
	}
	for _, g := range c.commands {
		for _, pkg := range g.pkgs {
			dir := strings.TrimPrefix(strings.TrimPrefix(pkg, "./"), ".")
			var names []string
			for name, defs := range funcs {
				if slices.ContainsFunc(defs, func(d testFunc) bool {
					return pkg == "./..." || d.dir == dir
				}) {
					names = append(names, name)
				}
			}
			if len(names) == 0 {
				problems = append(problems, fmt.Sprintf("go test ... %s: no tests in %s", pkg, dir))
				continue
			}
			for _, flag := range []struct{ name, pattern string }{{"run", g.run}, {"fuzz", g.fuzz}} {
				if flag.pattern == "" || strings.ContainsAny(flag.pattern, "<>") || flag.name == "run" && g.fuzz != "" {
					continue // none, a placeholder, or -run beside -fuzz (which only keeps the unit tests out)
				}
				for _, alt := range strings.Split(flag.pattern, "|") {
					re, err := regexp.Compile(alt)
					if err != nil {
						problems = append(problems, fmt.Sprintf("go test ... %s: -%s alternative %s: %v", pkg, flag.name, alt, err))
						continue
					}
					if !slices.ContainsFunc(names, re.MatchString) {
						problems = append(problems, fmt.Sprintf("go test ... %s: -%s alternative %s matches no test there", pkg, flag.name, alt))
					}
				}
			}
		}
	}
	return problems
}

// subtestNamed reports whether a _test.go file in a folder of defs holds
// the subtest name as a string literal.
func subtestNamed(root string, defs []testFunc, sub string) bool {
	for _, d := range defs {
		files, _ := filepath.Glob(filepath.Join(root, filepath.FromSlash(d.dir), "*_test.go"))
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), `"`+sub+`"`) {
				return true
			}
		}
	}
	return false
}
