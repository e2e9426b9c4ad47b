// Command gen writes internal/qkernels's avx512_amd64.s and avx2_amd64.s into
// the current directory. Run it with `go generate ./internal/qkernels/` (the
// go:generate directive is in ../generate.go) after editing; the generated
// files are committed, and go generate reproduces them byte for byte.
//
// The data layouts (canonical unpacked weight rows, prepared activations,
// GEMM panels and activation packs) are described in layout_amd64.go; the
// offsets used here must agree with it (TestLayout checks the argument
// block).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ---------------------------------------------------------------- emitter

type gen struct {
	b     bytes.Buffer
	name  string
	nlbl  int
	data  map[string][]byte
	isa   string // "AVX512" or "AVX2"
	frame int
}

func newGen(isa string) *gen { return &gen{data: map[string][]byte{}, isa: isa} }

func (g *gen) i(format string, a ...any) { fmt.Fprintf(&g.b, "\t"+format+"\n", a...) }
func (g *gen) c(comment string)          { fmt.Fprintf(&g.b, "\t// %s\n", comment) }
func (g *gen) label(l string)            { fmt.Fprintf(&g.b, "%s:\n", l) }
func (g *gen) lbl(s string) string {
	g.nlbl++
	return fmt.Sprintf("%s_%s_%d", g.name, s, g.nlbl)
}

func (g *gen) text(name string, frame int, comment string) {
	g.name = name
	g.frame = frame
	flags := "NOSPLIT, "
	if frame > 512 {
		flags = "" // let the stack grow for the larger frames
	}
	fmt.Fprintf(&g.b, "\n// %s\n// func %s(a *karg)\nTEXT ·%s(SB), %s$%d-8\n", comment, name, name, flags, frame)
	g.i("MOVQ a+0(FP), R14")
}

func (g *gen) ret() {
	g.i("VZEROUPPER")
	g.i("RET")
}

// konst registers a read-only table and returns its operand.
func (g *gen) konst(name string, b []byte) string {
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	if old, ok := g.data[name]; ok && !bytes.Equal(old, b) {
		panic("conflicting table " + name)
	}
	g.data[name] = b
	return "·" + name + "<>(SB)"
}

func (g *gen) emitData() {
	names := make([]string, 0, len(g.data))
	for n := range g.data {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b := g.data[n]
		fmt.Fprintf(&g.b, "\n")
		for o := 0; o < len(b); o += 8 {
			var v uint64
			for k := 7; k >= 0; k-- {
				v = v<<8 | uint64(b[o+k])
			}
			fmt.Fprintf(&g.b, "DATA ·%s<>+%d(SB)/8, $0x%016x\n", n, o, v)
		}
		fmt.Fprintf(&g.b, "GLOBL ·%s<>(SB), RODATA|NOPTR, $%d\n", n, len(b))
	}
}

func bytesOf(n int, f func(i int) byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = f(i)
	}
	return b
}

func words(n int, f func(i int) uint16) []byte {
	b := make([]byte, 2*n)
	for i := 0; i < n; i++ {
		v := f(i)
		b[2*i], b[2*i+1] = byte(v), byte(v>>8)
	}
	return b
}

func dwords(n int, f func(i int) uint32) []byte {
	b := make([]byte, 4*n)
	for i := 0; i < n; i++ {
		v := f(i)
		for k := 0; k < 4; k++ {
			b[4*i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

func f32bits(f float32) uint32 { return math.Float32bits(f) }

func z(i int) string { return fmt.Sprintf("Z%d", i) }
func y(i int) string { return fmt.Sprintf("Y%d", i) }
func x(i int) string { return fmt.Sprintf("X%d", i) }

// bcastB sets every byte of vector register r (Z or Y) to v, via AX.
func (g *gen) bcastB(r string, v byte) {
	g.i("MOVL $0x%02x%02x%02x%02x, AX", v, v, v, v)
	if g.isa == "AVX2" {
		// VPBROADCASTD from a general register is AVX-512 only.
		x := "X" + r[1:]
		g.i("VMOVD AX, %s", x)
		g.i("VPBROADCASTD %s, %s", x, r)
		return
	}
	g.i("VPBROADCASTD AX, %s", r)
}

// ---------------------------------------------------------------- karg

// Offsets of the fields of karg (layout_amd64.go).
const (
	aW      = 0
	aStride = 8
	aRows   = 16
	aRowB   = 24
	aNB     = 32
	aU      = 40
	aC1     = 48
	aC2     = 56
	aC3     = 64
	aX      = 72
	aA1     = 80
	aA2     = 88
	aA3     = 96
	aY      = 104
	aUStr   = 112
	aPanel  = 120
	aPack   = 128
	aN2     = 136
	aTS     = 144
	aCStr   = 152 // matrix-vector kernels: bytes between 16-block (legacy) or 16-super-block (K) chunks of a row
	aBStr   = 160 // matrix-vector kernels: bytes between batches of 16 rows
)

// ---------------------------------------------------------------- legacy types

type ltype struct {
	name   string
	bs     int  // bytes per block
	qo     int  // offset of qs
	mo     int  // offset of m (0: none)
	qho    int  // offset of qh (0: none)
	family byte // 'A': f·(dw·dx); 'B': (f·dw)·dx; 'C': (dw·dx)·f + mw·sx
	q8     bool // Q8_0: u = w ^ 0x80
	iq4    bool // IQ4_NL (and MXFP4): u = kvalues[q] + 128
	e8m0   bool // MXFP4: the scale is one E8M0 byte at offset 0 (not an f16)
}

// iq4Table returns the name and values of a table type's 16 levels.
func (t ltype) iq4Table() (string, []int) {
	if t.e8m0 {
		return "mxfp4tbl", kvaluesMXFP4
	}
	return "iq4tbl", kvaluesIQ4NL
}

var ltypes = []ltype{
	{name: "Q8_0", bs: 34, qo: 2, family: 'A', q8: true},
	{name: "Q4_0", bs: 18, qo: 2, family: 'B'},
	{name: "Q4_1", bs: 20, qo: 4, mo: 2, family: 'C'},
	{name: "Q5_0", bs: 22, qo: 6, qho: 2, family: 'A'},
	{name: "Q5_1", bs: 24, qo: 8, mo: 2, qho: 4, family: 'C'},
	{name: "IQ4_NL", bs: 18, qo: 2, family: 'A', iq4: true},
}

var kvaluesIQ4NL = []int{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

// mxfp4 is MXFP4 (gpt-oss's experts): IQ4_NL's kernels with 17-byte
// blocks, ggml's kvalues_mxfp4 (the E2M1 values doubled) as the levels and
// an E8M0 scale byte, whose value as ggml's GGML_E8M0_TO_FP32_HALF is
// 2^(e-128): the float32 bits (e-1)<<23 for e >= 2 and the denormals
// (e+1)<<21 for e < 2 — in both cases the larger of the two as signed
// integers, so one VPMAXSD converts them. Only its matrix-vector and
// unpacking kernels are generated (it is a weight type, never a cache type).
var mxfp4 = ltype{name: "MXFP4", bs: 17, qo: 1, family: 'A', iq4: true, e8m0: true}

var kvaluesMXFP4 = []int{0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12}

// ---------------------------------------------------------------- AVX-512 legacy unpack

// Canonical legacy row (see layout_amd64.go): groups of 4 blocks, 128 bytes
// each: bytes 16·j+i (i<16) hold u of element i of block j of the group,
// bytes 64+16·j+i element 16+i; u = q + off is unsigned. DW (and MW) hold
// the block scales as float32.
//
// unpackL512 emits the unpacking of one row. In: SI row, DX row bytes,
// DI U, R8 DW, R9 MW. Clobbers AX, BX, CX, Z0-Z9, K1-K4. Needs the
// constants set by unpackL512Consts (Z31, Z30, Z29).

func (g *gen) unpackL512Consts(t ltype) {
	g.bcastB("Z31", 0x0f)
	switch {
	case t.q8:
		g.bcastB("Z30", 0x80)
	case t.qho != 0:
		g.bcastB("Z30", 0x10)
	case t.iq4:
		name, lv := t.iq4Table()
		tbl := g.konst(name, bytesOf(64, func(i int) byte { return byte(lv[i%16] + 128) }))
		g.i("VMOVDQU64 %s, Z30", tbl)
	}
}

func (g *gen) unpackL512(t ltype) {
	G := 4 * t.bs
	need := 128 // bytes a full-width group body reads
	if t.q8 {
		need = 136
	}
	body := func(masked bool) {
		if masked {
			g.masksL512(t)
		}
		g.unpackGroupL512(t, masked)
		g.i("VMOVDQU64 Z4, (DI)")
		g.i("VMOVDQU64 Z5, 64(DI)")
		if t.mo != 0 {
			g.i("VMOVUPS X8, (R8)")
			g.i("VEXTRACTF128 $1, Y8, (R9)")
		} else {
			g.i("VMOVUPS X8, (R8)")
		}
		g.i("ADDQ $%d, SI", G)
		g.i("SUBQ $%d, DX", G)
		g.i("ADDQ $128, DI")
		g.i("ADDQ $16, R8")
		if t.mo != 0 {
			g.i("ADDQ $16, R9")
		}
	}
	fast, tail, done := g.lbl("ufast"), g.lbl("utail"), g.lbl("udone")
	g.label(fast)
	g.i("CMPQ DX, $%d", need)
	g.i("JLT %s", tail)
	body(false)
	g.i("JMP %s", fast)
	g.label(tail)
	g.i("CMPQ DX, $0")
	g.i("JLE %s", done)
	body(true)
	g.i("JMP %s", tail)
	g.label(done)
}

// lwins are the 64-byte windows a legacy group is loaded from.
func lwins(t ltype) []int {
	if t.q8 {
		return []int{0, 64, 8, 72}
	}
	return []int{0, 64}
}

// masksL512 sets K1.. (one per window) to the bytes of the window that lie
// within the DX bytes left in the row.
func (g *gen) masksL512(t ltype) {
	for wi, o := range lwins(t) {
		g.i("MOVQ DX, AX")
		if o != 0 {
			g.i("SUBQ $%d, AX", o)
			g.i("MOVL $0, BX")
			g.i("CMOVQLT BX, AX")
		}
		g.i("MOVQ $-1, BX")
		g.i("BZHIQ AX, BX, BX")
		g.i("KMOVQ BX, K%d", wi+1)
	}
}

// unpackGroupL512 unpacks the group of 4 blocks at SI into registers: Z4 =
// canonical bytes 0-63, Z5 = bytes 64-127, X8 = the 4 scales (Y8 upper
// half: the 4 mins). masked: loads are masked by K1.. (masksL512).
// Clobbers Z0-Z8, K3, K4 (Q5).
func (g *gen) unpackGroupL512(t ltype, masked bool) {
	qsLo := g.konst("qs"+t.name, bytesOf(64, func(i int) byte {
		blk, e := i/16, i%16
		return byte(t.bs*blk + t.qo + e)
	}))
	var qsHi string
	if t.q8 {
		qsHi = g.konst("qshi"+t.name, bytesOf(64, func(i int) byte {
			blk, e := i/16, i%16
			return byte(t.bs*blk + t.qo + 16 + e - 8)
		}))
	}
	dIdx := ""
	if !t.e8m0 {
		dIdx = g.konst("dm"+t.name, words(32, func(i int) uint16 {
			switch {
			case i < 4:
				return uint16(t.bs * i / 2)
			case i < 8 && t.mo != 0:
				return uint16((t.bs*(i-4) + t.mo) / 2)
			}
			return 0
		}))
	}
	for wi, o := range lwins(t) {
		if masked {
			g.i("VMOVDQU8.Z %d(SI), K%d, Z%d", o, wi+1, wi)
		} else {
			g.i("VMOVDQU64 %d(SI), Z%d", o, wi)
		}
	}
	g.i("VMOVDQU64 %s, Z4", qsLo)
	g.i("VPERMI2B Z1, Z0, Z4")
	if t.q8 {
		g.i("VMOVDQU64 %s, Z5", qsHi)
		g.i("VPERMI2B Z3, Z2, Z5")
		g.i("VPXORD Z30, Z4, Z4")
		g.i("VPXORD Z30, Z5, Z5")
	} else {
		g.i("VPSRLW $4, Z4, Z5")
		g.i("VPANDD Z31, Z4, Z4")
		g.i("VPANDD Z31, Z5, Z5")
		if t.iq4 {
			g.i("VPSHUFB Z4, Z30, Z4")
			g.i("VPSHUFB Z5, Z30, Z5")
		}
		if t.qho != 0 {
			qhIdx := g.konst("qh"+t.name, words(32, func(i int) uint16 {
				blk, p := i/8, i%8
				base := (t.bs*blk + t.qho) / 2
				return uint16(base + p%2)
			}))
			bitLo := g.konst("bitlo", bytesOf(64, func(i int) byte { return byte(i % 16) }))
			bitHi := g.konst("bithi", bytesOf(64, func(i int) byte { return byte(16 + i%16) }))
			g.i("VMOVDQU64 %s, Z6", qhIdx)
			g.i("VPERMI2W Z1, Z0, Z6")
			g.i("VPSHUFBITQMB %s, Z6, K3", bitLo)
			g.i("VPSHUFBITQMB %s, Z6, K4", bitHi)
			g.i("VPADDB Z30, Z4, K3, Z4")
			g.i("VPADDB Z30, Z5, K4, Z5")
		}
	}
	if t.e8m0 {
		// The 4 scale bytes to dword lanes 0-3, then E8M0 to float32
		// bits: max((e-1)<<23, (e+1)<<21) (see mxfp4).
		eIdx := g.konst("e8m0"+t.name, bytesOf(64, func(i int) byte {
			if i < 16 && i%4 == 0 {
				return byte(t.bs * (i / 4))
			}
			return 0
		}))
		lowB := g.konst("lowbyte", dwords(4, func(int) uint32 { return 0xff }))
		one := g.konst("one32", dwords(4, func(int) uint32 { return 1 }))
		g.i("VMOVDQU64 %s, Z7", eIdx)
		g.i("VPERMI2B Z1, Z0, Z7")
		g.i("VPAND %s, X7, X7", lowB)
		g.i("VPSUBD %s, X7, X6", one)
		g.i("VPSLLD $23, X6, X6")
		g.i("VPADDD %s, X7, X8", one)
		g.i("VPSLLD $21, X8, X8")
		g.i("VPMAXSD X6, X8, X8")
		return
	}
	g.i("VMOVDQU64 %s, Z7", dIdx)
	g.i("VPERMI2W Z1, Z0, Z7")
	if t.mo != 0 {
		g.i("VCVTPH2PS X7, Y8")
	} else {
		g.i("VCVTPH2PS X7, X8")
	}
}

// ---------------------------------------------------------------- AVX-512 legacy dot

// floatL512 turns the converted block sums f (in register F) into the
// blocks' float terms, following tensor.VecDot's formula for the family.
// dw, dx, mw, sx are memory operands (16 floats). Clobbers Z12, Z13.
func (g *gen) floatL512(t ltype, F, dw, dx, mw, sx string) {
	switch t.family {
	case 'A': // f·(dw·dx)
		g.i("VMOVUPS %s, Z12", dw)
		g.i("VMULPS %s, Z12, Z12", dx)
		g.i("VMULPS Z12, %s, %s", F, F)
	case 'B': // (f·dw)·dx
		g.i("VMULPS %s, %s, %s", dw, F, F)
		g.i("VMULPS %s, %s, %s", dx, F, F)
	case 'C': // (dw·dx)·f + mw·sx
		g.i("VMOVUPS %s, Z12", dw)
		g.i("VMULPS %s, Z12, Z12", dx)
		g.i("VMULPS %s, Z12, %s", F, F)
		g.i("VMOVUPS %s, Z13", mw)
		g.i("VMULPS %s, Z13, Z13", sx)
		g.i("VADDPS Z13, %s, %s", F, F)
	}
}

// dotRowsL512 is the legacy matrix-vector kernel. Rows go in batches of 16
// and, chunk by chunk (16 blocks), each row's groups are unpacked straight
// into registers (masked loads only at the row's end) and multiplied with
// the prepared activations, giving the 16 block terms of the row; the 16
// rows' terms are then transposed (lane r = row r) and added to the rows'
// accumulators block by block in order — tensor.VecDot's order for every
// row, 16 rows per vector add.
//
// Frame: T[16][16] at 0, acc at 1024, locals from 1088.
func (g *gen) dotRowsL512(t ltype) {
	const (
		fT     = 0
		fAcc   = 1024
		fRow0  = 1088 // first row of the batch
		fY     = 1096
		fLeft  = 1104
		fBatch = 1112
		fCO    = 1120 // chunk offset in the row (bytes)
		fC     = 1128 // chunk index
	)
	G := 4 * t.bs
	need := 128
	if t.q8 {
		need = 136
	}
	name := "dotRows" + t.name + "AVX512"
	g.text(name, 1152, name+": y[r] = dot(row r, x) for each row (legacy "+t.name+").")
	idxE := g.konst("pairE", dwords(16, func(i int) uint32 { return uint32(2 * i) }))
	idxO := g.konst("pairO", dwords(16, func(i int) uint32 { return uint32(2*i + 1) }))
	merge := func(a, b, out, tmp string) {
		g.i("VMOVDQU64 %s, %s", idxE, out)
		g.i("VPERMI2D %s, %s, %s", b, a, out)
		g.i("VMOVDQU64 %s, %s", idxO, tmp)
		g.i("VPERMI2D %s, %s, %s", b, a, tmp)
		g.i("VPADDD %s, %s, %s", tmp, out, out)
	}
	g.i("MOVQ %d(R14), AX", aW)
	g.i("MOVQ AX, %d(SP)", fRow0)
	g.i("MOVQ %d(R14), AX", aY)
	g.i("MOVQ AX, %d(SP)", fY)
	g.i("MOVQ %d(R14), AX", aRows)
	g.i("MOVQ AX, %d(SP)", fLeft)
	batch := g.lbl("batch")
	g.label(batch)
	g.i("MOVQ %d(SP), AX", fLeft)
	g.i("MOVL $16, BX")
	g.i("CMPQ AX, BX")
	g.i("CMOVQLT AX, BX")
	g.i("MOVQ BX, %d(SP)", fBatch)
	g.i("VPXORD Z0, Z0, Z0")
	g.i("VMOVUPS Z0, %d(SP)", fAcc)
	g.i("MOVQ $0, %d(SP)", fCO)
	g.i("MOVQ $0, %d(SP)", fC)
	chunk := g.lbl("chunk")
	g.label(chunk)
	g.unpackL512Consts(t)
	g.i("MOVQ %d(SP), CX", fC)
	g.i("SHLQ $9, CX")
	g.i("MOVQ %d(SP), AX", fC)
	g.i("SHLQ $6, AX")
	g.i("MOVQ %d(R14), R10", aX)
	g.i("ADDQ CX, R10")
	for _, f := range []struct {
		off int
		reg string
	}{{aA1, "R11"}, {aA2, "R12"}, {aA3, "R13"}} {
		g.i("MOVQ %d(R14), %s", f.off, f.reg)
		g.i("ADDQ AX, %s", f.reg)
	}
	g.i("MOVQ %d(SP), R8", fRow0)
	g.i("ADDQ %d(SP), R8", fCO) // row r at the chunk
	g.i("MOVQ %d(R14), R9", aStride)
	g.i("MOVQ %d(SP), CX", fBatch)
	g.i("LEAQ %d(SP), DI", fT)
	row := g.lbl("row")
	g.label(row)
	g.i("MOVQ R8, SI")
	g.i("MOVQ %d(SP), DX", fC)
	g.i("IMUL3Q $%d, DX, DX", -4*G)
	g.i("ADDQ %d(R14), DX", aRowB) // bytes of the row from the chunk on
	accs := []string{"Z9", "Z10", "Z11", "Z12"}
	for gg := 0; gg < 4; gg++ {
		masked, empty, have := g.lbl("gmask"), g.lbl("gempty"), g.lbl("ghave")
		g.i("CMPQ DX, $%d", need)
		g.i("JLT %s", masked)
		g.unpackGroupL512(t, false)
		g.i("JMP %s", have)
		g.label(masked)
		g.i("CMPQ DX, $0")
		g.i("JLE %s", empty)
		g.masksL512(t)
		g.unpackGroupL512(t, true)
		g.i("JMP %s", have)
		g.label(empty)
		g.i("VPXORD Z4, Z4, Z4")
		g.i("VPXORD Z5, Z5, Z5")
		g.i("VXORPS Y8, Y8, Y8")
		g.label(have)
		acc := accs[gg]
		g.i("VPXORD %s, %s, %s", acc, acc, acc)
		g.i("VPDPBUSD %d(R10), Z4, %s", 128*gg, acc)
		g.i("VPDPBUSD %d(R10), Z5, %s", 128*gg+64, acc)
		if gg == 0 {
			g.i("VMOVAPS X8, X13")
			if t.mo != 0 {
				g.i("VEXTRACTF128 $1, Y8, X14")
			}
		} else {
			g.i("VINSERTF32X4 $%d, X8, Z13, Z13", gg)
			if t.mo != 0 {
				g.i("VEXTRACTF128 $1, Y8, X6")
				g.i("VINSERTF32X4 $%d, X6, Z14, Z14", gg)
			}
		}
		g.i("ADDQ $%d, SI", G)
		g.i("SUBQ $%d, DX", G)
	}
	merge("Z9", "Z10", "Z15", "Z19")
	merge("Z11", "Z12", "Z16", "Z19")
	merge("Z15", "Z16", "Z17", "Z19")
	g.i("VPADDD (R11), Z17, Z17")
	g.i("VCVTDQ2PS Z17, Z17")
	g.floatL512(t, "Z17", "Z13", "(R12)", "Z14", "(R13)")
	g.i("VMOVUPS Z17, (DI)")
	g.i("ADDQ $64, DI")
	g.i("ADDQ R9, R8")
	g.i("DECQ CX")
	g.i("JNZ %s", row)
	// Transpose the terms (rows beyond the batch are stale: their lanes are
	// never stored) and add them block by block.
	for r := 0; r < 16; r++ {
		g.i("VMOVUPS %d(SP), Z%d", fT+64*r, r)
	}
	out := g.transpose16()
	g.i("VMOVUPS %d(SP), Z16", fAcc)
	for b := 0; b < 16; b++ {
		g.i("VADDPS Z%d, Z16, Z16", out[b])
	}
	g.i("VMOVUPS Z16, %d(SP)", fAcc)
	g.i("MOVQ %d(R14), AX", aCStr)
	g.i("ADDQ AX, %d(SP)", fCO)
	g.i("INCQ %d(SP)", fC)
	g.i("MOVQ %d(SP), AX", fC)
	g.i("SHLQ $4, AX")
	g.i("CMPQ AX, %d(R14)", aNB)
	g.i("JLT %s", chunk)
	g.i("MOVQ %d(SP), CX", fBatch)
	g.i("MOVQ $-1, AX")
	g.i("BZHIQ CX, AX, AX")
	g.i("KMOVW AX, K5")
	g.i("MOVQ %d(SP), AX", fY)
	g.i("VMOVUPS Z16, K5, (AX)")
	g.i("LEAQ (AX)(CX*4), AX")
	g.i("MOVQ AX, %d(SP)", fY)
	g.i("MOVQ %d(R14), AX", aBStr)
	g.i("ADDQ AX, %d(SP)", fRow0)
	g.i("SUBQ CX, %d(SP)", fLeft)
	g.i("JGT %s", batch)
	g.ret()
}

// dotRowsShortL512 is dotRowsL512 for rows of at most 4 blocks (one
// group; attention heads of 64 or 128 values). Each row is unpacked
// straight into registers (the load masks are the same for every row), 4
// rows fill a 16-lane chunk (lane 4g+j: row g, block j) against the
// prepared activations whose scalars (CORR, DX, SX) are replicated 4
// times, and after regrouping 16 rows to one lane each, the 4 block terms
// are added in order. Rows beyond the end reuse the last row.
func (g *gen) dotRowsShortL512(t ltype) {
	name := "dotRowsShort" + t.name + "AVX512"
	g.text(name, 0, name+": y[r] = dot(row r, x), rows of at most 4 blocks ("+t.name+").")
	pick := func(j int) string {
		return g.konst(fmt.Sprintf("short%d", j), dwords(16, func(i int) uint32 {
			if i < 8 {
				return uint32(16*(i/4) + 4*(i%4) + j)
			}
			return 0
		}))
	}
	idxE := g.konst("pairE", dwords(16, func(i int) uint32 { return uint32(2 * i) }))
	idxO := g.konst("pairO", dwords(16, func(i int) uint32 { return uint32(2*i + 1) }))
	merge := func(a, b, out, tmp string) {
		g.i("VMOVDQU64 %s, %s", idxE, out)
		g.i("VPERMI2D %s, %s, %s", b, a, out)
		g.i("VMOVDQU64 %s, %s", idxO, tmp)
		g.i("VPERMI2D %s, %s, %s", b, a, tmp)
		g.i("VPADDD %s, %s, %s", tmp, out, out)
	}
	g.unpackL512Consts(t)
	g.i("MOVQ %d(R14), DX", aRowB)
	g.masksL512(t)
	g.i("MOVQ %d(R14), SI", aW)
	g.i("MOVQ %d(R14), DX", aStride)
	g.i("MOVQ %d(R14), CX", aRows) // rows left (row granularity)
	g.i("MOVQ CX, R8")             // rows left at the batch
	g.i("MOVQ %d(R14), DI", aY)
	g.i("MOVQ %d(R14), R10", aX)
	g.i("MOVQ %d(R14), R11", aA1)
	g.i("MOVQ %d(R14), R12", aA2)
	g.i("MOVQ %d(R14), R13", aA3)
	batch := g.lbl("batch")
	g.label(batch)
	accs := []string{"Z9", "Z10", "Z11", "Z12"}
	for q := 0; q < 4; q++ {
		for gg := 0; gg < 4; gg++ {
			g.unpackGroupL512(t, true)
			acc := accs[gg]
			g.i("VPXORD %s, %s, %s", acc, acc, acc)
			g.i("VPDPBUSD (R10), Z4, %s", acc)
			g.i("VPDPBUSD 64(R10), Z5, %s", acc)
			if gg == 0 {
				g.i("VMOVAPS X8, X13")
				if t.mo != 0 {
					g.i("VEXTRACTF128 $1, Y8, X14")
				}
			} else {
				g.i("VINSERTF32X4 $%d, X8, Z13, Z13", gg)
				if t.mo != 0 {
					g.i("VEXTRACTF128 $1, Y8, X6")
					g.i("VINSERTF32X4 $%d, X6, Z14, Z14", gg)
				}
			}
			g.i("MOVQ SI, AX")
			g.i("ADDQ DX, AX")
			g.i("DECQ CX")
			g.i("CMOVQGT AX, SI")
		}
		merge("Z9", "Z10", "Z15", "Z19")
		merge("Z11", "Z12", "Z16", "Z19")
		merge("Z15", "Z16", "Z17", "Z19")
		g.i("VPADDD (R11), Z17, Z17")
		g.i("VCVTDQ2PS Z17, Z17")
		g.floatL512(t, "Z17", "Z13", "(R12)", "Z14", "(R13)")
		g.i("VMOVAPS Z17, Z%d", 20+q)
	}
	// Regroup: V_j lane r = term (row r, block j); acc = ((0+V0)+V1)+V2)+V3.
	g.i("VXORPS Z26, Z26, Z26")
	for j := 0; j < 4; j++ {
		p := pick(j)
		g.i("VMOVDQU64 %s, Z24", p)
		g.i("VPERMI2D Z21, Z20, Z24")
		g.i("VMOVDQU64 %s, Z25", p)
		g.i("VPERMI2D Z23, Z22, Z25")
		g.i("VINSERTF64X4 $1, Y25, Z24, Z24")
		g.i("VADDPS Z24, Z26, Z26")
	}
	g.i("MOVL $16, BX")
	g.i("CMPQ R8, BX")
	g.i("CMOVQLT R8, BX")
	g.i("MOVQ $-1, AX")
	g.i("BZHIQ BX, AX, AX")
	g.i("KMOVW AX, K5")
	g.i("VMOVUPS Z26, K5, (DI)")
	g.i("ADDQ $64, DI")
	g.i("SUBQ $16, R8")
	g.i("JGT %s", batch)
	g.ret()
}

// unpackRowsL512 unpacks a.rows rows (a.w, a.stride) into canonical rows at
// a.u, a.u+a.ustride, ... (U at offset 0, DW at a.c1-a.u, MW at a.c2-a.u
// of each).
func (g *gen) unpackRowsL512(t ltype) {
	g.text("unpackRows"+t.name+"AVX512", 64, "unpackRows"+t.name+"AVX512: canonical legacy rows for the GEMM panel.")
	g.unpackL512Consts(t)
	g.i("MOVQ %d(R14), AX", aW)
	g.i("MOVQ AX, 0(SP)")
	g.i("MOVQ %d(R14), AX", aU)
	g.i("MOVQ AX, 8(SP)")
	g.i("MOVQ %d(R14), AX", aRows)
	g.i("MOVQ AX, 16(SP)")
	row := g.lbl("row")
	g.label(row)
	g.i("MOVQ 0(SP), SI")
	g.i("MOVQ %d(R14), DX", aRowB)
	g.i("MOVQ 8(SP), DI")
	g.i("MOVQ %d(R14), R8", aC1)
	g.i("SUBQ %d(R14), R8", aU)
	g.i("ADDQ DI, R8")
	g.i("MOVQ %d(R14), R9", aC2)
	g.i("SUBQ %d(R14), R9", aU)
	g.i("ADDQ DI, R9")
	g.unpackL512(t)
	g.i("MOVQ %d(R14), AX", aStride)
	g.i("ADDQ AX, 0(SP)")
	g.i("MOVQ %d(R14), AX", aUStr)
	g.i("ADDQ AX, 8(SP)")
	g.i("DECQ 16(SP)")
	g.i("JNZ %s", row)
	g.ret()
}

// ---------------------------------------------------------------- AVX-512 transpose

// transpose16 transposes the 16×16 dword matrix in Z0-Z15 (row r in Zr).
// It returns the register holding each column c (the 16 dwords at index c
// of every row, row r in lane r). Uses Z16-Z31.
func (g *gen) transpose16() [16]int {
	// Stage 1: interleave dwords of row pairs.
	for i := 0; i < 8; i++ {
		g.i("VPUNPCKLDQ Z%d, Z%d, Z%d", 2*i+1, 2*i, 16+2*i)
		g.i("VPUNPCKHDQ Z%d, Z%d, Z%d", 2*i+1, 2*i, 16+2*i+1)
	}
	// Stage 2: interleave qwords. For rows 4q..4q+3: T(4q+0..3) = 16+8q+{0,1,2,3}
	// (lo(r0,r1), hi(r0,r1), lo(r2,r3), hi(r2,r3)).
	// V[q][j] holds, in 128-bit lane l, rows 4q..4q+3 at column 4l+j.
	var V [4][4]int
	for q := 0; q < 4; q++ {
		t0, t1, t2, t3 := 16+4*q, 16+4*q+1, 16+4*q+2, 16+4*q+3
		g.i("VPUNPCKLQDQ Z%d, Z%d, Z%d", t2, t0, 4*q+0)
		g.i("VPUNPCKHQDQ Z%d, Z%d, Z%d", t2, t0, 4*q+1)
		g.i("VPUNPCKLQDQ Z%d, Z%d, Z%d", t3, t1, 4*q+2)
		g.i("VPUNPCKHQDQ Z%d, Z%d, Z%d", t3, t1, 4*q+3)
		V[q] = [4]int{4 * q, 4*q + 1, 4*q + 2, 4*q + 3}
	}
	// Stage 3 and 4: 4×4 transpose of 128-bit lanes for each j.
	var out [16]int
	for j := 0; j < 4; j++ {
		w := [4]int{16 + 4*j, 16 + 4*j + 1, 16 + 4*j + 2, 16 + 4*j + 3}
		g.i("VSHUFI32X4 $0x44, Z%d, Z%d, Z%d", V[1][j], V[0][j], w[0]) // V0.l0 V0.l1 V1.l0 V1.l1
		g.i("VSHUFI32X4 $0xee, Z%d, Z%d, Z%d", V[1][j], V[0][j], w[1]) // V0.l2 V0.l3 V1.l2 V1.l3
		g.i("VSHUFI32X4 $0x44, Z%d, Z%d, Z%d", V[3][j], V[2][j], w[2])
		g.i("VSHUFI32X4 $0xee, Z%d, Z%d, Z%d", V[3][j], V[2][j], w[3])
	}
	for j := 0; j < 4; j++ {
		w := [4]int{16 + 4*j, 16 + 4*j + 1, 16 + 4*j + 2, 16 + 4*j + 3}
		// column 4l+j: [V0.l, V1.l, V2.l, V3.l]
		g.i("VSHUFI32X4 $0x88, Z%d, Z%d, Z%d", w[2], w[0], 4*j+0) // l=0: W0.l0, W0.l2, W2.l0, W2.l2
		g.i("VSHUFI32X4 $0xdd, Z%d, Z%d, Z%d", w[2], w[0], 4*j+1) // l=1
		g.i("VSHUFI32X4 $0x88, Z%d, Z%d, Z%d", w[3], w[1], 4*j+2) // l=2
		g.i("VSHUFI32X4 $0xdd, Z%d, Z%d, Z%d", w[3], w[1], 4*j+3) // l=3
		for l := 0; l < 4; l++ {
			out[4*l+j] = 4*j + l
		}
	}
	return out
}

// transposeL512 builds the GEMM panel of 16 canonical legacy rows:
// record b (REC bytes): 8 vectors W[d] (lane r = dword d of row r's block
// b), then DW (lane r = row r's scale), then MW for family C.
func (g *gen) transposeL512(name string, rec int, withM bool) {
	g.text(name, 64, name+": GEMM panel (lanes = 16 rows) from canonical legacy rows.")
	// groups: a.nb blocks → (nb+3)/4 groups; DW chunks: (nb+15)/16.
	g.i("MOVQ %d(R14), CX", aNB)
	g.i("ADDQ $3, CX")
	g.i("SHRQ $2, CX")
	g.i("MOVQ CX, 0(SP)") // groups left
	g.i("MOVQ %d(R14), SI", aU)
	g.i("MOVQ %d(R14), DI", aPanel)
	g.i("MOVQ %d(R14), DX", aUStr)
	grp := g.lbl("grp")
	g.label(grp)
	for h := 0; h < 2; h++ {
		g.i("MOVQ SI, AX")
		for r := 0; r < 16; r++ {
			g.i("VMOVDQU64 %d(AX), Z%d", 64*h, r)
			if r < 15 {
				g.i("ADDQ DX, AX")
			}
		}
		out := g.transpose16()
		for c := 0; c < 16; c++ {
			blk, gg := c/4, c%4
			d := 4*h + gg
			g.i("VMOVDQU64 Z%d, %d(DI)", out[c], blk*rec+64*d)
		}
	}
	g.i("ADDQ $128, SI")
	g.i("ADDQ $%d, DI", 4*rec)
	g.i("DECQ 0(SP)")
	g.i("JNZ %s", grp)
	// Scales.
	fields := []int{aC1}
	if withM {
		fields = append(fields, aC2)
	}
	for fi, f := range fields {
		g.i("MOVQ %d(R14), CX", aNB)
		g.i("ADDQ $15, CX")
		g.i("SHRQ $4, CX")
		g.i("MOVQ CX, 0(SP)")
		g.i("MOVQ %d(R14), SI", f)
		g.i("MOVQ %d(R14), DI", aPanel)
		ch := g.lbl("sch")
		g.label(ch)
		g.i("MOVQ SI, AX")
		for r := 0; r < 16; r++ {
			g.i("VMOVDQU64 (AX), Z%d", r)
			if r < 15 {
				g.i("ADDQ DX, AX")
			}
		}
		out := g.transpose16()
		for c := 0; c < 16; c++ {
			g.i("VMOVDQU64 Z%d, %d(DI)", out[c], c*rec+512+64*fi)
		}
		g.i("ADDQ $64, SI")
		g.i("ADDQ $%d, DI", 16*rec)
		g.i("DECQ 0(SP)")
		g.i("JNZ %s", ch)
	}
	g.ret()
}

// ---------------------------------------------------------------- AVX-512 legacy GEMM micro-kernel

// Activation pack (per tile of 8 tokens): record (b·8+t)·48: qs[32] (raw),
// corr int32 at 32, dx float32 at 36, sx float32 at 40.
const packRecL = 48

// gemmL512 is the 16-row × 8-token micro-kernel for a legacy family:
// panel a.panel (nb records of rec bytes), pack a.pack, a.nb blocks;
// writes the 8×16 outputs (token-major) to a.y.
func (g *gen) gemmL512(fam byte, rec int) {
	name := fmt.Sprintf("gemmL%cAVX512", fam)
	g.text(name, 0, name+": 16 rows × 8 tokens, legacy family "+string(fam)+".")
	g.i("MOVQ %d(R14), SI", aPanel)
	g.i("MOVQ %d(R14), DI", aPack)
	g.i("MOVQ %d(R14), CX", aNB)
	acc := func(t int) string { return z(16 + t) }
	ints := []int{10, 11, 12, 13, 14, 15, 24, 25}
	for t := 0; t < 8; t++ {
		g.i("VPXORD %s, %s, %s", acc(t), acc(t), acc(t))
	}
	loop := g.lbl("blk")
	g.label(loop)
	for d := 0; d < 8; d++ {
		g.i("VMOVDQU64 %d(SI), Z%d", 64*d, d)
	}
	g.i("VMOVUPS 512(SI), Z8")
	if fam == 'C' {
		g.i("VMOVUPS 576(SI), Z9")
	}
	for t := 0; t < 8; t++ {
		g.i("VPBROADCASTD %d(DI), Z%d", packRecL*t+32, ints[t])
	}
	for d := 0; d < 8; d++ {
		for t := 0; t < 8; t++ {
			g.i("VPDPBUSD.BCST %d(DI), Z%d, Z%d", packRecL*t+4*d, d, ints[t])
		}
	}
	for t := 0; t < 8; t++ {
		I := z(ints[t])
		dx := fmt.Sprintf("%d(DI)", packRecL*t+36)
		sx := fmt.Sprintf("%d(DI)", packRecL*t+40)
		g.i("VCVTDQ2PS %s, %s", I, I)
		switch fam {
		case 'A':
			g.i("VMULPS.BCST %s, Z8, Z26", dx)
			g.i("VMULPS Z26, %s, %s", I, I)
		case 'B':
			g.i("VMULPS Z8, %s, %s", I, I)
			g.i("VMULPS.BCST %s, %s, %s", dx, I, I)
		case 'C':
			g.i("VMULPS.BCST %s, Z8, Z26", dx)
			g.i("VMULPS %s, Z26, %s", I, I)
			g.i("VMULPS.BCST %s, Z9, Z27", sx)
			g.i("VADDPS Z27, %s, %s", I, I)
		}
		g.i("VADDPS %s, %s, %s", I, acc(t), acc(t))
	}
	g.i("ADDQ $%d, SI", rec)
	g.i("ADDQ $%d, DI", 8*packRecL)
	g.i("DECQ CX")
	g.i("JNZ %s", loop)
	g.i("MOVQ %d(R14), AX", aY)
	for t := 0; t < 8; t++ {
		g.i("VMOVUPS %s, %d(AX)", acc(t), 64*t)
	}
	g.ret()
}

// ---------------------------------------------------------------- AVX-512 K-quants

type ktype struct {
	name string
	bs   int // bytes per super-block
	q6   bool
	q5   bool
}

var ktypes = []ktype{
	{name: "Q4_K", bs: 144},
	{name: "Q5_K", bs: 176, q5: true},
	{name: "Q6_K", bs: 210, q6: true},
}

// unpackK512 emits the unpacking of one K-quant row into the canonical
// form (layout_amd64.go). In: SI row, CX super-blocks, DI U, R8 SM, R9 D,
// R12 DMIN. Clobbers AX, BX, DX, R11, R13, Z0-Z5, Z13-Z15.
func (g *gen) unpackK512(t ktype) {
	loop := g.lbl("ksb")
	g.bcastB("Z15", 0x0f)
	if t.q5 {
		g.bcastB("Z13", 0x10)
	}
	if t.q6 {
		g.bcastB("Z14", 0x30)
		cl := g.konst("q6sl", words(32, func(i int) uint16 { return map[bool]uint16{true: 4, false: 2}[i < 16] }))
		cr := g.konst("q6sr", words(32, func(i int) uint16 { return map[bool]uint16{true: 0, false: 2}[i < 16] }))
		g.i("VMOVDQU64 %s, Z12", cl)
		g.i("VMOVDQU64 %s, Z11", cr)
	}
	g.label(loop)
	switch {
	case t.q6:
		for h := 0; h < 2; h++ {
			g.i("VMOVDQU64 %d(SI), Z0", 64*h)
			g.i("VBROADCASTI64X4 %d(SI), Z1", 128+32*h)
			g.i("VPSLLVW Z12, Z1, Z2")
			g.i("VPANDD Z15, Z0, Z3")
			g.i("VPTERNLOGD $0xf8, Z14, Z2, Z3")
			g.i("VMOVDQU64 Z3, %d(DI)", 128*h)
			g.i("VPSRLVW Z11, Z1, Z2")
			g.i("VPSRLW $4, Z0, Z4")
			g.i("VPANDD Z15, Z4, Z4")
			g.i("VPTERNLOGD $0xf8, Z14, Z2, Z4")
			g.i("VMOVDQU64 Z4, %d(DI)", 128*h+64)
		}
		g.i("VPMOVSXBD 192(SI), Z5")
		g.i("VMOVDQU32 Z5, (R8)")
		g.i("MOVWLZX 208(SI), AX")
		g.i("VMOVD AX, X2")
		g.i("VCVTPH2PS X2, X2")
		g.i("VMOVSS X2, (R9)")
	default:
		qo := 16
		if t.q5 {
			qo = 48
			g.i("VMOVDQU 16(SI), Y14")
		}
		for c := 0; c < 4; c++ {
			g.i("VMOVDQU %d(SI), Y0", qo+32*c)
			g.i("VPSRLW $4, Y0, Y1")
			g.i("VPAND Y15, Y0, Y0")
			g.i("VPAND Y15, Y1, Y1")
			if t.q5 {
				sh := func(s int, dst string) {
					switch {
					case s > 0:
						g.i("VPSLLW $%d, Y14, %s", s, dst)
					case s < 0:
						g.i("VPSRLW $%d, Y14, %s", -s, dst)
					default:
						g.i("VMOVDQU Y14, %s", dst)
					}
				}
				sh(4-2*c, "Y2")
				g.i("VPTERNLOGD $0xf8, Y13, Y2, Y0")
				sh(3-2*c, "Y3")
				g.i("VPTERNLOGD $0xf8, Y13, Y3, Y1")
			}
			g.i("VMOVDQU Y0, %d(DI)", 64*c)
			g.i("VMOVDQU Y1, %d(DI)", 64*c+32)
		}
		// Scales and mins (ggml's get_scale_min_k4, four at a time).
		g.i("MOVL 4(SI), AX")
		g.i("MOVL 8(SI), BX")
		g.i("MOVL 12(SI), DX")
		g.i("MOVL DX, R13")
		g.i("SHRL $4, R13")
		g.i("ANDL $0x0f0f0f0f, R13")
		g.i("MOVL BX, R11")
		g.i("SHRL $6, R11")
		g.i("ANDL $0x03030303, R11")
		g.i("SHLL $4, R11")
		g.i("ORL R11, R13") // mins 4..7
		g.i("MOVL BX, R11")
		g.i("ANDL $0x3f3f3f3f, R11") // mins 0..3
		g.i("ANDL $0x0f0f0f0f, DX")
		g.i("MOVL AX, BX")
		g.i("SHRL $6, BX")
		g.i("ANDL $0x03030303, BX")
		g.i("SHLL $4, BX")
		g.i("ORL DX, BX")           // scales 4..7
		g.i("ANDL $0x3f3f3f3f, AX") // scales 0..3
		g.i("SHLQ $32, BX")
		g.i("ORQ BX, AX")
		g.i("VMOVQ AX, X0")
		g.i("VPMOVZXBD X0, Y0")
		g.i("VMOVDQU Y0, (R8)")
		g.i("SHLQ $32, R13")
		g.i("ORQ R13, R11")
		g.i("VMOVQ R11, X1")
		g.i("VPMOVZXBD X1, Y1")
		g.i("VMOVDQU Y1, 32(R8)")
		g.i("MOVL (SI), AX")
		g.i("VMOVD AX, X2")
		g.i("VCVTPH2PS X2, X2")
		g.i("VMOVSS X2, (R9)")
		g.i("VEXTRACTPS $1, X2, (R12)")
		g.i("ADDQ $4, R12")
	}
	g.i("ADDQ $%d, SI", t.bs)
	g.i("ADDQ $256, DI")
	g.i("ADDQ $64, R8")
	g.i("ADDQ $4, R9")
	g.i("DECQ CX")
	g.i("JNZ %s", loop)
}

// sumsFusedK512 emits the integer sums of one raw K-quant super-block
// against the Q8_K values, unpacking into registers. In: SI super-block,
// R10 the Q8_K values (row + 4 + 292s), R11 P (K45) or C6 (Q6_K). Out: X1
// lane 0 = isum, X5 lane 0 = imin (K45), X22 = d (and dmin in lane 1).
// Needs the unpackK512 constants (Z11-Z15). Clobbers AX, BX, DX, R12,
// R13, Z0-Z5, Z20-Z22.
func (g *gen) sumsFusedK512(t ktype) {
	g.i("VPXORD Z1, Z1, Z1")
	if t.q6 {
		g.i("VPMOVSXBD 192(SI), Z20") // scales (int32)
		for h := 0; h < 2; h++ {
			g.i("VMOVDQU64 %d(SI), Z0", 64*h)
			g.i("VBROADCASTI64X4 %d(SI), Z21", 128+32*h)
			g.i("VPSLLVW Z12, Z21, Z2")
			g.i("VPANDD Z15, Z0, Z3")
			g.i("VPTERNLOGD $0xf8, Z14, Z2, Z3") // elements 128h+0..63
			g.i("VPSRLVW Z11, Z21, Z2")
			g.i("VPSRLW $4, Z0, Z4")
			g.i("VPANDD Z15, Z4, Z4")
			g.i("VPTERNLOGD $0xf8, Z14, Z2, Z4") // elements 128h+64..127
			for k, u := range []string{"Z3", "Z4"} {
				c := 2*h + k
				idx := g.konst(fmt.Sprintf("k6sc%d", c), words(32, func(w int) uint16 { return uint16(2 * (4*c + w/8)) }))
				g.i("VPMADDUBSW %d(R10), %s, %s", 64*c, u, u)
				g.i("VMOVDQU64 %s, Z2", idx)
				g.i("VPERMW Z20, Z2, Z2")
				g.i("VPDPWSSD Z2, %s, Z1", u)
			}
		}
		g.i("VPMULLD (R11), Z20, Z4")
		g.i("VPADDD Z4, Z1, Z1")
		g.i("VEXTRACTI64X4 $1, Z1, Y5")
		g.i("VPADDD Y5, Y1, Y1")
		g.i("VEXTRACTI128 $1, Y1, X5")
		g.i("VPADDD X5, X1, X1")
		g.i("VPSHUFD $0x4e, X1, X5")
		g.i("VPADDD X5, X1, X1")
		g.i("VPSHUFD $0xb1, X1, X5")
		g.i("VPADDD X5, X1, X1")
		g.i("MOVWLZX 208(SI), AX")
		g.i("VMOVD AX, X22")
		g.i("VCVTPH2PS X22, X22")
		return
	}
	// Scales and mins (get_scale_min_k4, four at a time) into Y20, Y21.
	g.i("MOVL 4(SI), AX")
	g.i("MOVL 8(SI), BX")
	g.i("MOVL 12(SI), DX")
	g.i("MOVL DX, R13")
	g.i("SHRL $4, R13")
	g.i("ANDL $0x0f0f0f0f, R13")
	g.i("MOVL BX, R12")
	g.i("SHRL $6, R12")
	g.i("ANDL $0x03030303, R12")
	g.i("SHLL $4, R12")
	g.i("ORL R12, R13") // mins 4..7
	g.i("MOVL BX, R12")
	g.i("ANDL $0x3f3f3f3f, R12") // mins 0..3
	g.i("ANDL $0x0f0f0f0f, DX")
	g.i("MOVL AX, BX")
	g.i("SHRL $6, BX")
	g.i("ANDL $0x03030303, BX")
	g.i("SHLL $4, BX")
	g.i("ORL DX, BX")           // scales 4..7
	g.i("ANDL $0x3f3f3f3f, AX") // scales 0..3
	g.i("SHLQ $32, BX")
	g.i("ORQ BX, AX")
	g.i("VMOVQ AX, X20")
	g.i("VPMOVZXBD X20, Y20")
	g.i("SHLQ $32, R13")
	g.i("ORQ R13, R12")
	g.i("VMOVQ R12, X21")
	g.i("VPMOVZXBD X21, Y21")
	qo := 16
	if t.q5 {
		qo = 48
		g.i("VMOVDQU 16(SI), Y14")
	}
	for c := 0; c < 4; c++ {
		g.i("VMOVDQU %d(SI), Y0", qo+32*c)
		g.i("VPSRLW $4, Y0, Y2")
		g.i("VPAND Y15, Y0, Y0")
		g.i("VPAND Y15, Y2, Y2")
		if t.q5 {
			sh := func(s int, dst string) {
				switch {
				case s > 0:
					g.i("VPSLLW $%d, Y14, %s", s, dst)
				case s < 0:
					g.i("VPSRLW $%d, Y14, %s", -s, dst)
				default:
					g.i("VMOVDQU Y14, %s", dst)
				}
			}
			sh(4-2*c, "Y3")
			g.i("VPTERNLOGD $0xf8, Y13, Y3, Y0")
			sh(3-2*c, "Y3")
			g.i("VPTERNLOGD $0xf8, Y13, Y3, Y2")
		}
		g.i("VINSERTI64X4 $1, Y2, Z0, Z0") // elements 64c..64c+63
		idx := g.konst(fmt.Sprintf("k4sc%d", c), words(32, func(w int) uint16 { return uint16(2 * (2*c + w/16)) }))
		g.i("VPMADDUBSW %d(R10), Z0, Z0", 64*c)
		g.i("VMOVDQU64 %s, Z3", idx)
		g.i("VPERMW Z20, Z3, Z3")
		g.i("VPDPWSSD Z3, Z0, Z1")
	}
	g.i("VPMULLD (R11), Y21, Y4")
	g.i("VEXTRACTI64X4 $1, Z1, Y5")
	g.i("VPADDD Y5, Y1, Y1")
	g.i("VINSERTI64X4 $1, Y4, Z1, Z1")
	g.i("VPSHUFD $0x4e, Z1, Z5")
	g.i("VPADDD Z5, Z1, Z1")
	g.i("VPSHUFD $0xb1, Z1, Z5")
	g.i("VPADDD Z5, Z1, Z1")
	g.i("VSHUFI32X4 $0xb1, Z1, Z1, Z5")
	g.i("VPADDD Z5, Z1, Z1")
	g.i("VEXTRACTI32X4 $2, Z1, X5")
	g.i("MOVL (SI), AX")
	g.i("VMOVD AX, X22")
	g.i("VCVTPH2PS X22, X22")
}

// dotRowsK512 is the K-quant matrix-vector kernel. Rows go in batches of
// 16; for chunks of up to 16 super-blocks, each row's super-blocks are
// unpacked into registers and their integer sums and scales written to
// row-lane tables, then the float steps of tensor.VecDot run with one lane
// per row, super-block by super-block.
//
// Frame: ISUM [16 s][16 r]int32 at 0, IMIN at 1024, DR at 2048, DMR at
// 3072, acc at 4096, locals from 4160.
func (g *gen) dotRowsK512(t ktype) {
	const (
		fIS    = 0
		fIM    = 1024
		fDR    = 2048
		fDM    = 3072
		fAcc   = 4096
		fRow0  = 4160
		fY     = 4168
		fLeft  = 4176
		fBatch = 4184
		fR     = 4192
		fC     = 4200 // super-block index of the chunk
		fS     = 4216 // super-blocks in this chunk
	)
	g.text("dotRows"+t.name+"AVX512", 4288, "dotRows"+t.name+"AVX512: y[r] = dot(row r, x) for each row ("+t.name+").")
	g.bcastB("Z15", 0x0f)
	if t.q5 {
		g.bcastB("Z13", 0x10)
	}
	if t.q6 {
		g.bcastB("Z14", 0x30)
		cl := g.konst("q6sl", words(32, func(i int) uint16 { return map[bool]uint16{true: 4, false: 2}[i < 16] }))
		cr := g.konst("q6sr", words(32, func(i int) uint16 { return map[bool]uint16{true: 0, false: 2}[i < 16] }))
		g.i("VMOVDQU64 %s, Z12", cl)
		g.i("VMOVDQU64 %s, Z11", cr)
	}
	g.i("MOVQ %d(R14), AX", aW)
	g.i("MOVQ AX, %d(SP)", fRow0)
	g.i("MOVQ %d(R14), AX", aY)
	g.i("MOVQ AX, %d(SP)", fY)
	g.i("MOVQ %d(R14), AX", aRows)
	g.i("MOVQ AX, %d(SP)", fLeft)
	batch := g.lbl("batch")
	g.label(batch)
	g.i("MOVQ %d(SP), AX", fLeft)
	g.i("MOVL $16, BX")
	g.i("CMPQ AX, BX")
	g.i("CMOVQLT AX, BX")
	g.i("MOVQ BX, %d(SP)", fBatch)
	g.i("VPXORD Z0, Z0, Z0")
	g.i("VMOVUPS Z0, %d(SP)", fAcc)
	g.i("MOVQ $0, %d(SP)", fC)
	chunk := g.lbl("chunk")
	g.label(chunk)
	g.i("MOVQ %d(R14), AX", aNB)
	g.i("SUBQ %d(SP), AX", fC)
	g.i("MOVL $16, BX")
	g.i("CMPQ AX, BX")
	g.i("CMOVQLT AX, BX")
	g.i("MOVQ BX, %d(SP)", fS)
	g.i("MOVQ $0, %d(SP)", fR)
	rowl := g.lbl("row")
	g.label(rowl)
	// SI = row r at super-block c; R10 = x values at c; R11 = P/C6 at c.
	g.i("MOVQ %d(SP), BX", fC)
	g.i("MOVQ %d(SP), AX", fR)
	g.i("IMULQ %d(R14), AX", aStride)
	g.i("MOVQ %d(SP), SI", fRow0)
	g.i("ADDQ AX, SI")
	g.i("MOVQ BX, CX")
	g.i("SHRQ $4, CX")
	g.i("IMULQ %d(R14), CX", aCStr) // chunk c/16 of the row (c is a multiple of 16)
	g.i("ADDQ CX, SI")
	g.i("IMUL3Q $292, BX, CX")
	g.i("MOVQ %d(R14), R10", aX)
	g.i("LEAQ 4(R10)(CX*1), R10")
	g.i("MOVQ BX, CX")
	if t.q6 {
		g.i("SHLQ $6, CX")
	} else {
		g.i("SHLQ $5, CX")
	}
	g.i("MOVQ %d(R14), R11", aA1)
	g.i("ADDQ CX, R11")
	g.i("MOVQ %d(SP), R9", fR)
	g.i("SHLQ $2, R9") // table slot (s, r) = 64s + 4r
	g.i("MOVQ %d(SP), CX", fS)
	sb := g.lbl("sb")
	g.label(sb)
	g.sumsFusedK512(t)
	g.i("VMOVSS X1, %d(SP)(R9*1)", fIS)
	g.i("VMOVSS X22, %d(SP)(R9*1)", fDR)
	if !t.q6 {
		g.i("VMOVSS X5, %d(SP)(R9*1)", fIM)
		g.i("VEXTRACTPS $1, X22, %d(SP)(R9*1)", fDM)
	}
	g.i("ADDQ $%d, SI", t.bs)
	g.i("ADDQ $292, R10")
	if t.q6 {
		g.i("ADDQ $64, R11")
	} else {
		g.i("ADDQ $32, R11")
	}
	g.i("ADDQ $64, R9")
	g.i("DECQ CX")
	g.i("JNZ %s", sb)
	g.i("INCQ %d(SP)", fR)
	g.i("MOVQ %d(SP), AX", fR)
	g.i("CMPQ AX, %d(SP)", fBatch)
	g.i("JLT %s", rowl)
	// Float steps, one lane per row, super-blocks in order.
	g.i("VMOVUPS %d(SP), Z16", fAcc)
	g.i("MOVQ %d(SP), BX", fC)
	g.i("IMUL3Q $292, BX, CX")
	g.i("MOVQ %d(R14), R10", aX)
	g.i("ADDQ CX, R10") // d of super-block c of x
	g.i("XORQ R9, R9")
	g.i("MOVQ %d(SP), CX", fS)
	fl := g.lbl("fl")
	g.label(fl)
	g.i("VCVTDQ2PS %d(SP)(R9*1), Z1", fIS)
	g.i("VMOVUPS %d(SP)(R9*1), Z2", fDR)
	g.i("VMULPS.BCST (R10), Z2, Z2") // d = dw·dx
	g.i("VMULPS Z1, Z2, Z1")         // d·f
	g.i("VADDPS Z1, Z16, Z16")
	if !t.q6 {
		g.i("VCVTDQ2PS %d(SP)(R9*1), Z3", fIM)
		g.i("VMOVUPS %d(SP)(R9*1), Z4", fDM)
		g.i("VMULPS.BCST (R10), Z4, Z4") // dmin = dminw·dx
		g.i("VMULPS Z3, Z4, Z3")
		g.i("VSUBPS Z3, Z16, Z16")
	}
	g.i("ADDQ $292, R10")
	g.i("ADDQ $64, R9")
	g.i("DECQ CX")
	g.i("JNZ %s", fl)
	g.i("VMOVUPS Z16, %d(SP)", fAcc)
	g.i("MOVQ %d(SP), AX", fS)
	g.i("ADDQ AX, %d(SP)", fC)
	g.i("MOVQ %d(SP), AX", fC)
	g.i("CMPQ AX, %d(R14)", aNB)
	g.i("JLT %s", chunk)
	g.i("MOVQ %d(SP), CX", fBatch)
	g.i("MOVQ $-1, AX")
	g.i("BZHIQ CX, AX, AX")
	g.i("KMOVW AX, K1")
	g.i("MOVQ %d(SP), AX", fY)
	g.i("VMOVUPS Z16, K1, (AX)")
	g.i("LEAQ (AX)(CX*4), AX")
	g.i("MOVQ AX, %d(SP)", fY)
	g.i("MOVQ %d(R14), AX", aBStr)
	g.i("ADDQ AX, %d(SP)", fRow0)
	g.i("SUBQ CX, %d(SP)", fLeft)
	g.i("JGT %s", batch)
	g.ret()
}

// unpackRowsK512 unpacks a.rows K-quant rows into canonical rows a.ustride
// apart (for the GEMM panel).
func (g *gen) unpackRowsK512(t ktype) {
	g.text("unpackRows"+t.name+"AVX512", 64, "unpackRows"+t.name+"AVX512: canonical K-quant rows for the GEMM panel.")
	g.i("MOVQ %d(R14), AX", aW)
	g.i("MOVQ AX, 0(SP)")
	g.i("MOVQ %d(R14), AX", aU)
	g.i("MOVQ AX, 8(SP)")
	g.i("MOVQ %d(R14), AX", aRows)
	g.i("MOVQ AX, 16(SP)")
	row := g.lbl("row")
	g.label(row)
	g.i("MOVQ 0(SP), SI")
	g.i("MOVQ %d(R14), CX", aNB)
	g.i("MOVQ 8(SP), DI")
	for _, f := range []struct {
		off int
		reg string
	}{{aC1, "R8"}, {aC2, "R9"}, {aC3, "R12"}} {
		g.i("MOVQ %d(R14), %s", f.off, f.reg)
		g.i("SUBQ %d(R14), %s", aU, f.reg)
		g.i("ADDQ DI, %s", f.reg)
	}
	g.unpackK512(t)
	g.i("MOVQ %d(R14), AX", aStride)
	g.i("ADDQ AX, 0(SP)")
	g.i("MOVQ %d(R14), AX", aUStr)
	g.i("ADDQ AX, 8(SP)")
	g.i("DECQ 16(SP)")
	g.i("JNZ %s", row)
	g.ret()
}

// Panel records per super-block (lanes = 16 rows): W[64] (dword d of the
// 256 values), then SC[8], MP[8] (the mins doubled as int16 pairs,
// m_j | m_j<<16), D, DMIN for Q4_K/Q5_K (82 vectors); SC[16], D for Q6_K
// (81 vectors).
const (
	recK45 = 82 * 64
	recK6  = 81 * 64
)

func (g *gen) transposeK512(t ktype) {
	name := "transpose" + t.name + "AVX512"
	rec := recK45
	if t.q6 {
		rec = recK6
	}
	g.text(name, 64, name+": GEMM panel (lanes = 16 rows) from canonical "+t.name+" rows.")
	g.i("MOVQ %d(R14), DX", aUStr)
	g.i("MOVQ %d(R14), CX", aNB)
	g.i("MOVQ CX, 0(SP)")
	g.i("MOVQ %d(R14), SI", aU)
	g.i("MOVQ %d(R14), R8", aC1)
	g.i("MOVQ %d(R14), DI", aPanel)
	sb := g.lbl("sb")
	g.label(sb)
	for part := 0; part < 5; part++ {
		src := "SI"
		off := 64 * part
		if part == 4 {
			src, off = "R8", 0
		}
		g.i("MOVQ %s, AX", src)
		for r := 0; r < 16; r++ {
			g.i("VMOVDQU64 %d(AX), Z%d", off, r)
			if r < 15 {
				g.i("ADDQ DX, AX")
			}
		}
		out := g.transpose16()
		if part < 4 {
			for c := 0; c < 16; c++ {
				g.i("VMOVDQU64 Z%d, %d(DI)", out[c], 64*(16*part+c))
			}
			continue
		}
		if t.q6 {
			for c := 0; c < 16; c++ {
				g.i("VMOVDQU64 Z%d, %d(DI)", out[c], 64*(64+c))
			}
			continue
		}
		for c := 0; c < 8; c++ {
			g.i("VMOVDQU64 Z%d, %d(DI)", out[c], 64*(64+c))
		}
		for j := 0; j < 8; j++ {
			g.i("VPSLLD $16, Z%d, Z16", out[8+j])
			g.i("VPORD Z16, Z%d, Z%d", out[8+j], out[8+j])
			g.i("VMOVDQU64 Z%d, %d(DI)", out[8+j], 64*(72+j))
		}
	}
	g.i("ADDQ $256, SI")
	g.i("ADDQ $64, R8")
	g.i("ADDQ $%d, DI", rec)
	g.i("DECQ 0(SP)")
	g.i("JNZ %s", sb)
	// D (and DMIN), 16 super-blocks at a time.
	fields := []struct{ src, dst int }{{aC2, 80}}
	if !t.q6 {
		fields = []struct{ src, dst int }{{aC2, 80}, {aC3, 81}}
	}
	for _, f := range fields {
		g.i("MOVQ %d(R14), CX", aNB)
		g.i("ADDQ $15, CX")
		g.i("SHRQ $4, CX")
		g.i("MOVQ CX, 0(SP)")
		g.i("MOVQ %d(R14), SI", f.src)
		g.i("MOVQ %d(R14), DI", aPanel)
		ch := g.lbl("dch")
		g.label(ch)
		g.i("MOVQ SI, AX")
		for r := 0; r < 16; r++ {
			g.i("VMOVDQU64 (AX), Z%d", r)
			if r < 15 {
				g.i("ADDQ DX, AX")
			}
		}
		out := g.transpose16()
		for c := 0; c < 16; c++ {
			g.i("VMOVDQU64 Z%d, %d(DI)", out[c], c*rec+64*f.dst)
		}
		g.i("ADDQ $64, SI")
		g.i("ADDQ $%d, DI", 16*rec)
		g.i("DECQ 0(SP)")
		g.i("JNZ %s", ch)
	}
	g.ret()
}

// Activation pack for K (per tile of 8 tokens), record (s·8+t)·packRecK:
// qs[256] raw; K45: the raw bsums[16] (int16) at 256, dx at 288; Q6_K:
// c6[16] int32 at 256, dx at 320.
const packRecK = 336

func (g *gen) gemmK512(t ktype) {
	name := "gemm" + t.name + "AVX512"
	rec := recK45
	if t.q6 {
		rec = recK6
	}
	dxOff := 288
	if t.q6 {
		dxOff = 320
	}
	g.text(name, 0, name+": 16 rows × 8 tokens, "+t.name+".")
	g.i("MOVQ %d(R14), SI", aPanel)
	g.i("MOVQ %d(R14), DI", aPack)
	g.i("MOVQ %d(R14), CX", aNB)
	acc := func(i int) string { return z(24 + i) }
	sub := func(i int) string { return z(8 + i) }
	isum := func(i int) string { return z(16 + i) }
	for i := 0; i < 8; i++ {
		g.i("VPXORD %s, %s, %s", acc(i), acc(i), acc(i))
	}
	loop := g.lbl("sb")
	g.label(loop)
	for i := 0; i < 8; i++ {
		g.i("VPXORD %s, %s, %s", isum(i), isum(i), isum(i))
	}
	if !t.q6 {
		for k := 0; k < 8; k++ {
			for d := 0; d < 8; d++ {
				g.i("VMOVDQU64 %d(SI), Z%d", 64*(8*k+d), d)
			}
			for i := 0; i < 8; i++ {
				g.i("VPXORD %s, %s, %s", sub(i), sub(i), sub(i))
			}
			for d := 0; d < 8; d++ {
				for i := 0; i < 8; i++ {
					g.i("VPDPBUSD.BCST %d(DI), Z%d, %s", packRecK*i+32*k+4*d, d, sub(i))
				}
			}
			for i := 0; i < 8; i++ {
				g.i("VPMULLD %d(SI), %s, %s", 64*(64+k), sub(i), sub(i))
				g.i("VPADDD %s, %s, %s", sub(i), isum(i), isum(i))
			}
		}
		for j := 0; j < 8; j++ {
			g.i("VMOVDQU64 %d(SI), Z%d", 64*(72+j), j)
		}
		for i := 0; i < 8; i++ {
			g.i("VPXORD %s, %s, %s", sub(i), sub(i), sub(i))
			for j := 0; j < 8; j++ {
				g.i("VPDPWSSD.BCST %d(DI), Z%d, %s", packRecK*i+256+4*j, j, sub(i))
			}
		}
		g.i("VMOVUPS %d(SI), Z0", 64*80)
		g.i("VMOVUPS %d(SI), Z1", 64*81)
		for i := 0; i < 8; i++ {
			dx := fmt.Sprintf("%d(DI)", packRecK*i+dxOff)
			g.i("VCVTDQ2PS %s, %s", isum(i), isum(i))
			g.i("VMULPS.BCST %s, Z0, Z2", dx)
			g.i("VMULPS %s, Z2, %s", isum(i), isum(i))
			g.i("VADDPS %s, %s, %s", isum(i), acc(i), acc(i))
			g.i("VCVTDQ2PS %s, %s", sub(i), sub(i))
			g.i("VMULPS.BCST %s, Z1, Z3", dx)
			g.i("VMULPS %s, Z3, %s", sub(i), sub(i))
			g.i("VSUBPS %s, %s, %s", sub(i), acc(i), acc(i))
		}
	} else {
		for k2 := 0; k2 < 8; k2++ {
			for d := 0; d < 8; d++ {
				g.i("VMOVDQU64 %d(SI), Z%d", 64*(8*k2+d), d)
			}
			for h := 0; h < 2; h++ {
				k := 2*k2 + h
				for i := 0; i < 8; i++ {
					g.i("VPBROADCASTD %d(DI), %s", packRecK*i+256+4*k, sub(i))
				}
				for d := 0; d < 4; d++ {
					for i := 0; i < 8; i++ {
						g.i("VPDPBUSD.BCST %d(DI), Z%d, %s", packRecK*i+32*k2+16*h+4*d, 4*h+d, sub(i))
					}
				}
				for i := 0; i < 8; i++ {
					g.i("VPMULLD %d(SI), %s, %s", 64*(64+k), sub(i), sub(i))
					g.i("VPADDD %s, %s, %s", sub(i), isum(i), isum(i))
				}
			}
		}
		g.i("VMOVUPS %d(SI), Z4", 64*80)
		for i := 0; i < 8; i++ {
			dx := fmt.Sprintf("%d(DI)", packRecK*i+dxOff)
			g.i("VCVTDQ2PS %s, %s", isum(i), isum(i))
			g.i("VMULPS.BCST %s, Z4, Z6", dx)
			g.i("VMULPS %s, Z6, %s", isum(i), isum(i))
			g.i("VADDPS %s, %s, %s", isum(i), acc(i), acc(i))
		}
	}
	g.i("ADDQ $%d, SI", rec)
	g.i("ADDQ $%d, DI", 8*packRecK)
	g.i("DECQ CX")
	g.i("JNZ %s", loop)
	g.i("MOVQ %d(R14), AX", aY)
	for i := 0; i < 8; i++ {
		g.i("VMOVUPS %s, %d(AX)", acc(i), 64*i)
	}
	g.ret()
}

// ---------------------------------------------------------------- AVX-512 quantizers

// quantQ8_512 quantizes a.nb blocks of 32 float32 at a.x into Q8_0 (or
// Q8_1 when q81) at a.y, bit-identical to tensor.QuantizeRow without NaNs:
// amax = max|v| (order-free), d = amax/127, id = d≠0 ? 1/d : 0 (IEEE
// divisions), and q = roundf(v·id) computed as tensor's roundAway does:
// t = truncate(p) (VCVTTPS2DQ, like Go's int32(p) on amd64, 0x80000000 on
// overflow), r = p - float32(t) (exact), t±1 when |r| ≥ 0.5, then wrapped
// to int8 — the same result for every float32 p, overflow included. Q8_1's
// s = d·Σq sums the stored int8 values.
func (g *gen) quantQ8_512(q81 bool) {
	name := "quantQ8_0AVX512"
	bs, qo := 34, 2
	if q81 {
		name, bs, qo = "quantQ8_1AVX512", 36, 4
	}
	g.text(name, 0, name+": activation quantizer (tensor.QuantizeRow bit for bit).")
	g.i("MOVQ %d(R14), SI", aX)
	g.i("MOVQ %d(R14), DI", aY)
	g.i("MOVQ %d(R14), CX", aNB)
	g.i("MOVL $0x7fffffff, AX")
	g.i("VPBROADCASTD AX, Z31") // |.| mask
	g.i("MOVL $0x3f000000, AX")
	g.i("VPBROADCASTD AX, Z29") // 0.5
	g.i("MOVL $0xbf000000, AX")
	g.i("VPBROADCASTD AX, Z25")            // -0.5
	g.i("VPTERNLOGD $0xff, Z24, Z24, Z24") // -1 (int32)
	g.i("MOVL $0x42fe0000, AX")
	g.i("VMOVD AX, X28") // 127
	g.i("MOVL $0x3f800000, AX")
	g.i("VMOVD AX, X27") // 1
	g.i("VXORPS X26, X26, X26")
	loop := g.lbl("blk")
	g.label(loop)
	g.i("VMOVUPS (SI), Z0")
	g.i("VMOVUPS 64(SI), Z1")
	g.i("VANDPS Z31, Z0, Z2")
	g.i("VANDPS Z31, Z1, Z3")
	g.i("VMAXPS Z3, Z2, Z2")
	g.i("VEXTRACTF64X4 $1, Z2, Y3")
	g.i("VMAXPS Y3, Y2, Y2")
	g.i("VEXTRACTF128 $1, Y2, X3")
	g.i("VMAXPS X3, X2, X2")
	g.i("VPERMILPS $0x4e, X2, X3")
	g.i("VMAXPS X3, X2, X2")
	g.i("VPERMILPS $0xb1, X2, X3")
	g.i("VMAXPS X3, X2, X2")      // amax
	g.i("VDIVSS X28, X2, X4")     // d = amax/127
	g.i("VDIVSS X4, X27, X5")     // 1/d
	g.i("VCMPSS $4, X26, X4, K1") // d != 0
	g.i("VMOVSS.Z X5, X5, K1, X5")
	g.i("VCVTPS2PH $0, X4, X6")
	g.i("VPEXTRW $0, X6, (DI)")
	g.i("VBROADCASTSS X5, Z5")
	for h := 0; h < 2; h++ {
		v := z(h)
		g.i("VMULPS Z5, %s, %s", v, v) // p
		g.i("VCVTTPS2DQ %s, Z7", v)    // t
		g.i("VCVTDQ2PS Z7, Z8")
		g.i("VSUBPS Z8, %s, %s", v, v)    // r = p - t
		g.i("VCMPPS $13, Z29, %s, K2", v) // r >= 0.5
		g.i("VCMPPS $2, Z25, %s, K3", v)  // r <= -0.5
		g.i("VPSUBD Z24, Z7, K2, Z7")     // t+1
		g.i("VPADDD Z24, Z7, K3, Z7")     // t-1
		g.i("VPMOVDB Z7, %d(DI)", qo+16*h)
	}
	if q81 {
		g.i("VPMOVSXBD %d(DI), Z0", qo)
		g.i("VPMOVSXBD %d(DI), Z1", qo+16)
		g.i("VPADDD Z1, Z0, Z0")
		g.i("VEXTRACTI64X4 $1, Z0, Y1")
		g.i("VPADDD Y1, Y0, Y0")
		g.i("VEXTRACTI128 $1, Y0, X1")
		g.i("VPADDD X1, X0, X0")
		g.i("VPSHUFD $0x4e, X0, X1")
		g.i("VPADDD X1, X0, X0")
		g.i("VPSHUFD $0xb1, X0, X1")
		g.i("VPADDD X1, X0, X0")
		g.i("VCVTDQ2PS X0, X0")
		g.i("VMULSS X4, X0, X0")
		g.i("VCVTPS2PH $0, X0, X6")
		g.i("VPEXTRW $0, X6, 2(DI)")
	}
	g.i("ADDQ $128, SI")
	g.i("ADDQ $%d, DI", bs)
	g.i("DECQ CX")
	g.i("JNZ %s", loop)
	g.ret()
}

// quantQ8K512 quantizes a.nb super-blocks of 256 float32 into Q8_K: max is
// the first value of largest magnitude, iscale = -127/max, q =
// min(127, round-half-even(iscale·v)) (VCVTPS2DQ), d = 1/iscale, bsums of
// 16; an all-zero super-block is written as zeros.
func (g *gen) quantQ8K512() {
	g.text("quantQ8_KAVX512", 0, "quantQ8_KAVX512: activation quantizer (tensor.QuantizeRow bit for bit).")
	g.i("MOVQ %d(R14), SI", aX)
	g.i("MOVQ %d(R14), DI", aY)
	g.i("MOVQ %d(R14), CX", aNB)
	g.i("MOVL $0x7fffffff, AX")
	g.i("VPBROADCASTD AX, Z31")
	g.i("MOVL $127, AX")
	g.i("VPBROADCASTD AX, Z30")
	g.i("MOVL $0xc2fe0000, AX")
	g.i("VMOVD AX, X29") // -127
	g.i("MOVL $0x3f800000, AX")
	g.i("VMOVD AX, X28") // 1
	idxE := g.konst("pairE", dwords(16, func(i int) uint32 { return uint32(2 * i) }))
	idxO := g.konst("pairO", dwords(16, func(i int) uint32 { return uint32(2*i + 1) }))
	loop, zero, found, next := g.lbl("sb"), g.lbl("zero"), g.lbl("found"), g.lbl("next")
	g.label(loop)
	g.i("VANDPS (SI), Z31, Z0")
	for k := 1; k < 16; k++ {
		g.i("VANDPS %d(SI), Z31, Z1", 64*k)
		g.i("VMAXPS Z1, Z0, Z0")
	}
	g.i("VEXTRACTF64X4 $1, Z0, Y1")
	g.i("VMAXPS Y1, Y0, Y0")
	g.i("VEXTRACTF128 $1, Y0, X1")
	g.i("VMAXPS X1, X0, X0")
	g.i("VPERMILPS $0x4e, X0, X1")
	g.i("VMAXPS X1, X0, X0")
	g.i("VPERMILPS $0xb1, X0, X1")
	g.i("VMAXPS X1, X0, X0") // amax in every lane of X0
	g.i("VXORPS X1, X1, X1")
	g.i("VUCOMISS X1, X0")
	g.i("JEQ %s", zero)
	// First index whose magnitude is amax.
	g.i("VBROADCASTSS X0, Z2")
	g.i("XORQ BX, BX")
	scan := g.lbl("scan")
	g.label(scan)
	g.i("VANDPS (SI)(BX*4), Z31, Z1")
	g.i("VCMPPS $0, Z2, Z1, K1")
	g.i("KMOVW K1, AX")
	g.i("TESTL AX, AX")
	g.i("JNZ %s", found)
	g.i("ADDQ $16, BX")
	g.i("JMP %s", scan)
	g.label(found)
	g.i("TZCNTL AX, AX")
	g.i("ADDQ AX, BX")
	g.i("VMOVSS (SI)(BX*4), X1") // max (signed)
	g.i("VDIVSS X1, X29, X3")    // iscale = -127/max
	g.i("VDIVSS X3, X28, X4")    // d = 1/iscale
	g.i("VMOVSS X4, (DI)")
	g.i("VBROADCASTSS X3, Z25")
	for k := 0; k < 16; k++ {
		g.i("VMULPS %d(SI), Z25, Z%d", 64*k, k)
		g.i("VCVTPS2DQ Z%d, Z%d", k, k)
		g.i("VPMINSD Z30, Z%d, Z%d", k, k)
		g.i("VPMOVDB Z%d, %d(DI)", k, 4+16*k)
	}
	// bsums sum the stored int8 values.
	for k := 0; k < 16; k++ {
		g.i("VPMOVSXBD %d(DI), Z%d", 4+16*k, k)
	}
	// bsums: sixteen horizontal sums by pairwise merges.
	merge := func(a, b, out, tmp int) {
		g.i("VMOVDQU64 %s, Z%d", idxE, out)
		g.i("VPERMI2D Z%d, Z%d, Z%d", b, a, out)
		g.i("VMOVDQU64 %s, Z%d", idxO, tmp)
		g.i("VPERMI2D Z%d, Z%d, Z%d", b, a, tmp)
		g.i("VPADDD Z%d, Z%d, Z%d", tmp, out, out)
	}
	// Level 1: 16 → 8 (into Z16-Z23), 2: → 4 (Z0-Z3), 3: → 2 (Z16,Z17), 4: → 1 (Z0).
	for i := 0; i < 8; i++ {
		merge(2*i, 2*i+1, 16+i, 24)
	}
	for i := 0; i < 4; i++ {
		merge(16+2*i, 16+2*i+1, i, 24)
	}
	merge(0, 1, 16, 24)
	merge(2, 3, 17, 24)
	merge(16, 17, 0, 24)
	g.i("VPMOVDW Z0, %d(DI)", 260)
	g.i("JMP %s", next)
	g.label(zero)
	g.i("VPXORD Z0, Z0, Z0")
	for o := 0; o+64 <= 256; o += 64 {
		g.i("VMOVDQU64 Z0, %d(DI)", o)
	}
	g.i("VMOVDQU64 Z0, 228(DI)") // bytes 228..291
	g.label(next)
	g.i("ADDQ $1024, SI")
	g.i("ADDQ $292, DI")
	g.i("DECQ CX")
	g.i("JNZ %s", loop)
	g.ret()
}

// ---------------------------------------------------------------- AVX-512 axpy

// dequantL512 emits the dequantization of the legacy block at (DX) into
// Z0 (elements 0-15) and Z1 (16-31), exactly as tensor.DequantizeRow.
// Needs X31 = 0x0f bytes, Z30 = 16 (int32) for Q5, Z29 = 8 or 16 (int32)
// offset, Z28 = IQ4_NL levels (float32). Clobbers Z2-Z4, K1, K2.
func (g *gen) dequantL512(t ltype) {
	g.i("VPBROADCASTW (DX), X2")
	g.i("VCVTPH2PS X2, X2")
	g.i("VBROADCASTSS X2, Z2") // d
	if t.mo != 0 {
		g.i("VPBROADCASTW %d(DX), X3", t.mo)
		g.i("VCVTPH2PS X3, X3")
		g.i("VBROADCASTSS X3, Z3") // m
	}
	if t.q8 {
		g.i("VPMOVSXBD %d(DX), Z0", t.qo)
		g.i("VPMOVSXBD %d(DX), Z1", t.qo+16)
		g.i("VCVTDQ2PS Z0, Z0")
		g.i("VCVTDQ2PS Z1, Z1")
		g.i("VMULPS Z2, Z0, Z0")
		g.i("VMULPS Z2, Z1, Z1")
		return
	}
	g.i("VMOVDQU %d(DX), X4", t.qo)
	g.i("VPSRLW $4, X4, X1")
	g.i("VPANDD X31, X4, X4")
	g.i("VPANDD X31, X1, X1")
	g.i("VPMOVZXBD X4, Z0")
	g.i("VPMOVZXBD X1, Z1")
	if t.qho != 0 {
		g.i("KMOVW %d(DX), K1", t.qho)
		g.i("KMOVW %d(DX), K2", t.qho+2)
		g.i("VPORD Z30, Z0, K1, Z0")
		g.i("VPORD Z30, Z1, K2, Z1")
	}
	switch {
	case t.iq4:
		g.i("VPERMPS Z28, Z0, Z0")
		g.i("VPERMPS Z28, Z1, Z1")
		g.i("VMULPS Z0, Z2, Z0") // d·level
		g.i("VMULPS Z1, Z2, Z1")
	case t.mo != 0: // (q·d) + m
		g.i("VCVTDQ2PS Z0, Z0")
		g.i("VCVTDQ2PS Z1, Z1")
		g.i("VMULPS Z2, Z0, Z0")
		g.i("VMULPS Z2, Z1, Z1")
		g.i("VADDPS Z3, Z0, Z0")
		g.i("VADDPS Z3, Z1, Z1")
	default: // (q - off)·d
		g.i("VPSUBD Z29, Z0, Z0")
		g.i("VPSUBD Z29, Z1, Z1")
		g.i("VCVTDQ2PS Z0, Z0")
		g.i("VCVTDQ2PS Z1, Z1")
		g.i("VMULPS Z2, Z0, Z0")
		g.i("VMULPS Z2, Z1, Z1")
	}
}

// axpyRowsL512: y += Σ_r a[r]·dequant(row r), rows a.w + r·a.stride for
// r < a.rows, a.nb blocks, coefficients at a.x, y at a.y. Each element of y
// is updated row by row in order (y = y + float32(a·v), two roundings), so
// the result equals AxpyRow applied row after row. Rows are taken in chunks
// of 64 and, within a chunk, block by block with y in registers.
func (g *gen) axpyRowsL512(t ltype) {
	name := "axpyRows" + t.name + "AVX512"
	g.text(name, 32, name+": fused dequantize-accumulate over rows ("+t.name+").")
	g.bcastB("X31", 0x0f)
	g.i("MOVL $16, AX")
	g.i("VPBROADCASTD AX, Z30")
	switch {
	case t.qo == 2 && !t.q8 && !t.iq4: // Q4_0
		g.i("MOVL $8, AX")
		g.i("VPBROADCASTD AX, Z29")
	case t.qho != 0:
		g.i("MOVL $16, AX")
		g.i("VPBROADCASTD AX, Z29")
	}
	if t.iq4 {
		lv := g.konst("iq4f", dwords(16, func(i int) uint32 { return f32bits(float32(kvaluesIQ4NL[i])) }))
		g.i("VMOVUPS %s, Z28", lv)
	}
	g.i("MOVQ %d(R14), AX", aRows)
	g.i("MOVQ AX, 0(SP)")       // rows left
	g.i("MOVQ %d(R14), R8", aW) // chunk's first row
	g.i("MOVQ %d(R14), R9", aX) // chunk's first coefficient
	g.i("MOVQ %d(R14), R10", aStride)
	chunk, blk, row := g.lbl("chunk"), g.lbl("blk"), g.lbl("row")
	g.label(chunk)
	g.i("MOVQ 0(SP), R11")
	g.i("MOVL $64, AX")
	g.i("CMPQ R11, AX")
	g.i("CMOVQGT AX, R11") // rows in chunk
	g.i("MOVQ %d(R14), DI", aY)
	g.i("MOVQ %d(R14), CX", aNB)
	g.i("MOVQ R8, SI") // block b of the chunk's first row
	g.label(blk)
	g.i("VMOVUPS (DI), Z20")
	g.i("VMOVUPS 64(DI), Z21")
	g.i("MOVQ SI, DX")
	g.i("MOVQ R9, BX")
	g.i("MOVQ R11, R12")
	g.label(row)
	g.dequantL512(t)
	g.i("VBROADCASTSS (BX), Z5")
	g.i("VMULPS Z0, Z5, Z0")
	g.i("VMULPS Z1, Z5, Z1")
	g.i("VADDPS Z0, Z20, Z20")
	g.i("VADDPS Z1, Z21, Z21")
	g.i("ADDQ R10, DX")
	g.i("ADDQ $4, BX")
	g.i("DECQ R12")
	g.i("JNZ %s", row)
	g.i("VMOVUPS Z20, (DI)")
	g.i("VMOVUPS Z21, 64(DI)")
	g.i("ADDQ $128, DI")
	g.i("ADDQ $%d, SI", t.bs)
	g.i("DECQ CX")
	g.i("JNZ %s", blk)
	g.i("MOVQ R11, AX")
	g.i("IMULQ R10, AX")
	g.i("ADDQ AX, R8")
	g.i("LEAQ (R9)(R11*4), R9")
	g.i("SUBQ R11, 0(SP)")
	g.i("JGT %s", chunk)
	g.ret()
}

// ================================================================ AVX2

// The AVX2 path uses the same canonical rows and prepared activations as
// the AVX-512 one, 8 lanes instead of 16 (batches of 8 rows) and
// VPMADDUBSW+VPMADDWD for the byte products: with u ≤ 63 a pair sum
// u·x+u'·x' stays within int16; Q8_0 and IQ4_NL (u up to 255) split u
// into its low 7 bits and its top bit, each product exact.

// unpackL2 emits the unpacking of one row into the canonical form, block
// by block. In: SI row, CX blocks, DI U, R8 DW, R9 MW. Needs X15 = 0x0f
// bytes, Y14 = 0x80 bytes (Q8_0) or the IQ4_NL table (X14), and for Q5
// Y13, Y12 (bit spreading masks). Clobbers AX, Y0-Y3.
func (g *gen) unpackL2Consts(t ltype) {
	g.bcastB("Y15", 0x0f)
	switch {
	case t.q8:
		g.bcastB("Y14", 0x80)
	case t.iq4:
		name, lv := t.iq4Table()
		tbl := g.konst(name, bytesOf(64, func(i int) byte { return byte(lv[i%16] + 128) }))
		g.i("VMOVDQU %s, Y14", tbl)
	case t.qho != 0:
		sh := g.konst("bitshuf", bytesOf(32, func(i int) byte { return byte(i / 8) }))
		g.i("VMOVDQU %s, Y13", sh)
		bm := g.konst("bitmask", bytesOf(32, func(i int) byte { return ^byte(1 << (i % 8)) }))
		g.i("VMOVDQU %s, Y12", bm)
		g.bcastB("Y11", 0x10)
	}
}

func (g *gen) unpackL2(t ltype) {
	grp, done := g.lbl("grp"), g.lbl("udone")
	g.label(grp)
	for j := 0; j < 4; j++ {
		if t.q8 {
			g.i("VMOVDQU %d(SI), Y0", t.qo)
			g.i("VPXOR Y14, Y0, Y0")
			g.i("VMOVDQU X0, %d(DI)", 16*j)
			g.i("VEXTRACTI128 $1, Y0, %d(DI)", 64+16*j)
		} else {
			g.i("VMOVDQU %d(SI), X0", t.qo)
			g.i("VPSRLW $4, X0, X1")
			g.i("VPAND X15, X0, X0")
			g.i("VPAND X15, X1, X1")
			if t.iq4 {
				g.i("VPSHUFB X0, X14, X0")
				g.i("VPSHUFB X1, X14, X1")
			}
			if t.qho != 0 {
				// byte i of Y2 = 0x10 if bit i of qh is set.
				g.i("VPBROADCASTD %d(SI), Y2", t.qho)
				g.i("VPSHUFB Y13, Y2, Y2")
				g.i("VPOR Y12, Y2, Y2")
				g.i("VPCMPEQD Y3, Y3, Y3")
				g.i("VPCMPEQB Y3, Y2, Y2")
				g.i("VPAND Y11, Y2, Y2")
				g.i("VPOR X2, X0, X0")
				g.i("VEXTRACTI128 $1, Y2, X2")
				g.i("VPOR X2, X1, X1")
			}
			g.i("VMOVDQU X0, %d(DI)", 16*j)
			g.i("VMOVDQU X1, %d(DI)", 64+16*j)
		}
		if t.e8m0 {
			// E8M0 to float32 bits: max((e-1)<<23, (e+1)<<21) (see mxfp4).
			g.i("MOVBLZX (SI), AX")
			g.i("VMOVD AX, X3")
			g.i("VPCMPEQD X2, X2, X2") // -1
			g.i("VPADDD X2, X3, X2")   // e-1
			g.i("VPSLLD $23, X2, X2")
			g.i("VPCMPEQD X0, X0, X0")
			g.i("VPSUBD X0, X3, X3") // e+1
			g.i("VPSLLD $21, X3, X3")
			g.i("VPMAXSD X2, X3, X3")
		} else {
			g.i("MOVWLZX (SI), AX")
			g.i("VMOVD AX, X3")
			g.i("VCVTPH2PS X3, X3")
		}
		g.i("VMOVSS X3, %d(R8)", 4*j)
		if t.mo != 0 {
			g.i("MOVWLZX %d(SI), AX", t.mo)
			g.i("VMOVD AX, X3")
			g.i("VCVTPH2PS X3, X3")
			g.i("VMOVSS X3, %d(R9)", 4*j)
		}
		g.i("ADDQ $%d, SI", t.bs)
		g.i("DECQ CX")
		g.i("JZ %s", done)
	}
	g.i("ADDQ $128, DI")
	g.i("ADDQ $16, R8")
	g.i("ADDQ $16, R9")
	g.i("JMP %s", grp)
	g.label(done)
}

// unpackRowsL2: a.rows rows into canonical rows a.ustride apart.
func (g *gen) unpackRowsL2(t ltype) {
	g.text("unpackRows"+t.name+"AVX2", 64, "unpackRows"+t.name+"AVX2: canonical legacy rows.")
	g.unpackL2Consts(t)
	g.i("MOVQ %d(R14), AX", aW)
	g.i("MOVQ AX, 0(SP)")
	g.i("MOVQ %d(R14), AX", aU)
	g.i("MOVQ AX, 8(SP)")
	g.i("MOVQ %d(R14), AX", aRows)
	g.i("MOVQ AX, 16(SP)")
	row := g.lbl("row")
	g.label(row)
	g.i("MOVQ 0(SP), SI")
	g.i("MOVQ %d(R14), CX", aNB)
	g.i("MOVQ 8(SP), DI")
	g.i("MOVQ %d(R14), R8", aC1)
	g.i("SUBQ %d(R14), R8", aU)
	g.i("ADDQ DI, R8")
	g.i("MOVQ %d(R14), R9", aC2)
	g.i("SUBQ %d(R14), R9", aU)
	g.i("ADDQ DI, R9")
	g.unpackL2(t)
	g.i("MOVQ %d(R14), AX", aStride)
	g.i("ADDQ AX, 0(SP)")
	g.i("MOVQ %d(R14), AX", aUStr)
	g.i("ADDQ AX, 8(SP)")
	g.i("DECQ 16(SP)")
	g.i("JNZ %s", row)
	g.ret()
}

// dp2 emits the exact sums Σ u·x of 4 consecutive bytes into int32 lanes
// for two 32-byte pieces (u at ua and ub in memory, x at xa and xb),
// summed into dst. Needs Y15 = 1 (int16); wide (u up to 255) also Y14 =
// 0x7f bytes, Y13 = 0x01 bytes, Y12 = 128 (int16). Clobbers Y0-Y3.
func (g *gen) dp2(wide bool, ua, xa, ub, xb, dst string) {
	if !wide {
		g.i("VMOVDQU %s, Y0", ua)
		g.i("VPMADDUBSW %s, Y0, Y0", xa)
		g.i("VMOVDQU %s, Y1", ub)
		g.i("VPMADDUBSW %s, Y1, Y1", xb)
		g.i("VPADDW Y1, Y0, Y0")
		g.i("VPMADDWD Y15, Y0, %s", dst)
		return
	}
	for k, p := range [][2]string{{ua, xa}, {ub, xb}} {
		g.i("VMOVDQU %s, Y0", p[0])
		g.i("VPSRLW $7, Y0, Y1")
		g.i("VPAND Y14, Y0, Y0")
		g.i("VPAND Y13, Y1, Y1")
		g.i("VPMADDUBSW %s, Y0, Y0", p[1])
		g.i("VPMADDUBSW %s, Y1, Y1", p[1])
		g.i("VPMADDWD Y15, Y0, Y0")
		g.i("VPMADDWD Y12, Y1, Y1")
		if k == 0 {
			g.i("VPADDD Y1, Y0, %s", dst)
		} else {
			g.i("VPADDD Y1, Y0, Y0")
			g.i("VPADDD Y0, %s, %s", dst, dst)
		}
	}
}

func (g *gen) dpConsts2(wide bool) {
	g.i("MOVL $0x00010001, AX")
	g.i("VMOVD AX, X15")
	g.i("VPBROADCASTD X15, Y15")
	if wide {
		g.bcastB("Y14", 0x7f)
		g.bcastB("Y13", 0x01)
		g.i("MOVL $0x00800080, AX")
		g.i("VMOVD AX, X12")
		g.i("VPBROADCASTD X12, Y12")
	}
}

// termsL2 emits the float terms of one 16-block chunk of one canonical row
// (pointers as termsL512) into Y8 (blocks 0-7) and Y9 (blocks 8-15).
// Clobbers Y0-Y7, Y10, Y11.
func (g *gen) termsL2(t ltype) {
	wide := t.q8 || t.iq4
	perm := g.konst("phaddperm", dwords(8, func(i int) uint32 { return uint32([]int{0, 4, 1, 5, 2, 6, 3, 7}[i]) }))
	for h := 0; h < 2; h++ {
		var q [2]string
		for gi := 0; gi < 2; gi++ {
			gg := 2*h + gi
			o := 128 * gg
			g.dp2(wide, fmt.Sprintf("%d(DI)", o), fmt.Sprintf("%d(R10)", o), fmt.Sprintf("%d(DI)", o+64), fmt.Sprintf("%d(R10)", o+64), "Y4")
			g.dp2(wide, fmt.Sprintf("%d(DI)", o+32), fmt.Sprintf("%d(R10)", o+32), fmt.Sprintf("%d(DI)", o+96), fmt.Sprintf("%d(R10)", o+96), "Y5")
			q[gi] = y(6 + gi)
			g.i("VPHADDD Y5, Y4, %s", q[gi])
		}
		dst := y(8 + h)
		g.i("VPHADDD Y7, Y6, %s", dst)
		g.i("VMOVDQU %s, Y10", perm)
		g.i("VPERMD %s, Y10, %s", dst, dst)
		g.i("VPADDD %d(R11), %s, %s", 32*h, dst, dst)
		g.i("VCVTDQ2PS %s, %s", dst, dst)
		dw, dx := fmt.Sprintf("%d(R8)", 32*h), fmt.Sprintf("%d(R12)", 32*h)
		mw, sx := fmt.Sprintf("%d(R9)", 32*h), fmt.Sprintf("%d(R13)", 32*h)
		switch t.family {
		case 'A':
			g.i("VMOVUPS %s, Y10", dw)
			g.i("VMULPS %s, Y10, Y10", dx)
			g.i("VMULPS Y10, %s, %s", dst, dst)
		case 'B':
			g.i("VMULPS %s, %s, %s", dw, dst, dst)
			g.i("VMULPS %s, %s, %s", dx, dst, dst)
		case 'C':
			g.i("VMOVUPS %s, Y10", dw)
			g.i("VMULPS %s, Y10, Y10", dx)
			g.i("VMULPS %s, Y10, %s", dst, dst)
			g.i("VMOVUPS %s, Y11", mw)
			g.i("VMULPS %s, Y11, Y11", sx)
			g.i("VADDPS Y11, %s, %s", dst, dst)
		}
	}
}

// transpose8 transposes the 8×8 dwords in Y0-Y7 (row r in Yr); returns
// the register of each column. Uses Y8-Y15.
func (g *gen) transpose8() [8]int {
	for i := 0; i < 4; i++ {
		g.i("VUNPCKLPS Y%d, Y%d, Y%d", 2*i+1, 2*i, 8+2*i)
		g.i("VUNPCKHPS Y%d, Y%d, Y%d", 2*i+1, 2*i, 8+2*i+1)
	}
	// Y8: r0r1 lo, Y9: r0r1 hi, Y10: r2r3 lo, Y11: r2r3 hi, Y12..Y15: r4..r7.
	for q := 0; q < 2; q++ {
		lo0, hi0, lo1, hi1 := 8+4*q, 9+4*q, 10+4*q, 11+4*q
		g.i("VSHUFPS $0x44, Y%d, Y%d, Y%d", lo1, lo0, 4*q+0) // cols 0,4
		g.i("VSHUFPS $0xee, Y%d, Y%d, Y%d", lo1, lo0, 4*q+1) // cols 1,5
		g.i("VSHUFPS $0x44, Y%d, Y%d, Y%d", hi1, hi0, 4*q+2) // cols 2,6
		g.i("VSHUFPS $0xee, Y%d, Y%d, Y%d", hi1, hi0, 4*q+3) // cols 3,7
	}
	var out [8]int
	for j := 0; j < 4; j++ {
		g.i("VPERM2F128 $0x20, Y%d, Y%d, Y%d", 4+j, j, 8+j)
		g.i("VPERM2F128 $0x31, Y%d, Y%d, Y%d", 4+j, j, 12+j)
		out[j] = 8 + j
		out[4+j] = 12 + j
	}
	return out
}

// dotCanonL2 takes the dot products of a.rows (≤ 8) canonical rows (a.u,
// a.c1, a.c2, a.ustride apart) with a.n2 prepared activation rows (a.x,
// a.a1, a.a2, a.a3, each a.ts bytes further for the next token),
// writing out[tok][8] at a.y. Order: per row, blocks in order from +0.
// Frame: T[8][16] at 0, acc at 512, locals from 544.
func (g *gen) dotCanonL2(t ltype) {
	const (
		fT   = 0
		fAcc = 512
		fTok = 544
		fC   = 552
		fR   = 560
		fOff = 568 // token offset into the prepared buffers
		fY   = 576
	)
	name := "dotCanon" + t.name + "AVX2"
	g.text(name, 640, name+": canonical rows × prepared tokens ("+t.name+").")
	wide := t.q8 || t.iq4
	g.i("MOVQ %d(R14), AX", aN2)
	g.i("MOVQ AX, %d(SP)", fTok)
	g.i("MOVQ $0, %d(SP)", fOff)
	g.i("MOVQ %d(R14), AX", aY)
	g.i("MOVQ AX, %d(SP)", fY)
	tok := g.lbl("tok")
	g.label(tok)
	g.i("VXORPS Y0, Y0, Y0")
	g.i("VMOVUPS Y0, %d(SP)", fAcc)
	g.i("MOVQ $0, %d(SP)", fC)
	chunk := g.lbl("chunk")
	g.label(chunk)
	g.dpConsts2(wide)
	g.i("MOVQ %d(SP), CX", fC)
	g.i("SHLQ $9, CX")
	g.i("MOVQ %d(SP), AX", fC)
	g.i("SHLQ $6, AX")
	g.i("MOVQ %d(R14), DI", aU)
	g.i("ADDQ CX, DI")
	g.i("MOVQ %d(R14), R8", aC1)
	g.i("ADDQ AX, R8")
	g.i("MOVQ %d(R14), R9", aC2)
	g.i("ADDQ AX, R9")
	g.i("MOVQ %d(SP), DX", fOff)
	g.i("MOVQ %d(R14), R10", aX)
	g.i("ADDQ DX, R10")
	g.i("ADDQ CX, R10")
	for _, f := range []struct {
		off int
		reg string
	}{{aA1, "R11"}, {aA2, "R12"}, {aA3, "R13"}} {
		g.i("MOVQ %d(R14), %s", f.off, f.reg)
		g.i("ADDQ DX, %s", f.reg)
		g.i("ADDQ AX, %s", f.reg)
	}
	g.i("MOVQ %d(R14), AX", aRows)
	g.i("MOVQ AX, %d(SP)", fR)
	g.i("LEAQ %d(SP), DX", fT)
	g.i("MOVQ %d(R14), BX", aUStr)
	row := g.lbl("row")
	g.label(row)
	g.termsL2(t)
	g.i("VMOVUPS Y8, (DX)")
	g.i("VMOVUPS Y9, 32(DX)")
	g.i("ADDQ $64, DX")
	g.i("ADDQ BX, DI")
	g.i("ADDQ BX, R8")
	g.i("ADDQ BX, R9")
	g.i("DECQ %d(SP)", fR)
	g.i("JNZ %s", row)
	for h := 0; h < 2; h++ {
		for r := 0; r < 8; r++ {
			g.i("VMOVUPS %d(SP), Y%d", fT+64*r+32*h, r)
		}
		out := g.transpose8()
		g.i("VMOVUPS %d(SP), Y0", fAcc)
		for b := 0; b < 8; b++ {
			g.i("VADDPS Y%d, Y0, Y0", out[b])
		}
		g.i("VMOVUPS Y0, %d(SP)", fAcc)
	}
	g.i("INCQ %d(SP)", fC)
	g.i("MOVQ %d(SP), AX", fC)
	g.i("SHLQ $4, AX")
	g.i("CMPQ AX, %d(R14)", aNB)
	g.i("JLT %s", chunk)
	g.i("MOVQ %d(SP), AX", fY)
	g.i("VMOVUPS Y0, (AX)")
	g.i("ADDQ $32, AX")
	g.i("MOVQ AX, %d(SP)", fY)
	g.i("MOVQ %d(R14), AX", aTS)
	g.i("ADDQ AX, %d(SP)", fOff)
	g.i("DECQ %d(SP)", fTok)
	g.i("JNZ %s", tok)
	g.ret()
}

// unpackK2 is unpackK512 for AVX2. In: SI row, CX super-blocks, DI U, R8
// SM, R9 D, R12 DMIN. Clobbers AX, BX, DX, R11, R13, Y0-Y5, Y13-Y15.
func (g *gen) unpackK2(t ktype) {
	loop := g.lbl("ksb")
	g.bcastB("Y15", 0x0f)
	if t.q5 {
		g.bcastB("Y13", 0x10)
	}
	if t.q6 {
		g.bcastB("Y13", 0x30)
	}
	g.label(loop)
	switch {
	case t.q6:
		for h := 0; h < 2; h++ {
			g.i("VMOVDQU %d(SI), Y0", 64*h)    // A: elements l (lo), 64+l (hi)
			g.i("VMOVDQU %d(SI), Y1", 64*h+32) // B: 32+l, 96+l
			g.i("VMOVDQU %d(SI), Y2", 128+32*h)
			for k, sh := range []int{4, 2, 0, -2} {
				src := "Y0"
				if k == 1 || k == 3 {
					src = "Y1"
				}
				if k < 2 {
					g.i("VPAND Y15, %s, Y3", src)
				} else {
					g.i("VPSRLW $4, %s, Y3", src)
					g.i("VPAND Y15, Y3, Y3")
				}
				switch {
				case sh > 0:
					g.i("VPSLLW $%d, Y2, Y4", sh)
				case sh < 0:
					g.i("VPSRLW $%d, Y2, Y4", -sh)
				default:
					g.i("VMOVDQU Y2, Y4")
				}
				g.i("VPAND Y13, Y4, Y4")
				g.i("VPOR Y4, Y3, Y3")
				g.i("VMOVDQU Y3, %d(DI)", 128*h+32*k)
			}
		}
		g.i("VPMOVSXBD 192(SI), Y5")
		g.i("VMOVDQU Y5, (R8)")
		g.i("VPMOVSXBD 200(SI), Y5")
		g.i("VMOVDQU Y5, 32(R8)")
		g.i("MOVWLZX 208(SI), AX")
		g.i("VMOVD AX, X2")
		g.i("VCVTPH2PS X2, X2")
		g.i("VMOVSS X2, (R9)")
	default:
		qo := 16
		if t.q5 {
			qo = 48
			g.i("VMOVDQU 16(SI), Y14")
		}
		for c := 0; c < 4; c++ {
			g.i("VMOVDQU %d(SI), Y0", qo+32*c)
			g.i("VPSRLW $4, Y0, Y1")
			g.i("VPAND Y15, Y0, Y0")
			g.i("VPAND Y15, Y1, Y1")
			if t.q5 {
				sh := func(s int, dst string) {
					switch {
					case s > 0:
						g.i("VPSLLW $%d, Y14, %s", s, dst)
					case s < 0:
						g.i("VPSRLW $%d, Y14, %s", -s, dst)
					default:
						g.i("VMOVDQU Y14, %s", dst)
					}
				}
				sh(4-2*c, "Y2")
				g.i("VPAND Y13, Y2, Y2")
				g.i("VPOR Y2, Y0, Y0")
				sh(3-2*c, "Y3")
				g.i("VPAND Y13, Y3, Y3")
				g.i("VPOR Y3, Y1, Y1")
			}
			g.i("VMOVDQU Y0, %d(DI)", 64*c)
			g.i("VMOVDQU Y1, %d(DI)", 64*c+32)
		}
		g.scalesK4()
	}
	g.i("ADDQ $%d, SI", t.bs)
	g.i("ADDQ $256, DI")
	g.i("ADDQ $64, R8")
	g.i("ADDQ $4, R9")
	g.i("DECQ CX")
	g.i("JNZ %s", loop)
}

// scalesK4 decodes the Q4_K/Q5_K scales and mins at 4(SI) into SM (R8)
// and d, dmin into (R9), (R12) (advancing R12).
func (g *gen) scalesK4() {
	g.i("MOVL 4(SI), AX")
	g.i("MOVL 8(SI), BX")
	g.i("MOVL 12(SI), DX")
	g.i("MOVL DX, R13")
	g.i("SHRL $4, R13")
	g.i("ANDL $0x0f0f0f0f, R13")
	g.i("MOVL BX, R11")
	g.i("SHRL $6, R11")
	g.i("ANDL $0x03030303, R11")
	g.i("SHLL $4, R11")
	g.i("ORL R11, R13")
	g.i("MOVL BX, R11")
	g.i("ANDL $0x3f3f3f3f, R11")
	g.i("ANDL $0x0f0f0f0f, DX")
	g.i("MOVL AX, BX")
	g.i("SHRL $6, BX")
	g.i("ANDL $0x03030303, BX")
	g.i("SHLL $4, BX")
	g.i("ORL DX, BX")
	g.i("ANDL $0x3f3f3f3f, AX")
	g.i("SHLQ $32, BX")
	g.i("ORQ BX, AX")
	g.i("VMOVQ AX, X0")
	g.i("VPMOVZXBD X0, Y0")
	g.i("VMOVDQU Y0, (R8)")
	g.i("SHLQ $32, R13")
	g.i("ORQ R13, R11")
	g.i("VMOVQ R11, X1")
	g.i("VPMOVZXBD X1, Y1")
	g.i("VMOVDQU Y1, 32(R8)")
	g.i("MOVL (SI), AX")
	g.i("VMOVD AX, X2")
	g.i("VCVTPH2PS X2, X2")
	g.i("VMOVSS X2, (R9)")
	g.i("VEXTRACTPS $1, X2, (R12)")
	g.i("ADDQ $4, R12")
}

func (g *gen) unpackRowsK2(t ktype) {
	g.text("unpackRows"+t.name+"AVX2", 64, "unpackRows"+t.name+"AVX2: canonical K-quant rows.")
	g.i("MOVQ %d(R14), AX", aW)
	g.i("MOVQ AX, 0(SP)")
	g.i("MOVQ %d(R14), AX", aU)
	g.i("MOVQ AX, 8(SP)")
	g.i("MOVQ %d(R14), AX", aRows)
	g.i("MOVQ AX, 16(SP)")
	row := g.lbl("row")
	g.label(row)
	g.i("MOVQ 0(SP), SI")
	g.i("MOVQ %d(R14), CX", aNB)
	g.i("MOVQ 8(SP), DI")
	for _, f := range []struct {
		off int
		reg string
	}{{aC1, "R8"}, {aC2, "R9"}, {aC3, "R12"}} {
		g.i("MOVQ %d(R14), %s", f.off, f.reg)
		g.i("SUBQ %d(R14), %s", aU, f.reg)
		g.i("ADDQ DI, %s", f.reg)
	}
	g.unpackK2(t)
	g.i("MOVQ %d(R14), AX", aStride)
	g.i("ADDQ AX, 0(SP)")
	g.i("MOVQ %d(R14), AX", aUStr)
	g.i("ADDQ AX, 8(SP)")
	g.i("DECQ 16(SP)")
	g.i("JNZ %s", row)
	g.ret()
}

// sumsK2: integer sums of one super-block of one canonical row (pointers
// as sumsK512). Out: X0 lane 0 = isum, lane 1 = imin (K45). Needs Y15 = 1
// (int16). Clobbers Y0-Y6.
func (g *gen) sumsK2(t ktype) {
	g.i("VPXOR Y4, Y4, Y4")
	for k := 0; k < 8; k++ {
		g.i("VMOVDQU %d(DI), Y0", 32*k)
		g.i("VPMADDUBSW %d(R10), Y0, Y0", 32*k)
		if t.q6 {
			g.i("VPBROADCASTW %d(R8), X1", 8*k)
			g.i("VPBROADCASTW %d(R8), X2", 8*k+4)
			g.i("VINSERTI128 $1, X2, Y1, Y1")
		} else {
			g.i("VPBROADCASTW %d(R8), Y1", 4*k)
		}
		g.i("VPMADDWD Y1, Y0, Y0")
		g.i("VPADDD Y0, Y4, Y4")
	}
	if t.q6 {
		g.i("VMOVDQU (R8), Y5")
		g.i("VPMULLD (R11), Y5, Y5")
		g.i("VPADDD Y5, Y4, Y4")
		g.i("VMOVDQU 32(R8), Y5")
		g.i("VPMULLD 32(R11), Y5, Y5")
		g.i("VPADDD Y5, Y4, Y4")
		g.i("VPXOR Y5, Y5, Y5")
	} else {
		g.i("VMOVDQU 32(R8), Y5")
		g.i("VPMULLD (R11), Y5, Y5")
	}
	g.i("VPHADDD Y5, Y4, Y4") // T01 T23 M01 M23 | T45 T67 M45 M67
	g.i("VPHADDD Y4, Y4, Y4") // T0-3 M0-3 . . | T4-7 M4-7 . .
	g.i("VEXTRACTI128 $1, Y4, X5")
	g.i("VPADDD X5, X4, X0")
}

// dotCanonK2: K-quant canonical rows (≤ 8) × a.n2 tokens. Token i: raw
// Q8_K row at a.x + i·a.stride, P/C6 at a.a1 + i·a.ts. out[tok][8] at
// a.y. Frame: ISUM/IMIN/DR/DMR [16 s][8 r] at 0/512/1024/1536, acc 2048,
// locals from 2080.
func (g *gen) dotCanonK2(t ktype) {
	const (
		fIS  = 0
		fIM  = 512
		fDR  = 1024
		fDM  = 1536
		fAcc = 2048
		fTok = 2080
		fC   = 2088
		fS   = 2096
		fR   = 2104
		fX   = 2112 // this token's Q8_K row
		fP   = 2120 // this token's P/C6
		fY   = 2128
	)
	name := "dotCanon" + t.name + "AVX2"
	g.text(name, 2176, name+": canonical rows × tokens ("+t.name+").")
	g.i("MOVQ %d(R14), AX", aN2)
	g.i("MOVQ AX, %d(SP)", fTok)
	g.i("MOVQ %d(R14), AX", aX)
	g.i("MOVQ AX, %d(SP)", fX)
	g.i("MOVQ %d(R14), AX", aA1)
	g.i("MOVQ AX, %d(SP)", fP)
	g.i("MOVQ %d(R14), AX", aY)
	g.i("MOVQ AX, %d(SP)", fY)
	g.i("MOVL $0x00010001, AX")
	g.i("VMOVD AX, X15")
	g.i("VPBROADCASTD X15, Y15")
	tok := g.lbl("tok")
	g.label(tok)
	g.i("VXORPS Y0, Y0, Y0")
	g.i("VMOVUPS Y0, %d(SP)", fAcc)
	g.i("MOVQ $0, %d(SP)", fC)
	chunk := g.lbl("chunk")
	g.label(chunk)
	g.i("MOVQ %d(R14), AX", aNB)
	g.i("SUBQ %d(SP), AX", fC)
	g.i("MOVL $16, BX")
	g.i("CMPQ AX, BX")
	g.i("CMOVQLT AX, BX")
	g.i("MOVQ BX, %d(SP)", fS)
	g.i("MOVQ $0, %d(SP)", fR)
	rowl := g.lbl("row")
	g.label(rowl)
	g.i("MOVQ %d(SP), AX", fR)
	g.i("IMULQ %d(R14), AX", aUStr)
	g.i("MOVQ %d(SP), BX", fC)
	g.i("MOVQ %d(R14), DI", aU)
	g.i("ADDQ AX, DI")
	g.i("MOVQ BX, CX")
	g.i("SHLQ $8, CX")
	g.i("ADDQ CX, DI")
	g.i("MOVQ %d(R14), R8", aC1)
	g.i("ADDQ AX, R8")
	g.i("MOVQ BX, CX")
	g.i("SHLQ $6, CX")
	g.i("ADDQ CX, R8")
	g.i("MOVQ %d(R14), DX", aC2)
	g.i("ADDQ AX, DX")
	g.i("LEAQ (DX)(BX*4), DX")
	g.i("MOVQ %d(R14), R13", aC3)
	g.i("ADDQ AX, R13")
	g.i("LEAQ (R13)(BX*4), R13")
	g.i("IMUL3Q $292, BX, CX")
	g.i("MOVQ %d(SP), R10", fX)
	g.i("LEAQ 4(R10)(CX*1), R10")
	g.i("MOVQ BX, CX")
	if t.q6 {
		g.i("SHLQ $6, CX")
	} else {
		g.i("SHLQ $5, CX")
	}
	g.i("MOVQ %d(SP), R11", fP)
	g.i("ADDQ CX, R11")
	g.i("MOVQ %d(SP), R9", fR)
	g.i("SHLQ $2, R9")
	g.i("MOVQ %d(SP), CX", fS)
	sb := g.lbl("sb")
	g.label(sb)
	g.sumsK2(t)
	g.i("VMOVSS X0, %d(SP)(R9*1)", fIS)
	g.i("VMOVSS (DX), X2")
	g.i("VMOVSS X2, %d(SP)(R9*1)", fDR)
	if !t.q6 {
		g.i("VEXTRACTPS $1, X0, %d(SP)(R9*1)", fIM)
		g.i("VMOVSS (R13), X2")
		g.i("VMOVSS X2, %d(SP)(R9*1)", fDM)
	}
	g.i("ADDQ $256, DI")
	g.i("ADDQ $64, R8")
	g.i("ADDQ $4, DX")
	g.i("ADDQ $4, R13")
	g.i("ADDQ $292, R10")
	if t.q6 {
		g.i("ADDQ $64, R11")
	} else {
		g.i("ADDQ $32, R11")
	}
	g.i("ADDQ $32, R9")
	g.i("DECQ CX")
	g.i("JNZ %s", sb)
	g.i("INCQ %d(SP)", fR)
	g.i("MOVQ %d(SP), AX", fR)
	g.i("CMPQ AX, %d(R14)", aRows)
	g.i("JLT %s", rowl)
	// Float steps, one lane per row.
	g.i("VMOVUPS %d(SP), Y8", fAcc)
	g.i("MOVQ %d(SP), BX", fC)
	g.i("IMUL3Q $292, BX, CX")
	g.i("MOVQ %d(SP), R10", fX)
	g.i("ADDQ CX, R10")
	g.i("XORQ R9, R9")
	g.i("MOVQ %d(SP), CX", fS)
	fl := g.lbl("fl")
	g.label(fl)
	g.i("VCVTDQ2PS %d(SP)(R9*1), Y1", fIS)
	g.i("VBROADCASTSS (R10), Y7")
	g.i("VMULPS %d(SP)(R9*1), Y7, Y2", fDR) // d = dw·dx
	g.i("VMULPS Y1, Y2, Y1")
	g.i("VADDPS Y1, Y8, Y8")
	if !t.q6 {
		g.i("VCVTDQ2PS %d(SP)(R9*1), Y3", fIM)
		g.i("VMULPS %d(SP)(R9*1), Y7, Y4", fDM)
		g.i("VMULPS Y3, Y4, Y3")
		g.i("VSUBPS Y3, Y8, Y8")
	}
	g.i("ADDQ $292, R10")
	g.i("ADDQ $32, R9")
	g.i("DECQ CX")
	g.i("JNZ %s", fl)
	g.i("VMOVUPS Y8, %d(SP)", fAcc)
	g.i("MOVQ %d(SP), AX", fS)
	g.i("ADDQ AX, %d(SP)", fC)
	g.i("MOVQ %d(SP), AX", fC)
	g.i("CMPQ AX, %d(R14)", aNB)
	g.i("JLT %s", chunk)
	g.i("MOVQ %d(SP), AX", fY)
	g.i("VMOVUPS Y8, (AX)")
	g.i("ADDQ $32, AX")
	g.i("MOVQ AX, %d(SP)", fY)
	g.i("MOVQ %d(R14), AX", aStride)
	g.i("ADDQ AX, %d(SP)", fX)
	g.i("MOVQ %d(R14), AX", aTS)
	g.i("ADDQ AX, %d(SP)", fP)
	g.i("DECQ %d(SP)", fTok)
	g.i("JNZ %s", tok)
	g.ret()
}

// ---------------------------------------------------------------- activation prep (AVX2, both paths)

// sumBytes2 sets AX to the sum of the 32 signed bytes in Y0 (via
// VPSADBW of x^0x80). Needs Y14 = 0x80 bytes, Y13 = 0. Clobbers Y1, X2.
func (g *gen) sumBytes2() {
	g.i("VPXOR Y14, Y0, Y1")
	g.i("VPSADBW Y13, Y1, Y1")
	g.i("VEXTRACTI128 $1, Y1, X2")
	g.i("VPADDQ X2, X1, X1")
	g.i("VPSHUFD $0x4e, X1, X2")
	g.i("VPADDQ X2, X1, X1")
	g.i("VMOVD X1, AX")
	g.i("SUBL $4096, AX")
}

// prepL2 writes the prepared legacy activations of a Q8_0 (q81: Q8_1)
// row: in a.w, a.rows blocks; out X a.u (arranged as canonical U), CORR
// a.c1 (-a.n2·Σx), DX a.c2, SX a.c3 (0 for Q8_0).
func (g *gen) prepL2(q81 bool) {
	name, bs, qo := "prepQ8_0AVX2", 34, 2
	if q81 {
		name, bs, qo = "prepQ8_1AVX2", 36, 4
	}
	g.text(name, 0, name+": prepared activations for the legacy dot kernels.")
	g.i("MOVQ %d(R14), SI", aW)
	g.i("MOVQ %d(R14), CX", aRows)
	g.i("MOVQ %d(R14), DI", aU)
	g.i("MOVQ %d(R14), R8", aC1)
	g.i("MOVQ %d(R14), R9", aC2)
	g.i("MOVQ %d(R14), R10", aC3)
	g.i("MOVQ %d(R14), R11", aN2)
	g.i("NEGQ R11")
	g.bcastB("Y14", 0x80)
	g.i("VPXOR Y13, Y13, Y13")
	grp, done := g.lbl("grp"), g.lbl("done")
	g.label(grp)
	for j := 0; j < 4; j++ {
		g.i("VMOVDQU %d(SI), Y0", qo)
		g.i("VMOVDQU X0, %d(DI)", 16*j)
		g.i("VEXTRACTI128 $1, Y0, %d(DI)", 64+16*j)
		g.sumBytes2()
		g.i("IMULL R11, AX")
		g.i("MOVL AX, (R8)")
		g.i("MOVWLZX (SI), AX")
		g.i("VMOVD AX, X3")
		g.i("VCVTPH2PS X3, X3")
		g.i("VMOVSS X3, (R9)")
		if q81 {
			g.i("MOVWLZX 2(SI), AX")
			g.i("VMOVD AX, X3")
			g.i("VCVTPH2PS X3, X3")
			g.i("VMOVSS X3, (R10)")
		} else {
			g.i("MOVL $0, (R10)")
		}
		g.i("ADDQ $%d, SI", bs)
		g.i("ADDQ $4, R8")
		g.i("ADDQ $4, R9")
		g.i("ADDQ $4, R10")
		g.i("DECQ CX")
		g.i("JZ %s", done)
	}
	g.i("ADDQ $128, DI")
	g.i("JMP %s", grp)
	g.label(done)
	g.ret()
}

// packL2 writes the GEMM activation pack of a.rows (≤ 8) tokens (rows
// a.w, a.stride apart; a.nb blocks each): record (b·8+t)·48 = qs[32],
// corr (-a.n2·Σx), dx, sx.
func (g *gen) packL2(q81 bool) {
	name, bs, qo := "packQ8_0AVX2", 34, 2
	if q81 {
		name, bs, qo = "packQ8_1AVX2", 36, 4
	}
	g.text(name, 0, name+": GEMM activation pack for the legacy kernels.")
	g.i("MOVQ %d(R14), R12", aW)
	g.i("MOVQ %d(R14), R13", aU)
	g.i("MOVQ %d(R14), R11", aN2)
	g.i("NEGQ R11")
	g.i("MOVQ %d(R14), BX", aRows)
	g.bcastB("Y14", 0x80)
	g.i("VPXOR Y13, Y13, Y13")
	tok, blk := g.lbl("tok"), g.lbl("blk")
	g.label(tok)
	g.i("MOVQ R12, SI")
	g.i("MOVQ R13, DI")
	g.i("MOVQ %d(R14), CX", aNB)
	g.label(blk)
	g.i("VMOVDQU %d(SI), Y0", qo)
	g.i("VMOVDQU Y0, (DI)")
	g.sumBytes2()
	g.i("IMULL R11, AX")
	g.i("MOVL AX, 32(DI)")
	g.i("MOVWLZX (SI), AX")
	g.i("VMOVD AX, X3")
	g.i("VCVTPH2PS X3, X3")
	g.i("VMOVSS X3, 36(DI)")
	if q81 {
		g.i("MOVWLZX 2(SI), AX")
		g.i("VMOVD AX, X3")
		g.i("VCVTPH2PS X3, X3")
		g.i("VMOVSS X3, 40(DI)")
	} else {
		g.i("MOVL $0, 40(DI)")
	}
	g.i("ADDQ $%d, SI", bs)
	g.i("ADDQ $%d, DI", 8*packRecL)
	g.i("DECQ CX")
	g.i("JNZ %s", blk)
	g.i("ADDQ %d(R14), R12", aStride)
	g.i("ADDQ $%d, R13", packRecL)
	g.i("DECQ BX")
	g.i("JNZ %s", tok)
	g.ret()
}

// c6Sums2 writes, for the 256 values at (SI), -32·(sum of each 16) as 16
// int32 at (DI). Needs Y14 = 0x80 bytes, Y13 = 0. Clobbers AX, BX, Y0-Y2.
func (g *gen) c6Sums2() {
	for k := 0; k < 8; k++ {
		g.i("VMOVDQU %d(SI), Y0", 32*k)
		g.i("VPXOR Y14, Y0, Y0")
		g.i("VPSADBW Y13, Y0, Y0")
		g.i("VPSHUFD $0x4e, Y0, Y1")
		g.i("VPADDQ Y1, Y0, Y0")
		g.i("VMOVD X0, AX")
		g.i("VEXTRACTI128 $1, Y0, X1")
		g.i("VMOVD X1, BX")
		g.i("SUBL $2048, AX")
		g.i("SUBL $2048, BX")
		g.i("IMULL $-32, AX")
		g.i("IMULL $-32, BX")
		g.i("MOVL AX, %d(DI)", 8*k)
		g.i("MOVL BX, %d(DI)", 8*k+4)
	}
}

// prepK2 writes P (Q4_K/Q5_K: bsums pair sums, 8 int32) or C6 (Q6_K) for
// the a.rows super-blocks of the Q8_K row a.w into a.u.
func (g *gen) prepK2(q6 bool) {
	name := "prepK45AVX2"
	if q6 {
		name = "prepK6AVX2"
	}
	g.text(name, 0, name+": prepared activations for the K-quant dot kernels.")
	g.i("MOVQ %d(R14), R8", aW)
	g.i("MOVQ %d(R14), DI", aU)
	g.i("MOVQ %d(R14), CX", aRows)
	g.bcastB("Y14", 0x80)
	g.i("VPXOR Y13, Y13, Y13")
	loop := g.lbl("sb")
	g.label(loop)
	if q6 {
		g.i("LEAQ 4(R8), SI")
		g.c6Sums2()
		g.i("ADDQ $64, DI")
	} else {
		g.i("VPMOVSXWD 260(R8), Y0")
		g.i("VPMOVSXWD 276(R8), Y1")
		g.i("VPHADDD Y1, Y0, Y0") // p0 p1 p4 p5 | p2 p3 p6 p7
		g.i("VPERMQ $0xd8, Y0, Y0")
		g.i("VMOVDQU Y0, (DI)")
		g.i("ADDQ $32, DI")
	}
	g.i("ADDQ $292, R8")
	g.i("DECQ CX")
	g.i("JNZ %s", loop)
	g.ret()
}

// packK2 writes the K GEMM pack of a.rows (≤ 8) tokens (Q8_K rows a.w,
// a.stride apart, a.nb super-blocks): record (s·8+t)·336 = qs[256];
// Q4_K/Q5_K: bsums[16] at 256, d at 288; Q6_K: C6[16] at 256, d at 320.
func (g *gen) packK2(q6 bool) {
	name := "packK45AVX2"
	if q6 {
		name = "packK6AVX2"
	}
	g.text(name, 0, name+": GEMM activation pack for the K-quant kernels.")
	g.i("MOVQ %d(R14), R12", aW)
	g.i("MOVQ %d(R14), R13", aU)
	g.i("MOVQ %d(R14), R10", aRows)
	g.bcastB("Y14", 0x80)
	g.i("VPXOR Y13, Y13, Y13")
	tok, sb := g.lbl("tok"), g.lbl("sb")
	g.label(tok)
	g.i("MOVQ R12, R8")
	g.i("MOVQ R13, DI")
	g.i("MOVQ %d(R14), CX", aNB)
	g.label(sb)
	for k := 0; k < 8; k++ {
		g.i("VMOVDQU %d(R8), Y0", 4+32*k)
		g.i("VMOVDQU Y0, %d(DI)", 32*k)
	}
	g.i("MOVL (R8), AX")
	if q6 {
		g.i("MOVL AX, 320(DI)")
		g.i("LEAQ 4(R8), SI")
		g.i("ADDQ $256, DI")
		g.c6Sums2()
		g.i("SUBQ $256, DI")
	} else {
		g.i("MOVL AX, 288(DI)")
		g.i("VMOVDQU 260(R8), Y0")
		g.i("VMOVDQU Y0, 256(DI)")
	}
	g.i("ADDQ $292, R8")
	g.i("ADDQ $%d, DI", 8*packRecK)
	g.i("DECQ CX")
	g.i("JNZ %s", sb)
	g.i("ADDQ %d(R14), R12", aStride)
	g.i("ADDQ $%d, R13", packRecK)
	g.i("DECQ R10")
	g.i("JNZ %s", tok)
	g.ret()
}

// ---------------------------------------------------------------- AVX2 quantizers and axpy

// narrow2 stores the low bytes of the 32 int32 in Y0-Y3 (wrapping, as
// int8(int32) does) as 32 bytes at dst. Needs Y15 = 0xff (int32), Y14 =
// the phaddperm table. Clobbers Y0-Y3.
func (g *gen) narrow2(dst string) {
	for i := 0; i < 4; i++ {
		g.i("VPAND Y15, Y%d, Y%d", i, i)
	}
	g.i("VPACKUSDW Y1, Y0, Y0")
	g.i("VPACKUSDW Y3, Y2, Y2")
	g.i("VPACKUSWB Y2, Y0, Y0")
	g.i("VPERMD Y0, Y14, Y0")
	g.i("VMOVDQU Y0, %s", dst)
}

// quantQ8_2 is quantQ8_512 for AVX2 (same arithmetic, lane for lane).
func (g *gen) quantQ8_2(q81 bool) {
	name := "quantQ8_0AVX2"
	bs, qo := 34, 2
	if q81 {
		name, bs, qo = "quantQ8_1AVX2", 36, 4
	}
	g.text(name, 0, name+": activation quantizer (tensor.QuantizeRow bit for bit).")
	perm := g.konst("phaddperm", dwords(8, func(i int) uint32 { return uint32([]int{0, 4, 1, 5, 2, 6, 3, 7}[i]) }))
	g.i("MOVQ %d(R14), SI", aX)
	g.i("MOVQ %d(R14), DI", aY)
	g.i("MOVQ %d(R14), CX", aNB)
	loop := g.lbl("blk")
	g.label(loop)
	g.i("MOVL $0x7fffffff, AX")
	g.i("VMOVD AX, X13")
	g.i("VPBROADCASTD X13, Y13")
	g.i("VANDPS (SI), Y13, Y4")
	for k := 1; k < 4; k++ {
		g.i("VANDPS %d(SI), Y13, Y5", 32*k)
		g.i("VMAXPS Y5, Y4, Y4")
	}
	g.i("VEXTRACTF128 $1, Y4, X5")
	g.i("VMAXPS X5, X4, X4")
	g.i("VPERMILPS $0x4e, X4, X5")
	g.i("VMAXPS X5, X4, X4")
	g.i("VPERMILPS $0xb1, X4, X5")
	g.i("VMAXPS X5, X4, X4") // amax
	g.i("MOVL $0x42fe0000, AX")
	g.i("VMOVD AX, X5")
	g.i("VDIVSS X5, X4, X6") // d
	g.i("MOVL $0x3f800000, AX")
	g.i("VMOVD AX, X5")
	g.i("VDIVSS X6, X5, X7") // 1/d
	g.i("VXORPS X5, X5, X5")
	g.i("VCMPSS $4, X5, X6, X5") // d != 0
	g.i("VANDPS X5, X7, X7")
	g.i("VCVTPS2PH $0, X6, X5")
	g.i("VPEXTRW $0, X5, (DI)")
	g.i("VBROADCASTSS X7, Y7")
	g.i("MOVL $0x3f000000, AX")
	g.i("VMOVD AX, X12")
	g.i("VBROADCASTSS X12, Y12") // 0.5
	g.i("MOVL $0xbf000000, AX")
	g.i("VMOVD AX, X11")
	g.i("VBROADCASTSS X11, Y11") // -0.5
	for k := 0; k < 4; k++ {
		g.i("VMULPS %d(SI), Y7, Y8", 32*k) // p
		g.i("VCVTTPS2DQ Y8, Y%d", k)       // t
		g.i("VCVTDQ2PS Y%d, Y9", k)
		g.i("VSUBPS Y9, Y8, Y8")          // r
		g.i("VCMPPS $13, Y12, Y8, Y9")    // r >= 0.5
		g.i("VCMPPS $2, Y11, Y8, Y10")    // r <= -0.5
		g.i("VPSUBD Y9, Y%d, Y%d", k, k)  // t+1
		g.i("VPADDD Y10, Y%d, Y%d", k, k) // t-1
	}
	g.i("MOVL $0xff, AX")
	g.i("VMOVD AX, X15")
	g.i("VPBROADCASTD X15, Y15")
	g.i("VMOVDQU %s, Y14", perm)
	g.narrow2(fmt.Sprintf("%d(DI)", qo))
	if q81 {
		g.bcastB("Y14", 0x80)
		g.i("VPXOR Y13, Y13, Y13")
		g.i("VMOVDQU %d(DI), Y0", qo)
		g.sumBytes2()
		g.i("VCVTSI2SSL AX, X0, X0")
		g.i("VMULSS X6, X0, X0")
		g.i("VCVTPS2PH $0, X0, X5")
		g.i("VPEXTRW $0, X5, 2(DI)")
	}
	g.i("ADDQ $128, SI")
	g.i("ADDQ $%d, DI", bs)
	g.i("DECQ CX")
	g.i("JNZ %s", loop)
	g.ret()
}

// quantQ8K2 is quantQ8K512 for AVX2.
func (g *gen) quantQ8K2() {
	g.text("quantQ8_KAVX2", 0, "quantQ8_KAVX2: activation quantizer (tensor.QuantizeRow bit for bit).")
	perm := g.konst("phaddperm", dwords(8, func(i int) uint32 { return uint32([]int{0, 4, 1, 5, 2, 6, 3, 7}[i]) }))
	g.i("MOVQ %d(R14), SI", aX)
	g.i("MOVQ %d(R14), DI", aY)
	g.i("MOVQ %d(R14), CX", aNB)
	loop, zero, found, next := g.lbl("sb"), g.lbl("zero"), g.lbl("found"), g.lbl("next")
	g.label(loop)
	g.i("MOVL $0x7fffffff, AX")
	g.i("VMOVD AX, X13")
	g.i("VPBROADCASTD X13, Y13")
	g.i("VANDPS (SI), Y13, Y4")
	for k := 1; k < 32; k++ {
		g.i("VANDPS %d(SI), Y13, Y5", 32*k)
		g.i("VMAXPS Y5, Y4, Y4")
	}
	g.i("VEXTRACTF128 $1, Y4, X5")
	g.i("VMAXPS X5, X4, X4")
	g.i("VPERMILPS $0x4e, X4, X5")
	g.i("VMAXPS X5, X4, X4")
	g.i("VPERMILPS $0xb1, X4, X5")
	g.i("VMAXPS X5, X4, X4") // amax in every lane
	g.i("VXORPS X5, X5, X5")
	g.i("VUCOMISS X5, X4")
	g.i("JEQ %s", zero)
	g.i("VINSERTF128 $1, X4, Y4, Y4")
	g.i("XORQ BX, BX")
	scan := g.lbl("scan")
	g.label(scan)
	g.i("VANDPS (SI)(BX*4), Y13, Y5")
	g.i("VCMPPS $0, Y4, Y5, Y5")
	g.i("VMOVMSKPS Y5, AX")
	g.i("TESTL AX, AX")
	g.i("JNZ %s", found)
	g.i("ADDQ $8, BX")
	g.i("JMP %s", scan)
	g.label(found)
	g.i("TZCNTL AX, AX")
	g.i("ADDQ AX, BX")
	g.i("VMOVSS (SI)(BX*4), X1")
	g.i("MOVL $0xc2fe0000, AX")
	g.i("VMOVD AX, X2")
	g.i("VDIVSS X1, X2, X3") // iscale = -127/max
	g.i("MOVL $0x3f800000, AX")
	g.i("VMOVD AX, X2")
	g.i("VDIVSS X3, X2, X4") // d = 1/iscale
	g.i("VMOVSS X4, (DI)")
	g.i("VBROADCASTSS X3, Y6")
	g.i("MOVL $127, AX")
	g.i("VMOVD AX, X7")
	g.i("VPBROADCASTD X7, Y7")
	g.i("MOVL $0xff, AX")
	g.i("VMOVD AX, X15")
	g.i("VPBROADCASTD X15, Y15")
	g.i("VMOVDQU %s, Y14", perm)
	for c := 0; c < 8; c++ {
		for k := 0; k < 4; k++ {
			g.i("VMULPS %d(SI), Y6, Y%d", 128*c+32*k, k)
			g.i("VCVTPS2DQ Y%d, Y%d", k, k)
			g.i("VPMINSD Y7, Y%d, Y%d", k, k)
		}
		g.narrow2(fmt.Sprintf("%d(DI)", 4+32*c))
	}
	// bsums from the stored values.
	g.bcastB("Y14", 0x80)
	g.i("VPXOR Y13, Y13, Y13")
	for k := 0; k < 8; k++ {
		g.i("VMOVDQU %d(DI), Y0", 4+32*k)
		g.i("VPXOR Y14, Y0, Y0")
		g.i("VPSADBW Y13, Y0, Y0")
		g.i("VPSHUFD $0x4e, Y0, Y1")
		g.i("VPADDQ Y1, Y0, Y0")
		g.i("VMOVD X0, AX")
		g.i("VEXTRACTI128 $1, Y0, X1")
		g.i("VMOVD X1, BX")
		g.i("SUBL $2048, AX")
		g.i("SUBL $2048, BX")
		g.i("MOVW AX, %d(DI)", 260+4*k)
		g.i("MOVW BX, %d(DI)", 262+4*k)
	}
	g.i("JMP %s", next)
	g.label(zero)
	g.i("VPXOR Y0, Y0, Y0")
	for o := 0; o+32 <= 288; o += 32 {
		g.i("VMOVDQU Y0, %d(DI)", o)
	}
	g.i("MOVL $0, 288(DI)")
	g.label(next)
	g.i("ADDQ $1024, SI")
	g.i("ADDQ $292, DI")
	g.i("DECQ CX")
	g.i("JNZ %s", loop)
	g.ret()
}

// dequantL2 dequantizes the legacy block at (DX) into Y0-Y3 (elements
// 8i..8i+7 in Yi) as tensor.DequantizeRow does. Needs X15 = 0x0f bytes,
// Y14 = bit table (Q5), Y13 = 16 (int32), Y12 = offset (int32) or, for
// IQ4_NL, X12 = the levels (int8). Clobbers Y4-Y7.
func (g *gen) dequantL2(t ltype) {
	g.i("VPBROADCASTW (DX), X4")
	g.i("VCVTPH2PS X4, X4")
	g.i("VBROADCASTSS X4, Y4") // d
	if t.mo != 0 {
		g.i("VPBROADCASTW %d(DX), X5", t.mo)
		g.i("VCVTPH2PS X5, X5")
		g.i("VBROADCASTSS X5, Y5") // m
	}
	if t.q8 {
		for i := 0; i < 4; i++ {
			g.i("VPMOVSXBD %d(DX), Y%d", t.qo+8*i, i)
		}
	} else {
		g.i("VMOVDQU %d(DX), X6", t.qo)
		g.i("VPSRLW $4, X6, X7")
		g.i("VPAND X15, X6, X6")
		g.i("VPAND X15, X7, X7")
		if t.iq4 {
			g.i("VPSHUFB X6, X12, X6")
			g.i("VPSHUFB X7, X12, X7")
			g.i("VPMOVSXBD X6, Y0")
			g.i("VPSRLDQ $8, X6, X6")
			g.i("VPMOVSXBD X6, Y1")
			g.i("VPMOVSXBD X7, Y2")
			g.i("VPSRLDQ $8, X7, X7")
			g.i("VPMOVSXBD X7, Y3")
		} else {
			g.i("VPMOVZXBD X6, Y0")
			g.i("VPSRLDQ $8, X6, X6")
			g.i("VPMOVZXBD X6, Y1")
			g.i("VPMOVZXBD X7, Y2")
			g.i("VPSRLDQ $8, X7, X7")
			g.i("VPMOVZXBD X7, Y3")
		}
		if t.qho != 0 {
			// lane l of Yi gets bit 8i+l of qh.
			g.i("VPBROADCASTD %d(DX), Y6", t.qho)
			for i := 0; i < 4; i++ {
				g.i("VPSRLD $%d, Y6, Y7", 8*i)
				g.i("VPAND Y14, Y7, Y7")
				g.i("VPCMPEQD Y14, Y7, Y7")
				g.i("VPAND Y13, Y7, Y7")
				g.i("VPOR Y7, Y%d, Y%d", i, i)
			}
		}
	}
	for i := 0; i < 4; i++ {
		r := y(i)
		switch {
		case t.q8 || t.iq4:
			g.i("VCVTDQ2PS %s, %s", r, r)
			g.i("VMULPS Y4, %s, %s", r, r)
		case t.mo != 0:
			g.i("VCVTDQ2PS %s, %s", r, r)
			g.i("VMULPS Y4, %s, %s", r, r)
			g.i("VADDPS Y5, %s, %s", r, r)
		default:
			g.i("VPSUBD Y12, %s, %s", r, r)
			g.i("VCVTDQ2PS %s, %s", r, r)
			g.i("VMULPS Y4, %s, %s", r, r)
		}
	}
}

// axpyRowsL2 is axpyRowsL512 for AVX2 (y block in Y8-Y11).
func (g *gen) axpyRowsL2(t ltype) {
	name := "axpyRows" + t.name + "AVX2"
	g.text(name, 32, name+": fused dequantize-accumulate over rows ("+t.name+").")
	g.bcastB("X15", 0x0f)
	if t.qho != 0 {
		bits := g.konst("bits8", dwords(8, func(i int) uint32 { return 1 << i }))
		g.i("VMOVDQU %s, Y14", bits)
		g.i("MOVL $16, AX")
		g.i("VMOVD AX, X13")
		g.i("VPBROADCASTD X13, Y13")
	}
	if t.qho != 0 || (!t.q8 && !t.iq4 && t.mo == 0) {
		off := 8
		if t.qho != 0 {
			off = 16
		}
		g.i("MOVL $%d, AX", off)
		g.i("VMOVD AX, X12")
		g.i("VPBROADCASTD X12, Y12")
	}
	if t.iq4 {
		tbl := g.konst("iq4i8", bytesOf(16, func(i int) byte { return byte(int8(kvaluesIQ4NL[i])) }))
		g.i("VMOVDQU %s, X12", tbl)
	}
	g.i("MOVQ %d(R14), AX", aRows)
	g.i("MOVQ AX, 0(SP)")
	g.i("MOVQ %d(R14), R8", aW)
	g.i("MOVQ %d(R14), R9", aX)
	g.i("MOVQ %d(R14), R10", aStride)
	chunk, blk, row := g.lbl("chunk"), g.lbl("blk"), g.lbl("row")
	g.label(chunk)
	g.i("MOVQ 0(SP), R11")
	g.i("MOVL $64, AX")
	g.i("CMPQ R11, AX")
	g.i("CMOVQGT AX, R11")
	g.i("MOVQ %d(R14), DI", aY)
	g.i("MOVQ %d(R14), CX", aNB)
	g.i("MOVQ R8, SI")
	g.label(blk)
	for i := 0; i < 4; i++ {
		g.i("VMOVUPS %d(DI), Y%d", 32*i, 8+i)
	}
	g.i("MOVQ SI, DX")
	g.i("MOVQ R9, BX")
	g.i("MOVQ R11, R12")
	g.label(row)
	g.dequantL2(t)
	g.i("VBROADCASTSS (BX), Y4")
	for i := 0; i < 4; i++ {
		g.i("VMULPS Y%d, Y4, Y%d", i, i)
		g.i("VADDPS Y%d, Y%d, Y%d", i, 8+i, 8+i)
	}
	g.i("ADDQ R10, DX")
	g.i("ADDQ $4, BX")
	g.i("DECQ R12")
	g.i("JNZ %s", row)
	for i := 0; i < 4; i++ {
		g.i("VMOVUPS Y%d, %d(DI)", 8+i, 32*i)
	}
	g.i("ADDQ $128, DI")
	g.i("ADDQ $%d, SI", t.bs)
	g.i("DECQ CX")
	g.i("JNZ %s", blk)
	g.i("MOVQ R11, AX")
	g.i("IMULQ R10, AX")
	g.i("ADDQ AX, R8")
	g.i("LEAQ (R9)(R11*4), R9")
	g.i("SUBQ R11, 0(SP)")
	g.i("JGT %s", chunk)
	g.ret()
}

// readAVX2 reads a.nb·128 bytes from a.w (summing them as uint64 lanes
// into a.y, 32 bytes): the memory-bandwidth benchmark's reference loop.
func (g *gen) readAVX2() {
	g.text("readAVX2", 0, "readAVX2: streaming read (bandwidth benchmark).")
	g.i("MOVQ %d(R14), SI", aW)
	g.i("MOVQ %d(R14), CX", aNB)
	for i := 0; i < 4; i++ {
		g.i("VPXOR Y%d, Y%d, Y%d", i, i, i)
	}
	loop := g.lbl("loop")
	g.label(loop)
	for i := 0; i < 4; i++ {
		g.i("VPADDQ %d(SI), Y%d, Y%d", 32*i, i, i)
	}
	g.i("ADDQ $128, SI")
	g.i("DECQ CX")
	g.i("JNZ %s", loop)
	g.i("VPADDQ Y1, Y0, Y0")
	g.i("VPADDQ Y3, Y2, Y2")
	g.i("VPADDQ Y2, Y0, Y0")
	g.i("MOVQ %d(R14), AX", aY)
	g.i("VMOVDQU Y0, (AX)")
	g.ret()
}

// ---------------------------------------------------------------- KV-cache quantizers

// The KV-cache quantizers (Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL) are
// bit-identical to tensor.QuantizeRow for inputs without NaNs. Their
// arithmetic is the reference's operation for operation (IEEE divisions
// and products, each rounded on its own, no fused multiply-add):
//
//   - Q4_0/Q5_0: max is the first element of largest magnitude (+0 when
//     all are zero): amax = max|x| (order-free), then the first index whose
//     |x| equals it; d = max/-8 (-16), id = d≠0 ? 1/d : 0.
//   - Q4_1/Q5_1: min and max start from ±FLT_MAX and are order-free
//     except for the sign of a zero: when min is ±0 it is the first zero
//     element (and max too when it is 0), as the reference's strict
//     comparisons give; d = (max-min)/15 (31).
//   - q: t = truncate(x·id + off) (VCVTTPS2DQ: 0x80000000 out of range,
//     as Go's int32 conversion on amd64), wrapped to a byte, then the
//     signed byte minimum with 15 (31) where the reference has one; Q4_0
//     and Q4_1 OR the whole low byte with the high element's byte shifted
//     by 4, Q5_x keep the low nibble and put bit 4 in qh.
//   - IQ4_NL runs 16 (AVX2: 8) blocks at once, one block per vector lane
//     (the blocks are transposed through the stack), so that every lane
//     executes the reference's scalar code in its order: the first-max
//     scan, the search for the nearest level (2x ≥ sum of neighbouring
//     levels, ties up; by bucket tables on AVX-512, by the reference's
//     binary search on AVX2), and the weighted sums accumulated over
//     j = 0..31 in turn. Short rows (AVX-512) go four blocks at a time
//     (quantIQ4NL4x512): elements across the vector, only the sums per
//     lane after a transpose of their terms.

// kvqParams returns the scale divisor, the rounding offset and the byte
// clamp (0: none) of a linear KV-cache type.
func kvqParams(t ltype) (div, off float32, clamp byte) {
	switch t.name {
	case "Q4_0":
		return -8, 8.5, 15
	case "Q4_1":
		return 15, 0.5, 15
	case "Q5_0":
		return -16, 16.5, 31
	case "Q5_1":
		return 31, 0.5, 0
	}
	panic("kvqParams: " + t.name)
}

// kvqTypes are the linear KV-cache types (IQ4_NL has its own kernels).
var kvqTypes = []ltype{ltypes[1], ltypes[2], ltypes[3], ltypes[4]}

// bcastD sets every dword of vector register r to v, via AX.
func (g *gen) bcastD(r string, v uint32) {
	g.i("MOVL $0x%08x, AX", v)
	if g.isa == "AVX2" {
		x := "X" + r[1:]
		g.i("VMOVD AX, %s", x)
		g.i("VPBROADCASTD %s, %s", x, r)
		return
	}
	g.i("VPBROADCASTD AX, %s", r)
}

// tern returns the VPTERNLOG immediate of f(A, B, C) (A the destination
// and first source; Go operand order "VPTERNLOGD $imm, C, B, A").
func tern(f func(a, b, c byte) byte) byte { return f(0xf0, 0xcc, 0xaa) }

// reduceAll512 folds op over the 16 lanes of Zr, leaving the result in
// every lane (tmp is clobbered).
func (g *gen) reduceAll512(op string, r, tmp int) {
	g.i("VSHUFF32X4 $0x4e, Z%d, Z%d, Z%d", r, r, tmp)
	g.i("%s Z%d, Z%d, Z%d", op, tmp, r, r)
	g.i("VSHUFF32X4 $0xb1, Z%d, Z%d, Z%d", r, r, tmp)
	g.i("%s Z%d, Z%d, Z%d", op, tmp, r, r)
	g.i("VPERMILPS $0x4e, Z%d, Z%d", r, tmp)
	g.i("%s Z%d, Z%d, Z%d", op, tmp, r, r)
	g.i("VPERMILPS $0xb1, Z%d, Z%d", r, tmp)
	g.i("%s Z%d, Z%d, Z%d", op, tmp, r, r)
}

// reduceAll2 is reduceAll512 for the 8 lanes of Yr.
func (g *gen) reduceAll2(op string, r, tmp int) {
	g.i("VPERM2F128 $1, Y%d, Y%d, Y%d", r, r, tmp)
	g.i("%s Y%d, Y%d, Y%d", op, tmp, r, r)
	g.i("VPERMILPS $0x4e, Y%d, Y%d", r, tmp)
	g.i("%s Y%d, Y%d, Y%d", op, tmp, r, r)
	g.i("VPERMILPS $0xb1, Y%d, Y%d", r, tmp)
	g.i("%s Y%d, Y%d, Y%d", op, tmp, r, r)
}

// quantKV512 quantizes a.nb blocks of 32 float32 at a.x into t (Q4_0,
// Q4_1, Q5_0 or Q5_1) at a.y, one block per iteration.
func (g *gen) quantKV512(t ltype) {
	name := "quant" + t.name + "AVX512"
	div, off, clamp := kvqParams(t)
	minmax, q5 := t.mo != 0, t.qho != 0
	g.text(name, 0, name+": KV-cache quantizer (tensor.QuantizeRow bit for bit).")
	g.i("MOVQ %d(R14), SI", aX)
	g.i("MOVQ %d(R14), DI", aY)
	g.i("MOVQ %d(R14), CX", aNB)
	g.bcastD("Z31", 0x7fffffff)
	g.bcastD("Z30", f32bits(off))
	g.i("MOVL $0x%08x, AX", f32bits(div))
	g.i("VMOVD AX, X29")
	g.i("MOVL $0x3f800000, AX")
	g.i("VMOVD AX, X28") // 1
	g.i("VPXORD Z27, Z27, Z27")
	if clamp != 0 {
		g.bcastB("Z26", clamp)
	}
	g.bcastB("Z25", 0xf0)
	if q5 {
		g.bcastB("Z24", 0x10)
	}
	if minmax {
		g.bcastD("Z23", f32bits(math.MaxFloat32))
		g.bcastD("Z22", f32bits(-math.MaxFloat32))
	}
	loop, fix, back := g.lbl("blk"), g.lbl("fix"), g.lbl("back")
	g.label(loop)
	g.i("VMOVUPS (SI), Z0")
	g.i("VMOVUPS 64(SI), Z1")
	if !minmax {
		g.i("VANDPS Z31, Z0, Z2")
		g.i("VANDPS Z31, Z1, Z3")
		g.i("VMAXPS Z3, Z2, Z4")
		g.reduceAll512("VMAXPS", 4, 5) // amax in every lane
		g.i("VCMPPS $0, Z4, Z2, K1")
		g.i("VCMPPS $0, Z4, Z3, K2")
		g.i("KUNPCKWD K1, K2, K3")
		g.i("KMOVD K3, AX")
		g.i("TZCNTL AX, AX")
		g.i("ANDL $31, AX") // only NaNs can leave no match
		g.i("VMOVSS (SI)(AX*4), X6")
		g.i("VCMPSS $4, X27, X4, K4") // amax != 0, else max = +0
		g.i("VMOVSS.Z X6, X6, K4, X6")
		g.i("VDIVSS X29, X6, X7") // d = max/-8 (-16)
	} else {
		g.i("VMINPS Z1, Z0, Z2")
		g.i("VMINPS Z23, Z2, Z2")
		g.reduceAll512("VMINPS", 2, 5)
		g.i("VMAXPS Z1, Z0, Z3")
		g.i("VMAXPS Z22, Z3, Z3")
		g.reduceAll512("VMAXPS", 3, 5)
		g.i("VUCOMISS X27, X2")
		g.i("JEQ %s", fix)
		g.label(back)
		g.i("VSUBSS X2, X3, X7")
		g.i("VDIVSS X29, X7, X7") // d = (max-min)/15 (31)
	}
	g.i("VDIVSS X7, X28, X8")
	g.i("VCMPSS $4, X27, X7, K5")  // d != 0
	g.i("VMOVSS.Z X8, X8, K5, X8") // id
	if minmax {
		g.i("VUNPCKLPS X2, X7, X9") // d, min
		g.i("VCVTPS2PH $0, X9, X9")
		g.i("VMOVD X9, (DI)")
		g.i("VBROADCASTSS X2, Z6")
		g.i("VSUBPS Z6, Z0, Z0")
		g.i("VSUBPS Z6, Z1, Z1")
	} else {
		g.i("VCVTPS2PH $0, X7, X9")
		g.i("VPEXTRW $0, X9, (DI)")
	}
	g.i("VBROADCASTSS X8, Z8")
	for h := 0; h < 2; h++ {
		g.i("VMULPS Z8, Z%d, Z%d", h, h)
		g.i("VADDPS Z30, Z%d, Z%d", h, h)
		g.i("VCVTTPS2DQ Z%d, Z%d", h, h)
		g.i("VPMOVDB Z%d, X%d", h, h)
		if clamp != 0 {
			g.i("VPMINSB X26, X%d, X%d", h, h)
		}
	}
	g.i("VPSLLW $4, X1, X9")
	if q5 {
		g.i("VPTESTMB X24, X0, K1")
		g.i("VPTESTMB X24, X1, K2")
		g.i("KUNPCKWD K1, K2, K3")
		g.i("KMOVD K3, %d(DI)", t.qho)
		// low nibble of the low element, high nibble from the high one
		g.i("VPTERNLOGD $0x%02x, X25, X9, X0", tern(func(a, b, c byte) byte { return b&c | a&^c }))
	} else {
		g.i("VPTERNLOGD $0x%02x, X25, X9, X0", tern(func(a, b, c byte) byte { return a | b&c }))
	}
	g.i("VMOVDQU X0, %d(DI)", t.qo)
	g.i("ADDQ $128, SI")
	g.i("ADDQ $%d, DI", t.bs)
	g.i("DECQ CX")
	g.i("JNZ %s", loop)
	g.ret()
	if minmax {
		// min is ±0: the reference keeps the first zero element (and, when
		// all are zero, max is that element too).
		g.label(fix)
		g.i("VCMPPS $0, Z27, Z0, K1")
		g.i("VCMPPS $0, Z27, Z1, K2")
		g.i("KUNPCKWD K1, K2, K3")
		g.i("KMOVD K3, AX")
		g.i("TZCNTL AX, AX")
		g.i("ANDL $31, AX")
		g.i("VMOVSS (SI)(AX*4), X2")
		g.i("VUCOMISS X27, X3")
		g.i("JNE %s", back)
		g.i("VMOVAPS X2, X3")
		g.i("JMP %s", back)
	}
}

// quantKV2 is quantKV512 for AVX2.
func (g *gen) quantKV2(t ltype) {
	name := "quant" + t.name + "AVX2"
	div, off, clamp := kvqParams(t)
	minmax, q5 := t.mo != 0, t.qho != 0
	g.text(name, 0, name+": KV-cache quantizer (tensor.QuantizeRow bit for bit).")
	perm := g.konst("phaddperm", dwords(8, func(i int) uint32 { return uint32([]int{0, 4, 1, 5, 2, 6, 3, 7}[i]) }))
	cOff := g.konst("kvqOff"+t.name, dwords(8, func(int) uint32 { return f32bits(off) }))
	cDiv := g.konst("kvqDiv"+t.name, dwords(1, func(int) uint32 { return f32bits(div) }))
	cOne := g.konst("kvqOne", dwords(1, func(int) uint32 { return f32bits(1) }))
	cFF := g.konst("kvqFF", dwords(8, func(int) uint32 { return 0xff }))
	cF0 := g.konst("kvqF0", bytesOf(16, func(int) byte { return 0xf0 }))
	c0F := g.konst("kvq0F", bytesOf(16, func(int) byte { return 0x0f }))
	g.i("MOVQ %d(R14), SI", aX)
	g.i("MOVQ %d(R14), DI", aY)
	g.i("MOVQ %d(R14), CX", aNB)
	g.i("VMOVDQU %s, Y14", perm)
	if !minmax {
		g.bcastD("Y15", 0x7fffffff)
	}
	var cClamp, cMax, cMin string
	if clamp != 0 {
		cClamp = g.konst(fmt.Sprintf("kvqClamp%d", clamp), bytesOf(32, func(int) byte { return clamp }))
	}
	if minmax {
		cMax = g.konst("kvqFltMax", dwords(8, func(int) uint32 { return f32bits(math.MaxFloat32) }))
		cMin = g.konst("kvqFltMin", dwords(8, func(int) uint32 { return f32bits(-math.MaxFloat32) }))
	}
	// packMask narrows the compare masks in Y(r0..r0+3) (elements 0-31)
	// to a bit mask and leaves the index of its lowest set bit in AX.
	packMask := func(r0 int) {
		g.i("VPACKSSDW Y%d, Y%d, Y%d", r0+1, r0, r0)
		g.i("VPACKSSDW Y%d, Y%d, Y%d", r0+3, r0+2, r0+2)
		g.i("VPACKSSWB Y%d, Y%d, Y%d", r0+2, r0, r0)
		g.i("VPERMD Y%d, Y14, Y%d", r0, r0)
		g.i("VPMOVMSKB Y%d, AX", r0)
		g.i("TZCNTL AX, AX")
		g.i("ANDL $31, AX") // only NaNs can leave no match
	}
	loop, fix, back := g.lbl("blk"), g.lbl("fix"), g.lbl("back")
	g.label(loop)
	for k := 0; k < 4; k++ {
		g.i("VMOVUPS %d(SI), Y%d", 32*k, k)
	}
	g.i("VXORPS X11, X11, X11")
	if !minmax {
		for k := 0; k < 4; k++ {
			g.i("VANDPS Y15, Y%d, Y%d", k, 4+k)
		}
		g.i("VMAXPS Y5, Y4, Y8")
		g.i("VMAXPS Y7, Y6, Y9")
		g.i("VMAXPS Y9, Y8, Y8")
		g.reduceAll2("VMAXPS", 8, 9) // amax in every lane
		for k := 0; k < 4; k++ {
			g.i("VCMPPS $0, Y8, Y%d, Y%d", 4+k, 4+k)
		}
		packMask(4)
		g.i("VMOVSS (SI)(AX*4), X10")
		g.i("VCMPSS $4, X11, X8, X12") // amax != 0, else max = +0
		g.i("VANDPS X12, X10, X10")
		g.i("VDIVSS %s, X10, X7", cDiv) // d
	} else {
		g.i("VMINPS Y1, Y0, Y4")
		g.i("VMINPS Y3, Y2, Y5")
		g.i("VMINPS Y5, Y4, Y4")
		g.i("VMINPS %s, Y4, Y4", cMax)
		g.reduceAll2("VMINPS", 4, 9)
		g.i("VMAXPS Y1, Y0, Y5")
		g.i("VMAXPS Y3, Y2, Y6")
		g.i("VMAXPS Y6, Y5, Y5")
		g.i("VMAXPS %s, Y5, Y5", cMin)
		g.reduceAll2("VMAXPS", 5, 9)
		g.i("VUCOMISS X11, X4")
		g.i("JEQ %s", fix)
		g.label(back)
		g.i("VSUBSS X4, X5, X7")
		g.i("VDIVSS %s, X7, X7", cDiv) // d
	}
	g.i("VMOVSS %s, X8", cOne)
	g.i("VDIVSS X7, X8, X8")
	g.i("VCMPSS $4, X11, X7, X12") // d != 0
	g.i("VANDPS X12, X8, X8")      // id
	if minmax {
		g.i("VUNPCKLPS X4, X7, X9") // d, min
		g.i("VCVTPS2PH $0, X9, X9")
		g.i("VMOVD X9, (DI)")
		g.i("VBROADCASTSS X4, Y12")
	} else {
		g.i("VCVTPS2PH $0, X7, X9")
		g.i("VPEXTRW $0, X9, (DI)")
	}
	g.i("VBROADCASTSS X8, Y13")
	for k := 0; k < 4; k++ {
		if minmax {
			g.i("VSUBPS Y12, Y%d, Y%d", k, k)
		}
		g.i("VMULPS Y13, Y%d, Y%d", k, k)
		g.i("VADDPS %s, Y%d, Y%d", cOff, k, k)
		g.i("VCVTTPS2DQ Y%d, Y%d", k, k)
		g.i("VPAND %s, Y%d, Y%d", cFF, k, k)
	}
	g.i("VPACKUSDW Y1, Y0, Y0")
	g.i("VPACKUSDW Y3, Y2, Y2")
	g.i("VPACKUSWB Y2, Y0, Y0")
	g.i("VPERMD Y0, Y14, Y0") // the 32 wrapped bytes in order
	if clamp != 0 {
		g.i("VPMINSB %s, Y0, Y0", cClamp)
	}
	if q5 {
		g.i("VPSLLW $3, Y0, Y1") // bit 4 → bit 7 of each byte
		g.i("VPMOVMSKB Y1, AX")
		g.i("MOVL AX, %d(DI)", t.qho)
	}
	g.i("VEXTRACTI128 $1, Y0, X1")
	g.i("VPSLLW $4, X1, X1")
	g.i("VPAND %s, X1, X1", cF0)
	if q5 {
		g.i("VPAND %s, X0, X0", c0F)
	}
	g.i("VPOR X1, X0, X0")
	g.i("VMOVDQU X0, %d(DI)", t.qo)
	g.i("ADDQ $128, SI")
	g.i("ADDQ $%d, DI", t.bs)
	g.i("DECQ CX")
	g.i("JNZ %s", loop)
	g.ret()
	if minmax {
		// As quantKV512: min is ±0, take the first zero element.
		g.label(fix)
		for k := 0; k < 4; k++ {
			g.i("VCMPPS $0, Y11, Y%d, Y%d", k, 6+k)
		}
		packMask(6)
		g.i("VMOVSS (SI)(AX*4), X4")
		g.i("VUCOMISS X11, X5")
		g.i("JNE %s", back)
		g.i("VMOVAPS X4, X5")
		g.i("JMP %s", back)
	}
}

// iq4Tables returns the binary-search thresholds T[j] = kv[j-1]+kv[j]
// (T[0] unused) and the levels, as float32.
func iq4Tables() (T, KV [16]float32) {
	for j := 0; j < 16; j++ {
		KV[j] = float32(kvaluesIQ4NL[j])
		if j > 0 {
			T[j] = float32(kvaluesIQ4NL[j-1] + kvaluesIQ4NL[j])
		}
	}
	return
}

// IQ4_NL level search by buckets (AVX-512). The reference's binary search
// returns idx = #{j ≥ 1 : 2x ≥ T[j]}. Buckets of width iq4BW in 2x,
// b = trunc(x·(2/iq4BW) + iq4BO), hold at most one threshold each, at
// least 3 away from the bucket edges, so that idx = C[b] + (2x ≥ TB[b])
// with C[b] the thresholds below the bucket and TB[b] the next one (+Inf
// past the last): only the choice of bucket uses the (fused, inexact)
// scaling, the decision is the reference's exact comparison. |2x| ≤ 254
// (to a few ulps) in every lane whose block is not zeroed, so b is in
// 0..23; NaN (from 0·Inf) converts to 0x80000000, whose low five bits,
// all VPERMI2D/VPERMT2D look at, give bucket 0: C = 0 and the comparison
// fails, index 0 as in the reference.
const (
	iq4BW = 22
	iq4BO = 12
)

func iq4Buckets() (C [32]int32, TB [32]float32) {
	T, _ := iq4Tables()
	bucket := func(x2 float64) int { return int(math.Floor(x2/iq4BW + iq4BO)) }
	if bucket(-255) < 0 || bucket(255) > 31 {
		panic("iq4Buckets: range")
	}
	seen := map[int]bool{}
	for j := 1; j < 16; j++ {
		u := float64(T[j])/iq4BW + iq4BO
		if f := u - math.Floor(u); math.Min(f, 1-f)*iq4BW < 2 || seen[bucket(float64(T[j]))] {
			panic("iq4Buckets: threshold too close to an edge or sharing a bucket")
		}
		seen[bucket(float64(T[j]))] = true
	}
	for b := 0; b < 32; b++ {
		n := 0
		for j := 1; j < 16; j++ {
			if bucket(float64(T[j])) < b {
				n++
			}
		}
		C[b] = int32(n)
		TB[b] = float32(math.Inf(1))
		if n < 15 {
			TB[b] = T[n+1]
		}
	}
	return
}

func f32table(v []float32) []byte {
	return dwords(len(v), func(i int) uint32 { return f32bits(v[i]) })
}

// iq4Eps is float32(groupMaxEps): blocks with amax below it are zero.
const iq4Eps = float32(1e-15)

// iq4Nibble returns the packed-word accumulator k and shift of element j's
// index: byte j%16 of the block's qs, low nibble for j < 16.
func iq4Nibble(j int) (k, sh int) {
	b := j % 16
	sh = 8 * (b % 4)
	if j >= 16 {
		sh += 4
	}
	return b / 4, sh
}

// iq4Consts512 loads the constants of the AVX-512 IQ4_NL kernels: Z31
// |.| mask, Z30 iq4BO, Z29 the levels, Z28/Z27 C, Z26/Z25 TB, Z24 1
// (int32), Z23 eps, Z22 -127, Z21 1.0, Z20 2/iq4BW.
func (g *gen) iq4Consts512() {
	_, KV := iq4Tables()
	C, TB := iq4Buckets()
	cKV := g.konst("iq4KV", f32table(KV[:]))
	cC := g.konst("iq4C", dwords(16, func(i int) uint32 { return uint32(C[i]) }))
	cC2 := g.konst("iq4C2", dwords(16, func(i int) uint32 { return uint32(C[16+i]) }))
	cTB := g.konst("iq4TB", f32table(TB[:16]))
	cTB2 := g.konst("iq4TB2", f32table(TB[16:]))
	g.bcastD("Z31", 0x7fffffff)
	g.bcastD("Z30", f32bits(iq4BO))
	g.i("VMOVUPS %s, Z29", cKV)
	g.i("VMOVDQU32 %s, Z28", cC)
	g.i("VMOVDQU32 %s, Z27", cC2)
	g.i("VMOVUPS %s, Z26", cTB)
	g.i("VMOVUPS %s, Z25", cTB2)
	g.bcastD("Z24", 1)
	g.bcastD("Z23", f32bits(iq4Eps))
	g.bcastD("Z22", f32bits(-127))
	g.bcastD("Z21", f32bits(1))
	g.bcastD("Z20", f32bits(2.0/iq4BW))
}

// iq4Search512 sets Z(idx) to the reference's level index of x = id·v
// (in Zx, destroyed) given 2x in Z(x2), by the bucket tables (see
// iq4Buckets). Needs iq4Consts512; k is a free mask register.
func (g *gen) iq4Search512(x, x2, idx int, k string) {
	g.i("VFMADD132PS Z20, Z30, Z%d", x) // x·(2/BW) + BO
	g.i("VCVTTPS2DQ Z%d, Z%d", x, x)    // bucket
	g.i("VMOVDQA32 Z28, Z%d", idx)
	g.i("VPERMT2D Z27, Z%d, Z%d", x, idx) // C[b]
	g.i("VPERMI2PS Z25, Z26, Z%d", x)     // TB[b]
	g.i("VCMPPS $13, Z%d, Z%d, %s", x, x2, k)
	g.i("VPADDD Z24, Z%d, %s, Z%d", idx, k, idx)
}

// alignedFrame points BX at the first align-byte boundary of the frame
// (which is allocated align bytes larger), so that full-vector spills
// never straddle cache lines.
func (g *gen) alignedFrame(align int) {
	g.i("LEAQ %d(SP), BX", align-1)
	g.i("ANDQ $%d, BX", -align)
}

// quantIQ4NL512 quantizes a.nb groups of 16 IQ4_NL blocks (512 float32 at
// a.x, 288 bytes at a.y). Lane b of every vector is block b of the group.
// Frame: the transposed group, column j (element j of the 16 blocks) at
// 64·j.
func (g *gen) quantIQ4NL512() {
	name := "quantIQ4_NLAVX512"
	g.text(name, 2112, name+": KV-cache quantizer, 16 blocks a lane each (tensor.QuantizeRow bit for bit).")
	g.i("MOVQ %d(R14), SI", aX)
	g.i("MOVQ %d(R14), DI", aY)
	g.i("MOVQ %d(R14), CX", aNB)
	g.alignedFrame(64) // BX
	loop := g.lbl("grp")
	g.label(loop)
	// Transpose the 16×32 group into columns.
	for h := 0; h < 2; h++ {
		for r := 0; r < 16; r++ {
			g.i("VMOVUPS %d(SI), Z%d", 128*r+64*h, r)
		}
		out := g.transpose16() // clobbers Z16-Z31
		for c := 0; c < 16; c++ {
			g.i("VMOVUPS Z%d, %d(BX)", out[c], 64*(16*h+c))
		}
	}
	g.iq4Consts512()
	// First element of largest magnitude, as "if amax < |v| { amax, max =
	// |v|, v }" from +0: four chains of 8 columns, then merged in order
	// (the later chain wins only when strictly larger).
	for q := 0; q < 4; q++ {
		g.i("VPXORD Z%d, Z%d, Z%d", 8+q, 8+q, 8+q)
		g.i("VPXORD Z%d, Z%d, Z%d", 12+q, 12+q, 12+q)
	}
	for i := 0; i < 8; i++ {
		for q := 0; q < 4; q++ {
			v, a, k := 2*q, 2*q+1, 1+q
			g.i("VMOVUPS %d(BX), Z%d", 64*(8*q+i), v)
			g.i("VANDPS Z31, Z%d, Z%d", v, a)
			g.i("VCMPPS $0x11, Z%d, Z%d, K%d", a, 8+q, k) // amax < |v|
			g.i("VMOVAPS Z%d, K%d, Z%d", a, k, 8+q)
			g.i("VMOVAPS Z%d, K%d, Z%d", v, k, 12+q)
		}
	}
	for _, p := range [][2]int{{0, 1}, {2, 3}, {0, 2}} {
		a, b := p[0], p[1]
		g.i("VCMPPS $0x11, Z%d, Z%d, K1", 8+b, 8+a)
		g.i("VMOVAPS Z%d, K1, Z%d", 8+b, 8+a)
		g.i("VMOVAPS Z%d, K1, Z%d", 12+b, 12+a)
	}
	g.i("VCMPPS $13, Z23, Z8, K7") // amax >= eps (amax is never NaN)
	g.i("VDIVPS Z22, Z12, Z12")    // d = max/-127
	g.i("VDIVPS Z12, Z21, Z19")    // id = 1/d
	g.i("VPXORD Z17, Z17, Z17")    // sumqx
	g.i("VPXORD Z18, Z18, Z18")    // sumq2
	for j := 0; j < 32; j++ {
		g.i("VMOVUPS %d(BX), Z0", 64*j) // v
		g.i("VMULPS Z0, Z19, Z1")       // x = id·v
		g.i("VADDPS Z1, Z1, Z2")        // 2x
		g.iq4Search512(1, 2, 3, "K1")
		g.i("VPERMPS Z29, Z3, Z5") // q = kv[idx]
		g.i("VMULPS Z0, Z0, Z6")   // w = v·v
		g.i("VMULPS Z5, Z6, Z6")   // wq = w·q
		g.i("VMULPS Z0, Z6, Z7")
		g.i("VADDPS Z7, Z17, Z17") // sumqx += wq·v
		g.i("VMULPS Z5, Z6, Z7")
		g.i("VADDPS Z7, Z18, Z18") // sumq2 += wq·q
		k, sh := iq4Nibble(j)
		if sh == 0 {
			g.i("VMOVDQA32 Z3, Z%d", 8+k)
		} else {
			g.i("VPSLLD $%d, Z3, Z12", sh)
			g.i("VPORD Z12, Z%d, Z%d", 8+k, 8+k)
		}
	}
	g.i("VDIVPS Z18, Z17, Z12") // d = sumqx/sumq2
	g.i("VPXORD Z13, Z13, Z13")
	g.i("VCMPPS $14, Z13, Z18, K2") // sumq2 > 0
	g.i("KANDW K7, K2, K2")
	g.i("VMOVAPS.Z Z12, K2, Z12")
	for k := 0; k < 4; k++ {
		g.i("VMOVDQA32.Z Z%d, K7, Z%d", 8+k, 8+k)
	}
	g.i("VCVTPS2PH $0, Z12, Y12")
	// Lane b of Z8+k holds qs bytes 4k..4k+3 of block b: 4×4 transposes
	// within each 128-bit lane give block 4L+i in lane L of Zi.
	g.i("VPUNPCKLDQ Z9, Z8, Z14")
	g.i("VPUNPCKHDQ Z9, Z8, Z15")
	g.i("VPUNPCKLDQ Z11, Z10, Z16")
	g.i("VPUNPCKHDQ Z11, Z10, Z17")
	g.i("VPUNPCKLQDQ Z16, Z14, Z0")
	g.i("VPUNPCKHQDQ Z16, Z14, Z1")
	g.i("VPUNPCKLQDQ Z17, Z15, Z2")
	g.i("VPUNPCKHQDQ Z17, Z15, Z3")
	for l := 0; l < 4; l++ {
		for i := 0; i < 4; i++ {
			b := 4*l + i
			if l == 0 {
				g.i("VMOVDQU X%d, %d(DI)", i, 18*b+2)
			} else {
				g.i("VEXTRACTI32X4 $%d, Z%d, %d(DI)", l, i, 18*b+2)
			}
		}
	}
	g.i("VEXTRACTI128 $1, Y12, X13")
	for b := 0; b < 16; b++ {
		g.i("VPEXTRW $%d, X%d, %d(DI)", b%8, 12+b/8, 18*b)
	}
	g.i("ADDQ $2048, SI")
	g.i("ADDQ $288, DI")
	g.i("DECQ CX")
	g.i("JNZ %s", loop)
	g.ret()
}

// quantIQ4NL4x512 quantizes a.nb IQ4_NL blocks (any number; for rows
// shorter than a group of 16) four at a time. Each block's elements are
// handled 16 to a vector; only the two weighted sums run element by
// element, in the reference's order, for the four blocks at once (one
// xmm lane each) after a transpose of their terms. A last group of fewer
// than four blocks is loaded with zero masks (no access beyond the row;
// zero blocks are quantized and not stored).
//
// Frame: terms wq·v of slot s at 128·s, wq·q at 512+128·s; packed qs of
// slot s at 1024+16·s; transposed terms from 1088 (wq·v) and 1600 (wq·q):
// element j of the four blocks at 256·(j/16) + 64·(j%4) + 16·(j%16/4).
func (g *gen) quantIQ4NL4x512() {
	name := "quantIQ4_NL4AVX512"
	g.text(name, 2176, name+": KV-cache quantizer, four blocks at a time (tensor.QuantizeRow bit for bit).")
	const fPack, fT = 1024, 1088
	g.i("MOVQ %d(R14), SI", aX)
	g.i("MOVQ %d(R14), DI", aY)
	g.i("MOVQ %d(R14), CX", aNB)
	g.alignedFrame(64) // BX
	g.iq4Consts512()
	loop, done := g.lbl("grp"), g.lbl("done")
	g.label(loop)
	for sl := 0; sl < 4; sl++ {
		if sl == 0 {
			g.i("VMOVUPS (SI), Z0")
			g.i("VMOVUPS 64(SI), Z1")
		} else {
			g.i("MOVL $0xffff, AX")
			g.i("XORL DX, DX")
			g.i("CMPQ CX, $%d", sl+1)
			g.i("CMOVQLT DX, AX") // slot beyond the row: nothing loaded
			g.i("KMOVW AX, K1")
			g.i("VMOVUPS.Z %d(SI), K1, Z0", 128*sl)
			g.i("VMOVUPS.Z %d(SI), K1, Z1", 128*sl+64)
		}
		g.i("VANDPS Z31, Z0, Z2")
		g.i("VANDPS Z31, Z1, Z3")
		g.i("VMAXPS Z3, Z2, Z4")
		g.reduceAll512("VMAXPS", 4, 5) // amax
		g.i("VCMPPS $13, Z23, Z4, K5") // amax >= eps, in all 16 bits
		if sl == 0 {
			g.i("VMOVAPS X4, X17")
		} else {
			g.i("VINSERTPS $0x%02x, X4, X17, X17", sl<<4) // amax of the four
		}
		// max: the first element of magnitude amax (index 0 if none).
		g.i("VCMPPS $0, Z4, Z2, K1")
		g.i("VCMPPS $0, Z4, Z3, K2")
		g.i("KUNPCKWD K1, K2, K3")
		g.i("KMOVD K3, AX")
		g.i("TZCNTL AX, AX")
		g.i("VPBROADCASTD AX, Z6")
		g.i("VPERMI2PS Z1, Z0, Z6") // max (low five index bits)
		g.i("VDIVSS X22, X6, X7")   // d = max/-127
		g.i("VDIVSS X7, X21, X8")   // id = 1/d
		g.i("VBROADCASTSS X8, Z8")
		for h := 0; h < 2; h++ {
			v, x, x2, idx, q, w, k := h, 10+h, 12+h, 14+h, 16+h, 18+h, fmt.Sprintf("K%d", 1+h)
			if h == 1 {
				q, w = 6, 7
			}
			g.i("VMULPS Z8, Z%d, Z%d", v, x) // x = id·v
			g.i("VADDPS Z%d, Z%d, Z%d", x, x, x2)
			g.iq4Search512(x, x2, idx, k)
			g.i("VPERMPS Z29, Z%d, Z%d", idx, q)
			g.i("VMULPS Z%d, Z%d, Z%d", v, v, w) // w
			g.i("VMULPS Z%d, Z%d, Z%d", q, w, w) // wq
			g.i("VMULPS Z%d, Z%d, Z%d", v, w, x)
			g.i("VMOVUPS Z%d, %d(BX)", x, 128*sl+64*h) // wq·v
			g.i("VMULPS Z%d, Z%d, Z%d", q, w, x2)
			g.i("VMOVUPS Z%d, %d(BX)", x2, 512+128*sl+64*h) // wq·q
		}
		g.i("VPMOVDB Z14, X4")
		g.i("VPMOVDB Z15, X5")
		g.i("VPSLLW $4, X5, X5") // indices ≤ 15: no bits cross bytes
		g.i("VPORD X5, X4, X4")
		g.i("VMOVDQU8.Z X4, K5, X4") // zero block: indices 0
		g.i("VMOVDQU X4, %d(BX)", fPack+16*sl)
	}
	// Transpose the terms: four rows (blocks) of 16, 4×4 within each
	// 128-bit lane.
	for sum := 0; sum < 2; sum++ {
		for h := 0; h < 2; h++ {
			for sl := 0; sl < 4; sl++ {
				g.i("VMOVUPS %d(BX), Z%d", 512*sum+128*sl+64*h, sl)
			}
			g.i("VUNPCKLPS Z1, Z0, Z4")
			g.i("VUNPCKHPS Z1, Z0, Z5")
			g.i("VUNPCKLPS Z3, Z2, Z6")
			g.i("VUNPCKHPS Z3, Z2, Z7")
			g.i("VUNPCKLPD Z6, Z4, Z0")
			g.i("VUNPCKHPD Z6, Z4, Z1")
			g.i("VUNPCKLPD Z7, Z5, Z2")
			g.i("VUNPCKHPD Z7, Z5, Z3")
			for i := 0; i < 4; i++ {
				g.i("VMOVUPS Z%d, %d(BX)", i, fT+512*sum+256*h+64*i)
			}
		}
	}
	g.i("VXORPS X0, X0, X0")
	g.i("VXORPS X1, X1, X1")
	for j := 0; j < 32; j++ {
		off := fT + 256*(j/16) + 64*(j%4) + 16*(j%16/4)
		g.i("VADDPS %d(BX), X0, X0", off)     // sumqx
		g.i("VADDPS %d(BX), X1, X1", 512+off) // sumq2
	}
	g.i("VDIVPS X1, X0, X2") // d = sumqx/sumq2
	g.i("VXORPS X3, X3, X3")
	g.i("VCMPPS $14, X3, X1, K1")   // sumq2 > 0
	g.i("VCMPPS $13, X23, X17, K2") // amax >= eps
	g.i("KANDW K2, K1, K1")
	g.i("VMOVAPS.Z X2, K1, X2")
	g.i("VCVTPS2PH $0, X2, X2")
	for sl := 0; sl < 4; sl++ {
		if sl > 0 {
			g.i("CMPQ CX, $%d", sl+1)
			g.i("JLT %s", done)
		}
		g.i("VPEXTRW $%d, X2, %d(DI)", sl, 18*sl)
		g.i("VMOVDQU %d(BX), X3", fPack+16*sl)
		g.i("VMOVDQU X3, %d(DI)", 18*sl+2)
	}
	g.i("ADDQ $512, SI")
	g.i("ADDQ $72, DI")
	g.i("SUBQ $4, CX")
	g.i("JGT %s", loop)
	g.label(done)
	g.ret()
}

// quantIQ4NL2 is quantIQ4NL512 for AVX2: a.nb groups of 8 blocks (256
// float32, 144 bytes), lane b = block b. Frame: columns at 32·j, the
// "amax ≥ eps" mask at 1024.
func (g *gen) quantIQ4NL2() {
	name := "quantIQ4_NLAVX2"
	g.text(name, 1088, name+": KV-cache quantizer, 8 blocks a lane each (tensor.QuantizeRow bit for bit).")
	T, KV := iq4Tables()
	// Search tables indexed by the low three bits of minus a partial
	// index (see the search below).
	neg := func(i int) int { return -i & 7 }
	tab2 := make([]float32, 8)
	tab1 := make([]float32, 8)
	kvlo := make([]float32, 8)
	kvhi := make([]float32, 8)
	for i := 0; i < 4; i++ {
		tab2[neg(i)] = T[4*i+2]
	}
	for i := 0; i < 8; i++ {
		tab1[neg(i)] = T[2*i+1]
		kvlo[neg(i)] = KV[i]
		kvhi[neg(i)] = KV[8+i]
	}
	cTab2 := g.konst("iq4Tab2", f32table(tab2))
	cTab1 := g.konst("iq4Tab1", f32table(tab1))
	cKVlo := g.konst("iq4KVnlo", f32table(kvlo))
	cKVhi := g.konst("iq4KVnhi", f32table(kvhi))
	bc := func(name string, v uint32) string {
		return g.konst(name, dwords(8, func(int) uint32 { return v }))
	}
	cAbs := bc("iq4Abs", 0x7fffffff)
	cT8 := bc("iq4T8", f32bits(T[8]))
	cT4 := bc("iq4T4", f32bits(T[4]))
	cT12 := bc("iq4T12", f32bits(T[12]))
	cEps := bc("iq4Eps", f32bits(iq4Eps))
	cM127 := bc("iq4M127", f32bits(-127))
	cOne := bc("iq4One", f32bits(1))
	g.i("MOVQ %d(R14), SI", aX)
	g.i("MOVQ %d(R14), DI", aY)
	g.i("MOVQ %d(R14), CX", aNB)
	g.alignedFrame(32) // BX
	loop := g.lbl("grp")
	g.label(loop)
	for c := 0; c < 4; c++ {
		for r := 0; r < 8; r++ {
			g.i("VMOVUPS %d(SI), Y%d", 128*r+32*c, r)
		}
		out := g.transpose8()
		for k := 0; k < 8; k++ {
			g.i("VMOVUPS Y%d, %d(BX)", out[k], 32*(8*c+k))
		}
	}
	// First element of largest magnitude: four chains (amax Y8-Y11, max
	// Y12-Y15), merged in order.
	for q := 0; q < 4; q++ {
		g.i("VXORPS Y%d, Y%d, Y%d", 8+q, 8+q, 8+q)
		g.i("VXORPS Y%d, Y%d, Y%d", 12+q, 12+q, 12+q)
	}
	for i := 0; i < 8; i++ {
		for q := 0; q < 4; q++ {
			g.i("VMOVUPS %d(BX), Y0", 32*(8*q+i))
			g.i("VANDPS %s, Y0, Y1", cAbs)
			g.i("VCMPPS $0x11, Y1, Y%d, Y2", 8+q) // amax < |v|
			g.i("VBLENDVPS Y2, Y1, Y%d, Y%d", 8+q, 8+q)
			g.i("VBLENDVPS Y2, Y0, Y%d, Y%d", 12+q, 12+q)
		}
	}
	for _, p := range [][2]int{{0, 1}, {2, 3}, {0, 2}} {
		a, b := p[0], p[1]
		g.i("VCMPPS $0x11, Y%d, Y%d, Y2", 8+b, 8+a)
		g.i("VBLENDVPS Y2, Y%d, Y%d, Y%d", 8+b, 8+a, 8+a)
		g.i("VBLENDVPS Y2, Y%d, Y%d, Y%d", 12+b, 12+a, 12+a)
	}
	g.i("VCMPPS $13, %s, Y8, Y0", cEps) // amax >= eps
	g.i("VMOVUPS Y0, 1024(BX)")
	g.i("VDIVPS %s, Y12, Y12", cM127) // d = max/-127
	g.i("VMOVUPS %s, Y15", cOne)
	g.i("VDIVPS Y12, Y15, Y15") // id
	g.i("VXORPS Y14, Y14, Y14") // sumqx
	g.i("VXORPS Y13, Y13, Y13") // sumq2
	// Y9-Y12: packed qs words.
	for j := 0; j < 32; j++ {
		g.i("VMOVUPS %d(BX), Y0", 32*j) // v
		g.i("VMULPS Y0, Y15, Y1")       // x = id·v
		g.i("VADDPS Y1, Y1, Y1")        // 2x
		// The reference's binary search, one comparison per step, with
		// a = (2x ≥ T[8]), b, c, d the later steps (each mask -1 or 0):
		// s2 = -(2a+b), s1 = -(4a+2b+c), s0 = -idx; a table read with
		// a negative index takes its low three bits (tables built to
		// match, the upper half of a 16-entry one chosen by a).
		g.i("VCMPPS $13, %s, Y1, Y2", cT8) // a
		g.i("VMOVUPS %s, Y3", cT4)
		g.i("VBLENDVPS Y2, %s, Y3, Y3", cT12) // T[4+8a]
		g.i("VCMPPS $13, Y3, Y1, Y3")         // b
		g.i("VPADDD Y2, Y2, Y4")
		g.i("VPADDD Y3, Y4, Y4") // s2
		g.i("VPERMPS %s, Y4, Y5", cTab2)
		g.i("VCMPPS $13, Y5, Y1, Y5") // c
		g.i("VPADDD Y4, Y4, Y4")
		g.i("VPADDD Y5, Y4, Y4") // s1
		g.i("VPERMPS %s, Y4, Y5", cTab1)
		g.i("VCMPPS $13, Y5, Y1, Y5") // d
		g.i("VPADDD Y4, Y4, Y4")
		g.i("VPADDD Y5, Y4, Y4") // s0 = -idx
		g.i("VPABSD Y4, Y3")     // idx
		g.i("VPERMPS %s, Y4, Y5", cKVlo)
		g.i("VPERMPS %s, Y4, Y6", cKVhi)
		g.i("VBLENDVPS Y2, Y6, Y5, Y4") // q = kv[idx]
		g.i("VMULPS Y0, Y0, Y5")        // w
		g.i("VMULPS Y4, Y5, Y5")        // wq
		g.i("VMULPS Y0, Y5, Y6")
		g.i("VADDPS Y6, Y14, Y14")
		g.i("VMULPS Y4, Y5, Y6")
		g.i("VADDPS Y6, Y13, Y13")
		k, sh := iq4Nibble(j)
		if sh == 0 {
			g.i("VMOVDQA Y3, Y%d", 9+k)
		} else {
			g.i("VPSLLD $%d, Y3, Y6", sh)
			g.i("VPOR Y6, Y%d, Y%d", 9+k, 9+k)
		}
	}
	g.i("VDIVPS Y13, Y14, Y0") // d = sumqx/sumq2
	g.i("VXORPS Y1, Y1, Y1")
	g.i("VCMPPS $14, Y1, Y13, Y2") // sumq2 > 0
	g.i("VANDPS Y2, Y0, Y0")
	g.i("VMOVUPS 1024(BX), Y3")
	g.i("VANDPS Y3, Y0, Y0")
	for k := 0; k < 4; k++ {
		g.i("VPAND Y3, Y%d, Y%d", 9+k, 9+k)
	}
	g.i("VCVTPS2PH $0, Y0, X0")
	g.i("VPUNPCKLDQ Y10, Y9, Y4")
	g.i("VPUNPCKHDQ Y10, Y9, Y5")
	g.i("VPUNPCKLDQ Y12, Y11, Y6")
	g.i("VPUNPCKHDQ Y12, Y11, Y7")
	g.i("VPUNPCKLQDQ Y6, Y4, Y1")
	g.i("VPUNPCKHQDQ Y6, Y4, Y2")
	g.i("VPUNPCKLQDQ Y7, Y5, Y3")
	g.i("VPUNPCKHQDQ Y7, Y5, Y8")
	for i, r := range []int{1, 2, 3, 8} {
		g.i("VMOVDQU X%d, %d(DI)", r, 18*i+2)
		g.i("VEXTRACTI128 $1, Y%d, %d(DI)", r, 18*(4+i)+2)
	}
	for b := 0; b < 8; b++ {
		g.i("VPEXTRW $%d, X0, %d(DI)", b, 18*b)
	}
	g.i("ADDQ $1024, SI")
	g.i("ADDQ $144, DI")
	g.i("DECQ CX")
	g.i("JNZ %s", loop)
	g.ret()
}

// ---------------------------------------------------------------- main

func main() {
	flag.Parse()
	g := newGen("AVX512")
	g.b.WriteString("// Code generated by gen/main.go; DO NOT EDIT.\n\n//go:build amd64\n\n#include \"textflag.h\"\n")
	for _, t := range append(ltypes[:len(ltypes):len(ltypes)], mxfp4) {
		g.dotRowsL512(t)
		g.dotRowsShortL512(t)
		g.unpackRowsL512(t)
	}
	g.transposeL512("transposeLAVX512", 576, false)
	g.transposeL512("transposeLMAVX512", 640, true)
	g.gemmL512('A', 576)
	g.gemmL512('B', 576)
	g.gemmL512('C', 640)
	for _, t := range ktypes {
		g.dotRowsK512(t)
		g.unpackRowsK512(t)
		g.transposeK512(t)
		g.gemmK512(t)
	}
	g.quantQ8_512(false)
	g.quantQ8_512(true)
	g.quantQ8K512()
	for _, t := range ltypes {
		g.axpyRowsL512(t)
	}
	for _, t := range kvqTypes {
		g.quantKV512(t)
	}
	g.quantIQ4NL512()
	g.quantIQ4NL4x512()
	for _, t := range ltypes {
		g.accumMultiL512(t)
		g.dequantL512k(t)
	}
	g.emitData()
	write("avx512_amd64.s", g.b.Bytes())

	g = newGen("AVX2")
	g.b.WriteString("// Code generated by gen/main.go; DO NOT EDIT.\n\n//go:build amd64\n\n#include \"textflag.h\"\n")
	for _, t := range ltypes {
		g.unpackRowsL2(t)
		g.dotCanonL2(t)
	}
	g.unpackRowsL2(mxfp4) // its canonical rows are IQ4_NL's: dotCanonIQ4_NLAVX2
	for _, t := range ktypes {
		g.unpackRowsK2(t)
		g.dotCanonK2(t)
	}
	for _, q81 := range []bool{false, true} {
		g.prepL2(q81)
		g.packL2(q81)
	}
	for _, q6 := range []bool{false, true} {
		g.prepK2(q6)
		g.packK2(q6)
	}
	g.readAVX2()
	g.quantQ8_2(false)
	g.quantQ8_2(true)
	g.quantQ8K2()
	for _, t := range ltypes {
		g.axpyRowsL2(t)
	}
	for _, t := range kvqTypes {
		g.quantKV2(t)
	}
	g.quantIQ4NL2()
	for _, t := range ltypes {
		g.accumMultiL2(t)
		g.dequantL2k(t)
	}
	g.emitData()
	write("avx2_amd64.s", g.b.Bytes())
}

// outDir is where the generated files are written (-o; the tests that
// check the committed assembly write to a temporary directory).
var outDir = flag.String("o", ".", "directory to write the generated files into")

func write(name string, b []byte) {
	s := strings.ReplaceAll(string(b), "\n\n\n", "\n\n")
	if err := os.WriteFile(filepath.Join(*outDir, name), []byte(s), 0o644); err != nil {
		panic(err)
	}
}

// ================================================================ AccumRowsMulti, Dequantize

// The weighted sums of quantized rows (AccumRowsMulti) and the SIMD
// dequantizer (Dequantize) for the 32-element KV-cache types.
//
// accumMulti<T><ISA>(a *karg): for gi < G = a.n2, each output column c of
// the pass (the a.nb blocks of 32 columns starting at a.w in every row; on
// AVX2 possibly half a block, see accumMultiL2), and t = 0 .. a.rows-1 in
// turn,
//
//	y[gi·ldy + c] = fma(a[gi·lda + t], v(t, c), y[gi·ldy + c])
//
// one VFMADD231PS per step, with v(t, c) the element dequantized exactly
// as tensor.DequantizeRow: rows at a.w + t·a.stride, coefficients at a.x
// (a.ts = 4·lda bytes between heads), outputs at a.y (a.ustride = 4·ldy
// bytes between heads). The G×(columns) accumulators stay in registers
// across all rows. A (G, blocks) pair without a variant sets a.rows = -1
// and does nothing (the Go side panics); a.rows must be at least 1.
//
// Rows go in chunks of accumChunk. For each chunk, the binary16 scales
// (and mins) of the pass's blocks are first copied into the frame with
// scalar moves and converted 16 (AVX2: 8) at a time with VCVTPH2PS, so
// that the row loop reads them as broadcast float32 memory operands
// instead of converting each on the vector ports. Each block is then
// dequantized once per row for all G heads:
//   - 4-bit types (Q4_0, Q4_1, IQ4_NL) on AVX-512: the 16 levels
//     (q-8, q or IQ4_NL's values, as float32) are scaled once per block
//     (level·d, then +m for Q4_1: the reference's operations, each rounded
//     once) and the 32 values looked up with VPERMPS;
//   - Q5_0/Q5_1 on AVX-512: the same with the 32 levels as two scaled
//     16-entry tables, the upper one merged (masked VPERMPS) into the
//     lanes whose qh bit is set;
//   - Q8_0, and every type on AVX2: integer q (minus the offset),
//     converted exactly, times d (plus m).
// The products and sums are the reference's, one rounding each, so the
// values are bit-identical to tensor.DequantizeRow's.

// accumCapsL512[G] is the most blocks (32 columns) one AVX-512 pass holds
// for G heads: 2·G·B accumulators, 2·B dequantized vectors, up to 3
// temporaries (two of them the coefficient broadcasts) and up to 2
// constants must fit in 32 registers. Must equal accumMultiCaps512 in
// accum_amd64.go.
var accumCapsL512 = [9]int{0, 4, 4, 3, 2, 2, 1, 1, 1}

// accumCapsL2[G] is the most whole blocks one AVX2 pass holds for G heads
// (0: half blocks, 16 columns); G ≤ 4 (more heads go in groups). Must
// equal accumMultiCaps256 in accum_amd64.go.
var accumCapsL2 = [5]int{0, 2, 1, 0, 0}

// Frame of the AccumRowsMulti and Dequantize kernels: rows left after
// the current chunk, rows in the chunk, the chunk's binary16 scales (and
// mins) staged for conversion, and their float32 values (row r, block b
// at afF + 4·w·(r·B + b), w = 2 with mins, the min 4 bytes later).
const (
	accumChunk = 64
	afLeft     = 0
	afK        = 8
	afH        = 16
	afF        = afH + accumChunk*4*2*2 + 32
	afFrame    = afF + accumChunk*4*2*4 + 64
)

// accumAddrA is head gi's coefficient for the current row: DI + gi·R9
// (R9 = 4·lda, R10 = 3·R9, R11 = 5·R9, R12 = 7·R9).
func accumAddrA(gi int) string {
	return [8]string{"(DI)", "(DI)(R9*1)", "(DI)(R9*2)", "(DI)(R10*1)", "(DI)(R9*4)", "(DI)(R11*1)", "(DI)(R10*2)", "(DI)(R12*1)"}[gi]
}

// accumPrologue loads SI = rows, R8 = stride, DI = a, R9..R12 (accumAddrA),
// BX = y, R13 = 4·ldy, and the row count into afLeft(SP).
func (g *gen) accumPrologue() {
	g.i("MOVQ %d(R14), SI", aW)
	g.i("MOVQ %d(R14), R8", aStride)
	g.i("MOVQ %d(R14), DI", aX)
	g.i("MOVQ %d(R14), R9", aTS)
	g.i("LEAQ (R9)(R9*2), R10")
	g.i("LEAQ (R9)(R9*4), R11")
	g.i("LEAQ (R10)(R9*4), R12")
	g.i("MOVQ %d(R14), BX", aY)
	g.i("MOVQ %d(R14), R13", aUStr)
	g.i("MOVQ %d(R14), AX", aRows)
	g.i("MOVQ AX, %d(SP)", afLeft)
}

// scaleWords is 1, or 2 for the types with a min (d and m, one dword).
func scaleWords(t ltype) int {
	if t.mo != 0 {
		return 2
	}
	return 1
}

// accumChunkStart takes the next chunk of rows (at most accumChunk of the
// afLeft(SP) left) starting at SI, converts the scales of its rows' B
// blocks (R8 bytes apart) into afF(SP), and leaves CX = rows in the chunk
// and R14 = afF(SP). tmp is a vector temporary (Z or Y). Clobbers AX, DX.
func (g *gen) accumChunkStart(t ltype, B int, tmp string) {
	w := scaleWords(t)
	g.i("MOVQ %d(SP), CX", afLeft)
	g.i("MOVL $%d, AX", accumChunk)
	g.i("CMPQ CX, AX")
	g.i("CMOVQGT AX, CX")
	g.i("SUBQ CX, %d(SP)", afLeft)
	g.i("MOVQ CX, %d(SP)", afK)
	g.i("MOVQ SI, DX")
	g.i("LEAQ %d(SP), R14", afH)
	pre := g.lbl("stage")
	g.label(pre)
	for b := 0; b < B; b++ {
		if w == 2 {
			g.i("MOVL %d(DX), AX", b*t.bs)
			g.i("MOVL AX, %d(R14)", 4*b)
		} else {
			g.i("MOVWLZX %d(DX), AX", b*t.bs)
			g.i("MOVW AX, %d(R14)", 2*b)
		}
	}
	g.i("ADDQ R8, DX")
	g.i("ADDQ $%d, R14", 2*w*B)
	g.i("DECQ CX")
	g.i("JNZ %s", pre)
	L, sh := 16, 4
	if tmp[0] == 'Y' {
		L, sh = 8, 3
	}
	g.i("IMUL3Q $%d, %d(SP), CX", w*B, afK)
	g.i("ADDQ $%d, CX", L-1)
	g.i("SHRQ $%d, CX", sh)
	g.i("LEAQ %d(SP), DX", afH)
	g.i("LEAQ %d(SP), R14", afF)
	cvt := g.lbl("cvt")
	g.label(cvt)
	g.i("VCVTPH2PS (DX), %s", tmp)
	g.i("VMOVUPS %s, (R14)", tmp)
	g.i("ADDQ $%d, DX", 2*L)
	g.i("ADDQ $%d, R14", 4*L)
	g.i("DECQ CX")
	g.i("JNZ %s", cvt)
	g.i("MOVQ %d(SP), CX", afK)
	g.i("LEAQ %d(SP), R14", afF)
}

// levelsL returns the float32 dequantization levels of a table-driven
// type: level(q) for q < 16 (32 for Q5), before the scale.
func levelsL(t ltype) []float32 {
	var v []float32
	switch t.name {
	case "Q4_0":
		for q := 0; q < 16; q++ {
			v = append(v, float32(q-8))
		}
	case "Q4_1":
		for q := 0; q < 16; q++ {
			v = append(v, float32(q))
		}
	case "IQ4_NL":
		for q := 0; q < 16; q++ {
			v = append(v, float32(kvaluesIQ4NL[q]))
		}
	case "Q5_0":
		for q := 0; q < 32; q++ {
			v = append(v, float32(q-16))
		}
	case "Q5_1":
		for q := 0; q < 32; q++ {
			v = append(v, float32(q))
		}
	default:
		panic("levelsL: " + t.name)
	}
	return v
}

// deqConsts512 loads the level tables of deqBlock512 into Z31 (and Z30)
// and returns how many registers they take.
func (g *gen) deqConsts512(t ltype) int {
	switch {
	case t.q8:
		return 0
	case t.qho != 0:
		lv := levelsL(t)
		g.i("VMOVUPS %s, Z31", g.konst("deq"+t.name+"lo", f32table(lv[:16])))
		g.i("VMOVUPS %s, Z30", g.konst("deq"+t.name+"hi", f32table(lv[16:])))
		return 2
	}
	g.i("VMOVUPS %s, Z31", g.konst("deq"+t.name, f32table(levelsL(t))))
	return 1
}

// deqTemps512 is the number of temporaries deqBlock512 needs besides its
// two outputs.
func deqTemps512(t ltype) int {
	switch {
	case t.q8:
		return 0
	case t.qho != 0:
		return 3
	}
	return 1
}

// deqBlock512 dequantizes the block at off(SI) into o0 (elements 0-15) and
// o1 (16-31) exactly as tensor.DequantizeRow, given its scale d as float32
// at dmem (and its min at mmem), the tables of deqConsts512 and the
// temporaries tmp (deqTemps512 of them). Clobbers K1, K2 (Q5).
func (g *gen) deqBlock512(t ltype, off int, o0, o1 string, tmp []string, dmem, mmem string) {
	switch {
	case t.q8:
		g.i("VPMOVSXBD %d(SI), %s", off+t.qo, o0)
		g.i("VPMOVSXBD %d(SI), %s", off+t.qo+16, o1)
		g.i("VCVTDQ2PS %s, %s", o0, o0)
		g.i("VCVTDQ2PS %s, %s", o1, o1)
		g.i("VMULPS.BCST %s, %s, %s", dmem, o0, o0) // q·d
		g.i("VMULPS.BCST %s, %s, %s", dmem, o1, o1)
	case t.qho != 0:
		// Scaled tables t0 = level(q)·d (+m) for q < 16, t1 for q ≥ 16;
		// t2 = the high nibbles.
		t0, t1, t2 := tmp[0], tmp[1], tmp[2]
		g.i("VMULPS.BCST %s, Z31, %s", dmem, t0)
		g.i("VMULPS.BCST %s, Z30, %s", dmem, t1)
		if t.mo != 0 {
			g.i("VADDPS.BCST %s, %s, %s", mmem, t0, t0)
			g.i("VADDPS.BCST %s, %s, %s", mmem, t1, t1)
		}
		g.i("KMOVW %d(SI), K1", off+t.qho)
		g.i("KMOVW %d(SI), K2", off+t.qho+2)
		g.i("VPMOVZXBD %d(SI), %s", off+t.qo, o1)
		g.i("VPSRLD $4, %s, %s", o1, t2)
		g.i("VPERMPS %s, %s, %s", t0, o1, o0) // VPERMPS reads index bits 0-3
		g.i("VPERMPS %s, %s, K1, %s", t1, o1, o0)
		g.i("VPERMPS %s, %s, %s", t0, t2, o1)
		g.i("VPERMPS %s, %s, K2, %s", t1, t2, o1)
	default:
		// Scaled table t0 = level·d (d·level for IQ4_NL: the same
		// product), + m for Q4_1.
		t0 := tmp[0]
		g.i("VMULPS.BCST %s, Z31, %s", dmem, t0)
		if t.mo != 0 {
			g.i("VADDPS.BCST %s, %s, %s", mmem, t0, t0)
		}
		g.i("VPMOVZXBD %d(SI), %s", off+t.qo, o0)
		g.i("VPSRLD $4, %s, %s", o0, o1)
		g.i("VPERMPS %s, %s, %s", t0, o0, o0) // index bits 0-3: the low nibble
		g.i("VPERMPS %s, %s, %s", t0, o1, o1)
	}
}

// scaleMem returns the frame operands (off R14) of block b's scale and min
// for a pass of B blocks.
func scaleMem(t ltype, b int) (dmem, mmem string) {
	w := scaleWords(t)
	return fmt.Sprintf("%d(R14)", 4*w*b), fmt.Sprintf("%d(R14)", 4*w*b+4)
}

// accumMultiL512 emits accumMulti<T>AVX512 (see above): variants for every
// G ≤ 8 and B ≤ accumCapsL512[G], selected by 16·G + B.
func (g *gen) accumMultiL512(t ltype) {
	name := "accumMulti" + t.name + "AVX512"
	g.text(name, afFrame, name+": y[g][c] = fma(a[g][t], deq(row t)[c], y[g][c]), t ascending ("+t.name+").")
	g.accumPrologue()
	nc := g.deqConsts512(t)
	g.i("MOVQ %d(R14), AX", aN2)
	g.i("SHLQ $4, AX")
	g.i("ADDQ %d(R14), AX", aNB)
	labels := map[int]string{}
	for G := 1; G <= 8; G++ {
		for B := 1; B <= accumCapsL512[G]; B++ {
			labels[16*G+B] = g.lbl(fmt.Sprintf("g%db%d", G, B))
			g.i("CMPQ AX, $%d", 16*G+B)
			g.i("JEQ %s", labels[16*G+B])
		}
	}
	g.i("MOVQ $-1, %d(R14)", aRows)
	done := g.lbl("done")
	g.i("JMP %s", done)
	for G := 1; G <= 8; G++ {
		for B := 1; B <= accumCapsL512[G]; B++ {
			g.label(labels[16*G+B])
			g.accumVariantL512(t, G, B, nc)
			g.i("JMP %s", done)
		}
	}
	g.label(done)
	g.ret()
}

// accumVariantL512: G heads × B blocks; accumulator (gi, j) is Z(gi·2B+j),
// the row's dequantized vector j is Z(2GB+j), then the temporaries (the
// first two double as the coefficient broadcasts), then the constants.
func (g *gen) accumVariantL512(t ltype, G, B, nc int) {
	V := 2 * B
	nt := max(2, deqTemps512(t))
	if G*V+V+nt+nc > 32 {
		panic(fmt.Sprintf("accumMulti %s AVX-512 G=%d B=%d does not fit the registers", t.name, G, B))
	}
	acc := func(gi, j int) string { return z(gi*V + j) }
	vec := func(j int) string { return z(G*V + j) }
	var tmp []string
	for k := 0; k < nt; k++ {
		tmp = append(tmp, z(G*V+V+k))
	}
	g.i("MOVQ BX, DX")
	for gi := 0; gi < G; gi++ {
		for j := 0; j < V; j++ {
			g.i("VMOVUPS %d(DX), %s", 64*j, acc(gi, j))
		}
		if gi < G-1 {
			g.i("ADDQ R13, DX")
		}
	}
	chunk, loop := g.lbl("chunk"), g.lbl("row")
	g.label(chunk)
	g.accumChunkStart(t, B, tmp[0])
	g.label(loop)
	for b := 0; b < B; b++ {
		dm, mm := scaleMem(t, b)
		g.deqBlock512(t, b*t.bs, vec(2*b), vec(2*b+1), tmp[:deqTemps512(t)], dm, mm)
	}
	for gi := 0; gi < G; gi++ {
		s := tmp[gi%2]
		g.i("VBROADCASTSS %s, %s", accumAddrA(gi), s)
		for j := 0; j < V; j++ {
			g.i("VFMADD231PS %s, %s, %s", vec(j), s, acc(gi, j))
		}
	}
	g.i("ADDQ R8, SI")
	g.i("ADDQ $4, DI")
	g.i("ADDQ $%d, R14", 4*scaleWords(t)*B)
	g.i("DECQ CX")
	g.i("JNZ %s", loop)
	g.i("CMPQ %d(SP), $0", afLeft)
	g.i("JGT %s", chunk)
	g.i("MOVQ BX, DX")
	for gi := 0; gi < G; gi++ {
		for j := 0; j < V; j++ {
			g.i("VMOVUPS %s, %d(DX)", acc(gi, j), 64*j)
		}
		if gi < G-1 {
			g.i("ADDQ R13, DX")
		}
	}
}

// dequantL512k emits dequant<T>AVX512: a.nb ≥ 1 blocks at a.w into
// float32 at a.y, bit-identical to tensor.DequantizeRow (the blocks are
// the "rows" of accumChunkStart, a block apart).
func (g *gen) dequantL512k(t ltype) {
	name := "dequant" + t.name + "AVX512"
	g.text(name, afFrame, name+": dst = DequantizeRow(src) ("+t.name+").")
	g.i("MOVQ %d(R14), SI", aW)
	g.i("MOVQ %d(R14), DI", aY)
	g.i("MOVQ %d(R14), AX", aNB)
	g.i("MOVQ AX, %d(SP)", afLeft)
	g.i("MOVQ $%d, R8", t.bs)
	g.deqConsts512(t)
	tmp := []string{"Z2", "Z3", "Z4"}
	chunk, loop := g.lbl("chunk"), g.lbl("blk")
	g.label(chunk)
	g.accumChunkStart(t, 1, tmp[0])
	g.label(loop)
	dm, mm := scaleMem(t, 0)
	g.deqBlock512(t, 0, "Z0", "Z1", tmp[:deqTemps512(t)], dm, mm)
	g.i("VMOVUPS Z0, (DI)")
	g.i("VMOVUPS Z1, 64(DI)")
	g.i("ADDQ $%d, SI", t.bs)
	g.i("ADDQ $128, DI")
	g.i("ADDQ $%d, R14", 4*scaleWords(t))
	g.i("DECQ CX")
	g.i("JNZ %s", loop)
	g.i("CMPQ %d(SP), $0", afLeft)
	g.i("JGT %s", chunk)
	g.ret()
}

// ---------------------------------------------------------------- AVX2

// deqVec2 dequantizes elements 8k..8k+7 of the block at off(SI) into yx
// exactly as tensor.DequantizeRow, given its scale in yd (and min in ym)
// as float32; yt is a temporary (Q5), X15 the IQ4_NL levels (int8).
func (g *gen) deqVec2(t ltype, off, k int, yd, ym, yx, yt string) {
	xx := "X" + yx[1:]
	qoff := off + t.qo + 8*(k%2) // 4-bit: bytes 8(k%2)..; k ≥ 2 high nibbles
	switch {
	case t.q8:
		g.i("VPMOVSXBD %d(SI), %s", off+t.qo+8*k, yx)
	case t.iq4:
		g.i("VMOVQ %d(SI), %s", qoff, xx)
		if k >= 2 {
			g.i("VPSRLW $4, %s, %s", xx, xx)
		}
		g.i("VPAND %s, %s, %s", g.konst("am_b0f", bytesOf(16, func(int) byte { return 0x0f })), xx, xx)
		g.i("VPSHUFB %s, X15, %s", xx, xx)
		g.i("VPMOVSXBD %s, %s", xx, yx)
	default:
		g.i("VPMOVZXBD %d(SI), %s", qoff, yx)
		if k >= 2 {
			g.i("VPSRLD $4, %s, %s", yx, yx)
		} else {
			g.i("VPAND %s, %s, %s", g.konst("am_d0f", dwords(8, func(int) uint32 { return 15 })), yx, yx)
		}
		if t.qho != 0 {
			// yt = -1 in the lanes whose qh bit (element 8k+l) is set.
			cnt := g.konst(fmt.Sprintf("am_qhs%d", k), dwords(8, func(l int) uint32 { return uint32(31 - (8*k + l)) }))
			g.i("VPBROADCASTD %d(SI), %s", off+t.qho, yt)
			g.i("VPSLLVD %s, %s, %s", cnt, yt, yt)
			g.i("VPSRAD $31, %s, %s", yt, yt)
			if t.mo != 0 { // q = x | 16·h
				g.i("VPAND %s, %s, %s", g.konst("am_d10", dwords(8, func(int) uint32 { return 16 })), yt, yt)
				g.i("VPOR %s, %s, %s", yt, yx, yx)
			} else { // q - 16 = x + (h ? 0 : -16)
				g.i("VPANDN %s, %s, %s", g.konst("am_dm16", dwords(8, func(int) uint32 { return uint32(0xfffffff0) })), yt, yt)
				g.i("VPADDD %s, %s, %s", yt, yx, yx)
			}
		} else if t.mo == 0 { // Q4_0: q - 8
			g.i("VPSUBD %s, %s, %s", g.konst("am_d08", dwords(8, func(int) uint32 { return 8 })), yx, yx)
		}
	}
	g.i("VCVTDQ2PS %s, %s", yx, yx)
	g.i("VMULPS %s, %s, %s", yd, yx, yx) // q·d (d·q for IQ4_NL: the same product)
	if t.mo != 0 {
		g.i("VADDPS %s, %s, %s", ym, yx, yx)
	}
}

// deqScale2 broadcasts block b's converted scale (and min) from the frame.
func (g *gen) deqScale2(t ltype, b int, yd, ym string) {
	dm, mm := scaleMem(t, b)
	g.i("VBROADCASTSS %s, %s", dm, yd)
	if t.mo != 0 {
		g.i("VBROADCASTSS %s, %s", mm, ym)
	}
}

// accumMultiL2 emits accumMulti<T>AVX2: the contract of the AVX-512
// kernel with variants selected by 16·G + code, G ≤ 4: code B ≤
// accumCapsL2[G] is B whole blocks; where accumCapsL2[G] is 0, code 8 is
// the low half of one block (columns 0-15) and code 9 its high half
// (16-31, a.y pointing at column 16). Accumulator (gi, j) is Y(gi·V+j) for the V vectors of the pass, the
// G coefficient broadcasts follow, then the scale, min and temporaries;
// X15 holds the IQ4_NL levels. The other constants are memory operands.
func (g *gen) accumMultiL2(t ltype) {
	name := "accumMulti" + t.name + "AVX2"
	g.text(name, afFrame, name+": y[g][c] = fma(a[g][t], deq(row t)[c], y[g][c]), t ascending ("+t.name+").")
	g.accumPrologue()
	if t.iq4 {
		g.i("VMOVDQU %s, X15", g.konst("iq4i8", bytesOf(16, func(i int) byte { return byte(int8(kvaluesIQ4NL[i])) })))
	}
	g.i("MOVQ %d(R14), AX", aN2)
	g.i("SHLQ $4, AX")
	g.i("ADDQ %d(R14), AX", aNB)
	type variant struct{ G, code int }
	var vs []variant
	for G := 1; G <= 4; G++ {
		for B := 1; B <= accumCapsL2[G]; B++ {
			vs = append(vs, variant{G, B})
		}
		if accumCapsL2[G] == 0 {
			vs = append(vs, variant{G, 8}, variant{G, 9})
		}
	}
	labels := map[variant]string{}
	for _, v := range vs {
		labels[v] = g.lbl(fmt.Sprintf("g%dc%d", v.G, v.code))
		g.i("CMPQ AX, $%d", 16*v.G+v.code)
		g.i("JEQ %s", labels[v])
	}
	g.i("MOVQ $-1, %d(R14)", aRows)
	done := g.lbl("done")
	g.i("JMP %s", done)
	for _, v := range vs {
		g.label(labels[v])
		g.accumVariantL2(t, v.G, v.code)
		g.i("JMP %s", done)
	}
	g.label(done)
	g.ret()
}

func (g *gen) accumVariantL2(t ltype, G, code int) {
	// The pass's vectors: (block, k) for each.
	type pv struct{ b, k int }
	var pvs []pv
	B := 1
	switch code {
	case 8:
		pvs = []pv{{0, 0}, {0, 1}}
	case 9:
		pvs = []pv{{0, 2}, {0, 3}}
	default:
		B = code
		for b := 0; b < B; b++ {
			for k := 0; k < 4; k++ {
				pvs = append(pvs, pv{b, k})
			}
		}
	}
	V := len(pvs)
	acc := func(gi, j int) string { return y(gi*V + j) }
	bc := func(gi int) string { return y(G*V + gi) }
	next := G*V + G
	yd := y(next)
	next++
	ym := ""
	if t.mo != 0 {
		ym = y(next)
		next++
	}
	yx := y(next)
	next++
	yt := ""
	if t.qho != 0 {
		yt = y(next)
		next++
	}
	limit := 16
	if t.iq4 {
		limit = 15
	}
	if next > limit {
		panic(fmt.Sprintf("accumMulti %s AVX2 G=%d code=%d does not fit the registers", t.name, G, code))
	}
	g.i("MOVQ BX, DX")
	for gi := 0; gi < G; gi++ {
		for j := 0; j < V; j++ {
			g.i("VMOVUPS %d(DX), %s", 32*j, acc(gi, j))
		}
		if gi < G-1 {
			g.i("ADDQ R13, DX")
		}
	}
	chunk, loop := g.lbl("chunk"), g.lbl("row")
	g.label(chunk)
	g.accumChunkStart(t, B, yd)
	g.label(loop)
	for gi := 0; gi < G; gi++ {
		g.i("VBROADCASTSS %s, %s", accumAddrA(gi), bc(gi))
	}
	for j, p := range pvs {
		if j == 0 || p.b != pvs[j-1].b {
			g.deqScale2(t, p.b, yd, ym)
		}
		g.deqVec2(t, p.b*t.bs, p.k, yd, ym, yx, yt)
		for gi := 0; gi < G; gi++ {
			g.i("VFMADD231PS %s, %s, %s", yx, bc(gi), acc(gi, j))
		}
	}
	g.i("ADDQ R8, SI")
	g.i("ADDQ $4, DI")
	g.i("ADDQ $%d, R14", 4*scaleWords(t)*B)
	g.i("DECQ CX")
	g.i("JNZ %s", loop)
	g.i("CMPQ %d(SP), $0", afLeft)
	g.i("JGT %s", chunk)
	g.i("MOVQ BX, DX")
	for gi := 0; gi < G; gi++ {
		for j := 0; j < V; j++ {
			g.i("VMOVUPS %s, %d(DX)", acc(gi, j), 32*j)
		}
		if gi < G-1 {
			g.i("ADDQ R13, DX")
		}
	}
}

// dequantL2k emits dequant<T>AVX2: a.nb ≥ 1 blocks at a.w into float32 at
// a.y, bit-identical to tensor.DequantizeRow.
func (g *gen) dequantL2k(t ltype) {
	name := "dequant" + t.name + "AVX2"
	g.text(name, afFrame, name+": dst = DequantizeRow(src) ("+t.name+").")
	g.i("MOVQ %d(R14), SI", aW)
	g.i("MOVQ %d(R14), DI", aY)
	g.i("MOVQ %d(R14), AX", aNB)
	g.i("MOVQ AX, %d(SP)", afLeft)
	g.i("MOVQ $%d, R8", t.bs)
	if t.iq4 {
		g.i("VMOVDQU %s, X15", g.konst("iq4i8", bytesOf(16, func(i int) byte { return byte(int8(kvaluesIQ4NL[i])) })))
	}
	chunk, loop := g.lbl("chunk"), g.lbl("blk")
	g.label(chunk)
	g.accumChunkStart(t, 1, "Y0")
	g.label(loop)
	g.deqScale2(t, 0, "Y0", "Y1")
	for k := 0; k < 4; k++ {
		g.deqVec2(t, 0, k, "Y0", "Y1", y(2+2*k), y(3+2*k))
	}
	for k := 0; k < 4; k++ {
		g.i("VMOVUPS %s, %d(DI)", y(2+2*k), 32*k)
	}
	g.i("ADDQ $%d, SI", t.bs)
	g.i("ADDQ $128, DI")
	g.i("ADDQ $%d, R14", 4*scaleWords(t))
	g.i("DECQ CX")
	g.i("JNZ %s", loop)
	g.i("CMPQ %d(SP), $0", afLeft)
	g.i("JGT %s", chunk)
	g.ret()
}
