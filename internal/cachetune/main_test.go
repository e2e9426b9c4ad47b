package cachetune

import (
	"testing"

	"github.com/kvserve/kvserve/internal/testassets"
)

// TestMain reports the tests skipped for want of the shared test assets
// (see testassets.Main).
func TestMain(m *testing.M) { testassets.Main(m) }
