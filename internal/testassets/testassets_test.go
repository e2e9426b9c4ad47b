package testassets

import (
	"strings"
	"sync"
	"testing"
)

// Missing assets skip a test (outside CI) and are summed up in one line
// naming the skipped tests and the reason.
func TestSkipSummary(t *testing.T) {
	t.Setenv("KVSERVE_REQUIRE_SHARED", "") // this test is about the skip
	t.Setenv("KVSERVE_SHARED", "/nonexistent/kvserve-shared")
	once, dir, why = sync.Once{}, "", ""
	defer func() { once, dir, why = sync.Once{}, "", "" }()
	t.Run("needs-assets", func(t *testing.T) {
		Dir(t)
		t.Error("Dir did not skip without the assets")
	})
	line := summary()
	for _, want := range []string{"internal/testassets: 1 tests skipped", "TestSkipSummary", "/nonexistent/kvserve-shared is not a directory"} {
		if !strings.Contains(line, want) {
			t.Errorf("summary %q lacks %q", line, want)
		}
	}
	skipMu.Lock()
	clear(skipped)
	skipWhy = ""
	skipMu.Unlock()
}
