//go:build amd64

package qkernels

import (
	"unsafe"

	"github.com/kvserve/kvserve/internal/cpu"
)

// readBytes sums b (a multiple of 128 bytes) with the AVX2 read loop, when
// the CPU has AVX2; ok is false otherwise.
func readBytes(b []byte) (sum uint64, ok bool) {
	if cpu.Block.Best() < cpu.AVX2 {
		return 0, false
	}
	var out [4]uint64
	a := karg{w: ptr(b), nb: len(b) / 128, y: unsafe.Pointer(&out[0])}
	readAVX2(&a)
	return out[0] + out[1] + out[2] + out[3], true
}
