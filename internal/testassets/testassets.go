// Package testassets locates the project's shared test assets (the models,
// reference outputs and evaluation text in ../shared beside the checkout).
//
// Tests call Dir or Path. When the assets are missing, the test is skipped
// with a message saying where they were looked for, unless the environment
// variable KVSERVE_REQUIRE_SHARED=1 is set (as .ci/run does), in which case
// the test fails: CI must never silently skip them.
package testassets

import (
	"os"
	"path/filepath"
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

func missing(tb testing.TB, msg string) {
	tb.Helper()
	if Required() {
		tb.Fatal(msg + " (KVSERVE_REQUIRE_SHARED=1: CI requires them)")
	}
	tb.Skip(msg)
}
