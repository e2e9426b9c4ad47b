package gguf

import (
	"testing"

	"github.com/kvserve/kvserve/internal/testassets"
)

// TestMain prints one line when tests were skipped for want of the shared
// test assets (see testassets.Main).
func TestMain(m *testing.M) { testassets.Main(m) }
