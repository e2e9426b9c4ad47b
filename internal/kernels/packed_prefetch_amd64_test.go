package kernels

import (
	"fmt"
	"testing"
)

// TestGemmPackedPrefetchVariants runs TestGemmPacked with each dot16P
// variant (software prefetch on and off: the one not chosen for this CPU
// would otherwise go untested here); both must equal Gemm bit for bit.
func TestGemmPackedPrefetchVariants(t *testing.T) {
	defer func(v bool) { dot16Prefetch = v }(dot16Prefetch)
	for _, pf := range []bool{true, false} {
		dot16Prefetch = pf
		t.Run(fmt.Sprintf("prefetch=%v", pf), TestGemmPacked)
	}
}
