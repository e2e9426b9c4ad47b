package qkernels

import "testing"

// forLaneLevels is forLevels, and on a CPU with AVX-VNNI once more with
// the AVX2 lane kernels that do not use it.
func forLaneLevels(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	forLevels(t, f)
	if laneVNNI {
		laneVNNI = false
		defer func() { laneVNNI = true }()
		t.Run("novnni", func(t *testing.T) { forLevels(t, f) })
	}
}
