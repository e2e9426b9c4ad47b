//go:build !amd64

package qkernels

import "testing"

// forLaneLevels is forLevels (no AVX-VNNI variants off amd64).
func forLaneLevels(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	forLevels(t, f)
}
