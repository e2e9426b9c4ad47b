package kernels

import (
	"testing"

	"github.com/kvserve/kvserve/internal/gencheck"
)

// TestGenerated checks that the committed assembly is what the generator
// writes now (gen). After editing it run `go generate ./internal/kernels`.
func TestGenerated(t *testing.T) {
	gencheck.Check(t, "gen")
}
