package qkernels

import (
	"testing"

	"github.com/kvserve/kvserve/internal/gencheck"
)

// TestGenerated checks that the committed assembly is what the generators
// write now (gen, genlanes, genlanes2; genlowbit has its own test). After
// editing a generator run `go generate ./internal/qkernels`.
func TestGenerated(t *testing.T) {
	gencheck.Check(t, "gen", "genlanes", "genlanes2")
}
