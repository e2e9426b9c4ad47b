// Package testassets locates the project's shared test assets (the models,
// reference outputs and evaluation text in ../shared beside the checkout).
//
// Tests call Dir or Path. When the assets are missing, the test is skipped
// with a message saying where they were looked for, unless the environment
// variable KVSERVE_REQUIRE_SHARED=1 is set (as .ci/run does), in which case
// the test fails: CI must never silently skip them. Packages whose tests
// use the assets run them through Main (from TestMain), which prints one
// line naming what was skipped and why — visible even without -v.
package testassets

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
)

var (
	once sync.Once
	dir  string
	why  string
)

func locate() {
	if d := os.Getenv("KVSERVE_SHARED"); d != "" {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			dir = d
			return
		}
		why = "KVSERVE_SHARED=" + d + " is not a directory"
		return
	}
	wd, err := os.Getwd()
	if err != nil {
		why = err.Error()
		return
	}
	// Find the module root (the directory holding go.mod), then ../shared.
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			cand := filepath.Join(filepath.Dir(d), "shared")
			if st, err := os.Stat(cand); err == nil && st.IsDir() {
				dir = cand
				return
			}
			why = cand + " does not exist"
			return
		}
		if filepath.Dir(d) == d {
			why = "no go.mod above " + wd
			return
		}
	}
}

// Find returns the shared assets directory, or "" and the reason it was not
// found. For code that is not a test (benchmarks tools, the CLI's defaults).
func Find() (string, string) {
	once.Do(locate)
	return dir, why
}

// Dir returns the shared assets directory, skipping (or, in CI, failing)
// the test when it is absent.
func Dir(tb testing.TB) string {
	tb.Helper()
	d, reason := Find()
	if d == "" {
		missing(tb, "shared test assets not found: "+reason+" (set KVSERVE_SHARED to their directory)")
	}
	return d
}

// Path returns the path of a file under the shared assets directory (e.g.
// "models/kvtest-27m-f16.gguf"), skipping or failing as Dir does when the
// directory or the file is missing.
func Path(tb testing.TB, rel string) string {
	tb.Helper()
	p := filepath.Join(Dir(tb), filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		missing(tb, "shared test asset missing: "+p)
	}
	return p
}

// Required reports whether missing assets must fail the test (CI).
func Required() bool { return os.Getenv("KVSERVE_REQUIRE_SHARED") == "1" }

var (
	skipMu  sync.Mutex
	skipped = map[string]bool{} // names of the tests skipped for missing assets
	skipWhy string
)

func missing(tb testing.TB, msg string) {
	tb.Helper()
	if Required() {
		tb.Fatal(msg + " (KVSERVE_REQUIRE_SHARED=1: CI requires them)")
	}
	skipMu.Lock()
	skipped[strings.SplitN(tb.Name(), "/", 2)[0]] = true
	if skipWhy == "" {
		skipWhy = msg
	}
	skipMu.Unlock()
	tb.Skip(msg)
}

// Main runs a package's tests (call it from TestMain) and then, when some
// were skipped for want of the shared assets, prints one summary line
// saying which and why. go test shows a passing package's output only
// with -v, so without -v the line goes to the go command's own output
// (on Linux; elsewhere to standard error, seen with -v).
func Main(m *testing.M) {
	code := m.Run()
	if line := summary(); line != "" {
		report(line)
	}
	os.Exit(code)
}

// summary is Main's line ("" when nothing was skipped).
func summary() string {
	skipMu.Lock()
	names := make([]string, 0, len(skipped))
	for n := range skipped {
		names = append(names, n)
	}
	why := skipWhy
	skipMu.Unlock()
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	list := strings.Join(names, ", ")
	if len(list) > 200 {
		list = list[:200] + "..."
	}
	return fmt.Sprintf("%s: %d tests skipped for want of the shared test assets (%s): %s\n", pkgDir(), len(names), list, why)
}

// pkgDir names the package under test by its directory below the module.
func pkgDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return "?"
	}
	for d := wd; filepath.Dir(d) != d; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			if rel, err := filepath.Rel(d, wd); err == nil {
				return filepath.ToSlash(rel)
			}
		}
	}
	return wd
}

// report prints a line where the person running go test sees it.
func report(line string) {
	if f := flag.Lookup("test.v"); f != nil && f.Value.String() != "false" {
		fmt.Print(line) // -v (or -json): go test shows the test's output
		return
	}
	if runtime.GOOS == "linux" {
		// The go command runs the test binary and keeps a passing
		// package's output to itself without -v: write to its output.
		ppid := os.Getppid()
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", ppid)); err == nil && strings.TrimSpace(string(comm)) == "go" {
			if out, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/1", ppid), os.O_WRONLY|os.O_APPEND, 0); err == nil {
				_, err = out.WriteString(line)
				out.Close()
				if err == nil {
					return
				}
			}
		}
	}
	fmt.Fprint(os.Stderr, line)
}
