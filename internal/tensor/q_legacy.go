package tensor

import "encoding/binary"

// The 32-element block formats (ggml's "legacy" quants). Layouts, all
// little-endian, d and m binary16:
//
//	Q4_0  (18 B): d, qs[16]        x[j] = (qs[j]&15 - 8)·d, x[j+16] = (qs[j]>>4 - 8)·d
//	Q4_1  (20 B): d, m, qs[16]     x[j] = (qs[j]&15)·d + m, x[j+16] = (qs[j]>>4)·d + m
//	Q5_0  (22 B): d, qh u32, qs[16] as Q4_0 with bit 4 of element j in qh bit j, offset 16
//	Q5_1  (24 B): d, m, qh u32, qs[16] as Q4_1 with the fifth bit from qh
//	Q8_0  (34 B): d, qs[32] int8   x[j] = qs[j]·d
//	Q8_1  (36 B): d, s, qs[32]     x[j] = qs[j]·d; s = d·Σqs (used by dot products)

const (
	qk32     = 32
	sizeQ4_0 = 18
	sizeQ4_1 = 20
	sizeQ5_0 = 22
	sizeQ5_1 = 24
	sizeQ8_0 = 34
	sizeQ8_1 = 36
)

// absMax returns the first element of largest magnitude (its signed value)
// and that magnitude, as ggml's "if (amax < fabsf(v))" loops do.
func absMax(x []float32) (max, amax float32) {
	for _, v := range x {
		if av := abs32(v); amax < av {
			amax = av
			max = v
		}
	}
	return
}

// minMax returns the minimum and maximum, as ggml's q4_1/q5_1 loops do
// (starting from ±FLT_MAX).
func minMax(x []float32) (min, max float32) {
	min, max = 3.40282346638528859811704183484516925440e+38, -3.40282346638528859811704183484516925440e+38
	for _, v := range x {
		if v < min {
			min = v
		}
		if v > max {
			max = v
		}
	}
	return
}

func quantizeQ4_0(x []float32, y []byte) {
	for ib := 0; ib < len(x)/qk32; ib++ {
		xb := x[ib*qk32 : ib*qk32+qk32]
		b := y[ib*sizeQ4_0 : ib*sizeQ4_0+sizeQ4_0]
		max, _ := absMax(xb)
		d := max / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, d)
		for j := 0; j < 16; j++ {
			x0 := float32(xb[j] * id)
			x1 := float32(xb[j+16] * id)
			xi0 := min(15, int8(int32(x0+8.5)))
			xi1 := min(15, int8(int32(x1+8.5)))
			b[2+j] = uint8(xi0) | uint8(xi1)<<4
		}
	}
}

func quantizeQ4_1(x []float32, y []byte) {
	for ib := 0; ib < len(x)/qk32; ib++ {
		xb := x[ib*qk32 : ib*qk32+qk32]
		b := y[ib*sizeQ4_1 : ib*sizeQ4_1+sizeQ4_1]
		min_, max := minMax(xb)
		d := (max - min_) / 15
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, d)
		putF16(b[2:], min_)
		for j := 0; j < 16; j++ {
			x0 := float32((xb[j] - min_) * id)
			x1 := float32((xb[j+16] - min_) * id)
			xi0 := min(15, int8(int32(x0+0.5)))
			xi1 := min(15, int8(int32(x1+0.5)))
			b[4+j] = uint8(xi0) | uint8(xi1)<<4
		}
	}
}

func quantizeQ5_0(x []float32, y []byte) {
	for ib := 0; ib < len(x)/qk32; ib++ {
		xb := x[ib*qk32 : ib*qk32+qk32]
		b := y[ib*sizeQ5_0 : ib*sizeQ5_0+sizeQ5_0]
		max, _ := absMax(xb)
		d := max / -16
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, d)
		var qh uint32
		for j := 0; j < 16; j++ {
			x0 := float32(xb[j] * id)
			x1 := float32(xb[j+16] * id)
			xi0 := uint8(min(31, int8(int32(x0+16.5))))
			xi1 := uint8(min(31, int8(int32(x1+16.5))))
			b[6+j] = xi0&0x0f | (xi1&0x0f)<<4
			qh |= uint32(xi0&0x10) >> 4 << j
			qh |= uint32(xi1&0x10) >> 4 << (j + 16)
		}
		binary.LittleEndian.PutUint32(b[2:], qh)
	}
}

func quantizeQ5_1(x []float32, y []byte) {
	for ib := 0; ib < len(x)/qk32; ib++ {
		xb := x[ib*qk32 : ib*qk32+qk32]
		b := y[ib*sizeQ5_1 : ib*sizeQ5_1+sizeQ5_1]
		min_, max := minMax(xb)
		d := (max - min_) / 31
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, d)
		putF16(b[2:], min_)
		var qh uint32
		for j := 0; j < 16; j++ {
			x0 := float32((xb[j] - min_) * id)
			x1 := float32((xb[j+16] - min_) * id)
			xi0 := uint8(int32(x0 + 0.5))
			xi1 := uint8(int32(x1 + 0.5))
			b[8+j] = xi0&0x0f | (xi1&0x0f)<<4
			qh |= uint32(xi0&0x10) >> 4 << j
			qh |= uint32(xi1&0x10) >> 4 << (j + 16)
		}
		binary.LittleEndian.PutUint32(b[4:], qh)
	}
}

// q8Scale returns amax as ggml's "amax = MAX(amax, fabsf(v))" loop does.
func q8Amax(xb []float32) float32 {
	var amax float32
	for _, v := range xb {
		av := abs32(v)
		if !(amax > av) {
			amax = av
		}
	}
	return amax
}

func quantizeQ8_0(x []float32, y []byte) {
	for ib := 0; ib < len(x)/qk32; ib++ {
		xb := x[ib*qk32 : ib*qk32+qk32]
		b := y[ib*sizeQ8_0 : ib*sizeQ8_0+sizeQ8_0]
		amax := q8Amax(xb)
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, d)
		for j, v := range xb {
			b[2+j] = uint8(int8(roundAway(v * id)))
		}
	}
}

func quantizeQ8_1(x []float32, y []byte) {
	for ib := 0; ib < len(x)/qk32; ib++ {
		xb := x[ib*qk32 : ib*qk32+qk32]
		b := y[ib*sizeQ8_1 : ib*sizeQ8_1+sizeQ8_1]
		amax := q8Amax(xb)
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, d)
		var sum int32
		for j, v := range xb {
			q := int8(roundAway(v * id))
			b[4+j] = uint8(q)
			sum += int32(q)
		}
		putF16(b[2:], float32(sum)*d)
	}
}

// quantizeQ8_0AVX is ggml's x86 AVX/AVX2 quantize_row_q8_0: id = 127/amax,
// x·id rounded half to even, saturated to int8.
func quantizeQ8_0AVX(x []float32, y []byte) {
	for ib := 0; ib < len(x)/qk32; ib++ {
		xb := x[ib*qk32 : ib*qk32+qk32]
		b := y[ib*sizeQ8_0 : ib*sizeQ8_0+sizeQ8_0]
		amax := avxAmax(xb)
		putF16(b, amax/127)
		var id float32
		if amax != 0 {
			id = 127 / amax
		}
		for j, v := range xb {
			b[2+j] = uint8(satInt8(nearestInt(v * id)))
		}
	}
}

// quantizeQ8_1AVX is ggml's x86 AVX/AVX2 quantize_row_q8_1 (see
// quantizeQ8_0AVX); s = d·Σq with the sum taken before saturation.
func quantizeQ8_1AVX(x []float32, y []byte) {
	for ib := 0; ib < len(x)/qk32; ib++ {
		xb := x[ib*qk32 : ib*qk32+qk32]
		b := y[ib*sizeQ8_1 : ib*sizeQ8_1+sizeQ8_1]
		amax := avxAmax(xb)
		d := amax / 127
		putF16(b, d)
		var id float32
		if amax != 0 {
			id = 127 / amax
		}
		var sum int32
		for j, v := range xb {
			q := nearestInt(v * id)
			sum += q
			b[4+j] = uint8(satInt8(q))
		}
		putF16(b[2:], d*float32(sum))
	}
}

// avxAmax is the block's largest magnitude (the max over lanes, whose order
// does not matter for ordinary numbers).
func avxAmax(xb []float32) float32 {
	var amax float32
	for _, v := range xb {
		if av := abs32(v); av > amax {
			amax = av
		}
	}
	return amax
}

func satInt8(v int32) int8 {
	if v > 127 {
		return 127
	}
	if v < -128 {
		return -128
	}
	return int8(v)
}

func dequantizeQ4_0(x []byte, y []float32) {
	for ib := 0; ib < len(y)/qk32; ib++ {
		b := x[ib*sizeQ4_0 : ib*sizeQ4_0+sizeQ4_0]
		yb := y[ib*qk32 : ib*qk32+qk32]
		d := f16(b)
		for j := 0; j < 16; j++ {
			q := b[2+j]
			yb[j] = float32(int32(q&0x0f)-8) * d
			yb[j+16] = float32(int32(q>>4)-8) * d
		}
	}
}

func dequantizeQ4_1(x []byte, y []float32) {
	for ib := 0; ib < len(y)/qk32; ib++ {
		b := x[ib*sizeQ4_1 : ib*sizeQ4_1+sizeQ4_1]
		yb := y[ib*qk32 : ib*qk32+qk32]
		d, m := f16(b), f16(b[2:])
		for j := 0; j < 16; j++ {
			q := b[4+j]
			yb[j] = float32(float32(q&0x0f)*d) + m
			yb[j+16] = float32(float32(q>>4)*d) + m
		}
	}
}

func dequantizeQ5_0(x []byte, y []float32) {
	for ib := 0; ib < len(y)/qk32; ib++ {
		b := x[ib*sizeQ5_0 : ib*sizeQ5_0+sizeQ5_0]
		yb := y[ib*qk32 : ib*qk32+qk32]
		d := f16(b)
		qh := binary.LittleEndian.Uint32(b[2:])
		for j := 0; j < 16; j++ {
			q := b[6+j]
			h0 := int32(qh>>j<<4) & 0x10
			h1 := int32(qh>>(j+12)) & 0x10
			yb[j] = float32((int32(q&0x0f)|h0)-16) * d
			yb[j+16] = float32((int32(q>>4)|h1)-16) * d
		}
	}
}

func dequantizeQ5_1(x []byte, y []float32) {
	for ib := 0; ib < len(y)/qk32; ib++ {
		b := x[ib*sizeQ5_1 : ib*sizeQ5_1+sizeQ5_1]
		yb := y[ib*qk32 : ib*qk32+qk32]
		d, m := f16(b), f16(b[2:])
		qh := binary.LittleEndian.Uint32(b[4:])
		for j := 0; j < 16; j++ {
			q := b[8+j]
			h0 := int32(qh>>j<<4) & 0x10
			h1 := int32(qh>>(j+12)) & 0x10
			yb[j] = float32(float32(int32(q&0x0f)|h0)*d) + m
			yb[j+16] = float32(float32(int32(q>>4)|h1)*d) + m
		}
	}
}

func dequantizeQ8_0(x []byte, y []float32) {
	for ib := 0; ib < len(y)/qk32; ib++ {
		b := x[ib*sizeQ8_0 : ib*sizeQ8_0+sizeQ8_0]
		yb := y[ib*qk32 : ib*qk32+qk32]
		d := f16(b)
		for j := range yb {
			yb[j] = float32(int8(b[2+j])) * d
		}
	}
}

func dequantizeQ8_1(x []byte, y []float32) {
	for ib := 0; ib < len(y)/qk32; ib++ {
		b := x[ib*sizeQ8_1 : ib*sizeQ8_1+sizeQ8_1]
		yb := y[ib*qk32 : ib*qk32+qk32]
		d := f16(b)
		for j := range yb {
			yb[j] = float32(int8(b[4+j])) * d
		}
	}
}
