package cbkernels

import (
	"encoding/binary"

	"github.com/kvserve/kvserve/internal/tensor"
)

// packBlock is tensor.PackCodebookBlock eight indices at a time (each
// index a byte of a uint64; the layouts' bit fields never carry into the
// next byte).
func packBlock(t tensor.Type, y []byte, d float32, idx *[64]uint8) {
	le := binary.LittleEndian
	u := func(i int) uint64 { return le.Uint64(idx[i : i+8]) }
	switch t {
	case tensor.CB4:
		y = y[:34]
		for c := 0; c < 4; c++ {
			le.PutUint64(y[2+8*c:], u(8*c)|u(32+8*c)<<4)
		}
	case tensor.CB3:
		y = y[:26]
		const m2 = 0x0303030303030303
		for c := 0; c < 2; c++ {
			le.PutUint64(y[2+8*c:], u(8*c)&m2|(u(16+8*c)&m2)<<2|(u(32+8*c)&m2)<<4|(u(48+8*c)&m2)<<6)
		}
		const m1 = 0x0101010101010101
		var h uint64
		for k := 0; k < 8; k++ {
			h |= (u(8*k) >> 2 & m1) << k
		}
		le.PutUint64(y[18:], h)
	case tensor.CB2:
		y = y[:10]
		le.PutUint64(y[2:], u(0)|u(8)<<2|u(16)<<4|u(24)<<6)
	default:
		check("Encode", t)
	}
	le.PutUint16(y, tensor.F32ToF16(d))
}
