package qkernels

import (
	"sync"
	"unsafe"

	"github.com/kvserve/kvserve/internal/tensor"
)

// scratch holds the per-call working memory of the kernels (unpacked
// weights, prepared activations, GEMM panels). It comes from a pool so that
// calls do not allocate once warm, and is owned by one call at a time.
type scratch struct {
	ur  unpackedRow
	sb  tensor.SuperBlock
	buf []byte
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch() *scratch  { return scratchPool.Get().(*scratch) }
func putScratch(s *scratch) { scratchPool.Put(s) }

// bytes returns n bytes of s's buffer, 64-byte aligned, growing it if
// needed. The contents are unspecified.
func (s *scratch) bytes(n int) []byte {
	if cap(s.buf) < n+64 {
		s.buf = make([]byte, n+64+n/4)
	}
	b := s.buf[:cap(s.buf)]
	off := int(-uintptr(unsafe.Pointer(&b[0])) & 63)
	return b[off : off+n : off+n]
}

// floats returns n float32 values of s's buffer (64-byte aligned, contents
// unspecified), like bytes.
func (s *scratch) floats(n int) []float32 {
	b := s.bytes(4 * n)
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), n)
}
