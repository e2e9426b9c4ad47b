// Command gen writes internal/kernels's avx512_amd64.s and avx2_amd64.s into
// the current directory. Run it with `go generate ./internal/kernels/` (the
// go:generate directive is in ../generate.go) after editing; the generated
// files are committed, and go generate reproduces them byte for byte.
//
// The accumulation orders emitted here are the package's canonical orders
// (see the package comment in kernels.go); the dot kernels, the pack+GEMM
// micro-kernels and the tests depend on them agreeing exactly.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

type gen struct {
	b    bytes.Buffer
	name string // current TEXT symbol, used to make labels readable
}

func (g *gen) i(format string, a ...any) { fmt.Fprintf(&g.b, "\t"+format+"\n", a...) }
func (g *gen) l(label string)            { fmt.Fprintf(&g.b, "%s:\n", label) }
func (g *gen) c(comment string)          { fmt.Fprintf(&g.b, "\t// %s\n", comment) }
func (g *gen) blank()                    { g.b.WriteString("\n") }

func (g *gen) text(name, sig string, frame, argsize int) {
	g.name = name
	fmt.Fprintf(&g.b, "\n// func %s%s\nTEXT ·%s(SB), NOSPLIT, $%d-%d\n", name, sig, name, frame, argsize)
}

type elem struct {
	name string // F32, F16, BF16
	size int    // bytes per element
	gtyp string // Go element type of the weight pointer
}

var (
	eF32  = elem{"F32", 4, "float32"}
	eF16  = elem{"F16", 2, "uint16"}
	eBF16 = elem{"BF16", 2, "uint16"}
	elems = []elem{eF32, eF16, eBF16}
)

func y(z string) string { return "Y" + z[1:] }
func x(z string) string { return "X" + z[1:] }
func zr(i int) string   { return fmt.Sprintf("Z%d", i) }
func yr(i int) string   { return fmt.Sprintf("Y%d", i) }

// ---------------------------------------------------------------- AVX-512

// ld512 loads 16 elements of type e at addr into the f32 register z. When
// masked, lanes outside K1 are zero and their memory is not touched.
func (g *gen) ld512(e elem, addr, z string, masked bool) {
	switch {
	case e == eF32 && masked:
		g.i("VMOVUPS.Z %s, K1, %s", addr, z)
	case e == eF32:
		g.i("VMOVUPS %s, %s", addr, z)
	case e == eF16 && masked:
		g.i("VMOVDQU16.Z %s, K1, %s", addr, y(z))
		g.i("VCVTPH2PS %s, %s", y(z), z)
	case e == eF16:
		g.i("VCVTPH2PS %s, %s", addr, z)
	case e == eBF16 && masked:
		g.i("VMOVDQU16.Z %s, K1, %s", addr, y(z))
		g.i("VPMOVZXWD %s, %s", y(z), z)
		g.i("VPSLLD $16, %s, %s", z, z)
	case e == eBF16:
		g.i("VPMOVZXWD %s, %s", addr, z)
		g.i("VPSLLD $16, %s, %s", z, z)
	}
}

// mask512 sets K1 to the low CX bits (0 < CX < 16). Clobbers AX.
func (g *gen) mask512() {
	g.i("MOVL $1, AX")
	g.i("SHLL CX, AX")
	g.i("DECL AX")
	g.i("KMOVW AX, K1")
}

// reduce16 folds the 16 lanes of Z<r> (r < 16) into X<r>[0] with the
// canonical tree: s8[l]=a[l]+a[l+8], s4[l]=s8[l]+s8[l+4],
// s2[l]=s4[l]+s4[l+2], s=s2[0]+s2[1]. t (< 16) is a scratch register.
func (g *gen) reduce16(r, t int) {
	g.i("VEXTRACTF64X4 $1, Z%d, Y%d", r, t)
	g.i("VADDPS Y%d, Y%d, Y%d", t, r, r)
	g.reduce8(r, t)
}

// reduce8 folds the 8 lanes of Y<r> into X<r>[0]: s4[l]=a[l]+a[l+4],
// s2[l]=s4[l]+s4[l+2], s=s2[0]+s2[1].
func (g *gen) reduce8(r, t int) {
	g.i("VEXTRACTF128 $1, Y%d, X%d", r, t)
	g.i("VADDPS X%d, X%d, X%d", t, r, r)
	g.i("VPERMILPS $0xEE, X%d, X%d", r, t)
	g.i("VADDPS X%d, X%d, X%d", t, r, r)
	g.i("VMOVSHDUP X%d, X%d", r, t)
	g.i("VADDSS X%d, X%d, X%d", t, r, r)
}

func (g *gen) dot1AVX512(e elem) {
	name := "dot1" + e.name + "AVX512"
	g.text(name, fmt.Sprintf("(w *%s, x *float32, n int) float32", e.gtyp), 0, 28)
	g.i("MOVQ w+0(FP), SI")
	g.i("MOVQ x+8(FP), DI")
	g.i("MOVQ n+16(FP), CX")
	g.i("VPXORD Z0, Z0, Z0")
	g.i("CMPQ CX, $16")
	g.i("JB tail")
	g.l("loop")
	g.ld512(e, "(SI)", "Z1", false)
	g.i("VFMADD231PS (DI), Z1, Z0")
	g.i("ADDQ $%d, SI", 16*e.size)
	g.i("ADDQ $64, DI")
	g.i("SUBQ $16, CX")
	g.i("CMPQ CX, $16")
	g.i("JAE loop")
	g.l("tail")
	g.i("TESTQ CX, CX")
	g.i("JZ reduce")
	g.mask512()
	g.ld512(e, "(SI)", "Z1", true)
	g.i("VMOVUPS.Z (DI), K1, Z2")
	g.i("VFMADD231PS Z2, Z1, Z0")
	g.l("reduce")
	g.reduce16(0, 1)
	g.i("VMOVSS X0, ret+24(FP)")
	g.i("VZEROUPPER")
	g.i("RET")
}

// dot4: four rows w, w+ldw, w+2ldw, w+3ldw against one x; y[0..3].
func (g *gen) dot4AVX512(e elem) {
	name := "dot4" + e.name + "AVX512"
	g.text(name, fmt.Sprintf("(w *%s, ldw int, x *float32, n int, y *float32)", e.gtyp), 0, 40)
	g.i("MOVQ w+0(FP), SI")
	g.i("MOVQ ldw+8(FP), R8")
	g.i("SHLQ $%d, R8", map[int]int{2: 1, 4: 2}[e.size])
	g.i("LEAQ (SI)(R8*1), R9")
	g.i("LEAQ (SI)(R8*2), R10")
	g.i("LEAQ (R9)(R8*2), R11")
	g.i("MOVQ x+16(FP), DI")
	g.i("MOVQ n+24(FP), DX")
	g.i("MOVQ DX, CX")
	g.i("ANDQ $15, CX")
	g.i("ANDQ $-16, DX")
	g.i("XORQ BX, BX")
	for r := 0; r < 4; r++ {
		g.i("VPXORD Z%d, Z%d, Z%d", r, r, r)
	}
	rows := []string{"SI", "R9", "R10", "R11"}
	g.i("CMPQ BX, DX")
	g.i("JAE tail")
	g.l("loop")
	g.i("VMOVUPS (DI)(BX*4), Z8")
	for r, p := range rows {
		g.ld512(e, fmt.Sprintf("(%s)(BX*%d)", p, e.size), zr(4+r), false)
		g.i("VFMADD231PS Z8, Z%d, Z%d", 4+r, r)
	}
	g.i("ADDQ $16, BX")
	g.i("CMPQ BX, DX")
	g.i("JB loop")
	g.l("tail")
	g.i("TESTQ CX, CX")
	g.i("JZ reduce")
	g.mask512()
	g.i("VMOVUPS.Z (DI)(BX*4), K1, Z8")
	for r, p := range rows {
		g.ld512(e, fmt.Sprintf("(%s)(BX*%d)", p, e.size), zr(4+r), true)
		g.i("VFMADD231PS Z8, Z%d, Z%d", 4+r, r)
	}
	g.l("reduce")
	g.i("MOVQ y+32(FP), DI")
	for r := 0; r < 4; r++ {
		g.reduce16(r, 8)
		g.i("VMOVSS X%d, %d(DI)", r, 4*r)
	}
	g.i("VZEROUPPER")
	g.i("RET")
}

// chunkLoopEnd closes a packed kernel's loop over 16-column chunks (SI:
// weights, step bytes a chunk; BX: column; DX: columns in whole chunks)
// and opens its tail: CX columns past the last whole chunk, masked by K1,
// or straight to reduce when there are none.
func (g *gen) chunkLoopEnd(step int) {
	g.i("ADDQ $%d, SI", step)
	g.i("ADDQ $16, BX")
	g.i("CMPQ BX, DX")
	g.i("JB loop")
	g.l("tail")
	g.i("TESTQ CX, CX")
	g.i("JZ reduce")
	g.mask512()
}

// dot16P: 16 rows of a packed matrix (kernels' packed.go: for each chunk
// of 16 columns, the 16 rows' 16 values one after the other; columns past
// n are zero) against one x; y[0..15]. Each row keeps dot1's single
// 16-lane accumulator, columns ascending, and its reduction tree, so every
// output is dot1's bit for bit; the 16 independent accumulators hide the
// FMA latency and the matrix is read as one sequential stream.
//
// Two variants: with software prefetch, and without (name suffix NoPF).
// Prefetching 4 KB ahead keeps a single thread streaming from DRAM on the
// Intel Xeons measured (+9%), but costs ~10% on an AMD Zen 5, whose
// hardware prefetchers do better alone (qkernels' BenchmarkMatVecStream/f16,
// BENCHMARKS.md); dotRowsPacked picks one by CPU vendor.
func (g *gen) dot16PAVX512(e elem, noPF bool) {
	name := "dot16P" + e.name + "AVX512"
	// Prefetch distance in bytes (GEN_PREFETCH overrides, for measuring; 0:
	// none).
	pf := 4096
	if v, err := strconv.Atoi(os.Getenv("GEN_PREFETCH")); err == nil {
		pf = v
	}
	if noPF {
		name += "NoPF"
		pf = 0
	}
	g.text(name, fmt.Sprintf("(w *%s, x *float32, n int, y *float32)", e.gtyp), 0, 32)
	g.i("MOVQ w+0(FP), SI")
	g.i("MOVQ x+8(FP), DI")
	g.i("MOVQ n+16(FP), DX")
	g.i("MOVQ DX, CX")
	g.i("ANDQ $15, CX")
	g.i("ANDQ $-16, DX")
	g.i("XORQ BX, BX")
	for r := 0; r < 16; r++ {
		g.i("VPXORD Z%d, Z%d, Z%d", r, r, r)
	}
	g.i("CMPQ BX, DX")
	g.i("JAE tail")
	g.l("loop")
	g.i("VMOVUPS (DI)(BX*4), Z16")
	for r := 0; r < 16; r++ {
		t := zr(17 + r%8)
		g.ld512(e, fmt.Sprintf("%d(SI)", 16*e.size*r), t, false)
		g.i("VFMADD231PS Z16, %s, Z%d", t, r)
		if off := 16 * e.size * r; pf > 0 && off%64 == 0 {
			g.i("PREFETCHT0 %d(SI)", off+pf)
		}
	}
	g.chunkLoopEnd(256 * e.size)
	g.i("VMOVUPS.Z (DI)(BX*4), K1, Z16")
	for r := 0; r < 16; r++ {
		t := zr(17 + r%8)
		g.ld512(e, fmt.Sprintf("%d(SI)", 16*e.size*r), t, false) // zero-padded columns
		g.i("VFMADD231PS Z16, %s, Z%d", t, r)
	}
	g.l("reduce")
	g.i("MOVQ y+24(FP), DI")
	g.i("VMOVAPS Z15, Z16")
	for r := 0; r < 15; r++ {
		g.reduce16(r, 15)
		g.i("VMOVSS X%d, %d(DI)", r, 4*r)
	}
	g.i("VMOVAPS Z16, Z0")
	g.reduce16(0, 1)
	g.i("VMOVSS X0, 60(DI)")
	g.i("VZEROUPPER")
	g.i("RET")
}

// dot4xTP: 4 rows of a packed matrix (w at the first of them: row r's 16
// values of a chunk at 16·r elements, chunks 256 elements apart) against
// T tokens (x, x+ldx, ...), y[t·ldy + r]. Each weight is converted once and
// used for every token; each (row, token) keeps dot1's single 16-lane
// accumulator, columns ascending, and its reduction tree, so every output
// is dot16P's (and dot1's) bit for bit. Four calls cover a group of 16
// rows, each reading its quarter of every chunk: a small batch (a
// speculative verification pass) streams the weights once instead of
// copying rows back for the GEMM. pf is the prefetch distance in bytes
// (the first quarter's call prefetches whole chunks, the others pass 0).
func (g *gen) dot4xTPAVX512(e elem, T int) {
	name := fmt.Sprintf("dot4x%dP%sAVX512", T, e.name)
	g.text(name, fmt.Sprintf("(w *%s, x *float32, ldx int, n int, y *float32, ldy int, pf int)", e.gtyp), 0, 56)
	g.i("MOVQ w+0(FP), SI")
	g.i("MOVQ x+8(FP), DI")
	g.i("MOVQ ldx+16(FP), R8")
	g.i("SHLQ $2, R8")
	g.i("MOVQ n+24(FP), DX")
	g.i("MOVQ pf+48(FP), R12")
	g.i("MOVQ DX, CX")
	g.i("ANDQ $15, CX")
	g.i("ANDQ $-16, DX")
	g.i("XORQ BX, BX")
	// Token t's activations at xr[t].
	xr := []string{"DI", "R9", "R10", "R11"}
	for t := 1; t < T; t++ {
		g.i("LEAQ (%s)(R8*1), %s", xr[t-1], xr[t])
	}
	acc := func(r, t int) int { return r*T + t }
	for i := 0; i < 4*T; i++ {
		g.i("VPXORD Z%d, Z%d, Z%d", i, i, i)
	}
	body := func(masked bool) {
		for t := 0; t < T; t++ {
			if masked {
				g.i("VMOVUPS.Z (%s)(BX*4), K1, Z%d", xr[t], 16+t)
			} else {
				g.i("VMOVUPS (%s)(BX*4), Z%d", xr[t], 16+t)
			}
		}
		for r := 0; r < 4; r++ {
			w := zr(20 + r)
			g.ld512(e, fmt.Sprintf("%d(SI)", 16*e.size*r), w, false) // zero-padded columns
			for t := 0; t < T; t++ {
				g.i("VFMADD231PS Z%d, %s, Z%d", 16+t, w, acc(r, t))
			}
		}
	}
	g.i("CMPQ BX, DX")
	g.i("JAE tail")
	g.l("loop")
	body(false)
	for off := 0; off < 256*e.size; off += 64 {
		g.i("PREFETCHT0 %d(SI)(R12*1)", off)
	}
	g.chunkLoopEnd(256 * e.size)
	body(true)
	g.l("reduce")
	g.i("MOVQ y+32(FP), DI")
	g.i("MOVQ ldy+40(FP), R8")
	g.i("SHLQ $2, R8")
	for t := 1; t < T; t++ {
		g.i("LEAQ (%s)(R8*1), %s", xr[t-1], xr[t])
	}
	// Reduce with Z15 as scratch (VEX-encoded folds reach Z0-Z15 only);
	// with 16 accumulators the last is moved out of its way first.
	last := 4*T - 1
	if last == 15 {
		g.i("VMOVAPS Z15, Z16")
	}
	for r := 0; r < 4; r++ {
		for t := 0; t < T; t++ {
			a := acc(r, t)
			if a == 15 {
				g.i("VMOVAPS Z16, Z0")
				g.reduce16(0, 1)
				g.i("VMOVSS X0, %d(%s)", 4*r, xr[t])
				continue
			}
			g.reduce16(a, 15)
			g.i("VMOVSS X%d, %d(%s)", a, 4*r, xr[t])
		}
	}
	g.i("VZEROUPPER")
	g.i("RET")
}

// packAVX512 converts one weight row of n elements to f32 in the GEMM
// panel layout: block b (16 elements) goes to dst + b*512 bytes (8 rows of
// 16 floats per block). The last partial block is zero-padded.
func (g *gen) packAVX512(e elem) {
	name := "pack" + e.name + "AVX512"
	g.text(name, fmt.Sprintf("(dst *float32, w *%s, n int)", e.gtyp), 0, 24)
	g.i("MOVQ dst+0(FP), DI")
	g.i("MOVQ w+8(FP), SI")
	g.i("MOVQ n+16(FP), CX")
	g.i("CMPQ CX, $16")
	g.i("JB tail")
	g.l("loop")
	g.ld512(e, "(SI)", "Z0", false)
	g.i("VMOVUPS Z0, (DI)")
	g.i("ADDQ $%d, SI", 16*e.size)
	g.i("ADDQ $512, DI")
	g.i("SUBQ $16, CX")
	g.i("CMPQ CX, $16")
	g.i("JAE loop")
	g.l("tail")
	g.i("TESTQ CX, CX")
	g.i("JZ done")
	g.mask512()
	g.ld512(e, "(SI)", "Z0", true)
	g.i("VMOVUPS Z0, (DI)")
	g.l("done")
	g.i("VZEROUPPER")
	g.i("RET")
}

// gemm8x2AVX512: 8 packed weight rows x 2 tokens. acc(r,t) lives in
// Z(2r+t); each is one 16-lane accumulator, k ascending, exactly as dot1.
func (g *gen) gemmAVX512() {
	g.text("gemm8x2AVX512", "(pw *float32, x *float32, ldx int, n int, acc *float32, y *float32, ldy int, flags int)", 0, 64)
	g.i("MOVQ pw+0(FP), SI")
	g.i("MOVQ x+8(FP), DI")
	g.i("MOVQ ldx+16(FP), R8")
	g.i("SHLQ $2, R8")
	g.i("MOVQ n+24(FP), DX")
	g.i("MOVQ DX, CX")
	g.i("ANDQ $15, CX")
	g.i("SHRQ $4, DX")
	g.i("MOVQ acc+32(FP), R9")
	g.i("MOVQ flags+56(FP), BX")
	g.i("TESTQ $1, BX")
	g.i("JNZ loadacc")
	for r := 0; r < 16; r++ {
		g.i("VPXORD Z%d, Z%d, Z%d", r, r, r)
	}
	g.i("JMP start")
	g.l("loadacc")
	for r := 0; r < 16; r++ {
		g.i("VMOVUPS %d(R9), Z%d", 64*r, r)
	}
	g.l("start")
	g.i("TESTQ DX, DX")
	g.i("JZ tail")
	g.l("loop")
	g.i("VMOVUPS (DI), Z24")
	g.i("VMOVUPS (DI)(R8*1), Z25")
	for r := 0; r < 8; r++ {
		g.i("VMOVUPS %d(SI), Z%d", 64*r, 16+r)
		g.i("VFMADD231PS Z%d, Z24, Z%d", 16+r, 2*r)
		g.i("VFMADD231PS Z%d, Z25, Z%d", 16+r, 2*r+1)
	}
	g.i("ADDQ $512, SI")
	g.i("ADDQ $64, DI")
	g.i("DECQ DX")
	g.i("JNZ loop")
	g.l("tail")
	g.i("TESTQ CX, CX")
	g.i("JZ finish")
	g.mask512()
	g.i("VMOVUPS.Z (DI), K1, Z24")
	g.i("VMOVUPS.Z (DI)(R8*1), K1, Z25")
	for r := 0; r < 8; r++ {
		g.i("VMOVUPS %d(SI), Z%d", 64*r, 16+r)
		g.i("VFMADD231PS Z%d, Z24, Z%d", 16+r, 2*r)
		g.i("VFMADD231PS Z%d, Z25, Z%d", 16+r, 2*r+1)
	}
	g.l("finish")
	g.i("TESTQ $2, BX")
	g.i("JNZ reduce")
	for r := 0; r < 16; r++ {
		g.i("VMOVUPS Z%d, %d(R9)", r, 64*r)
	}
	g.i("VZEROUPPER")
	g.i("RET")
	g.l("reduce")
	g.c("stage 1: pair (A,B) -> [A8 | B8], s8[l] = a[l] + a[l+8]")
	pair := func(a, b, dst int) {
		g.i("VSHUFF64X2 $0x44, Z%d, Z%d, Z16", b, a)
		g.i("VSHUFF64X2 $0xEE, Z%d, Z%d, Z17", b, a)
		g.i("VADDPS Z17, Z16, Z%d", dst)
	}
	for r := 0; r < 4; r++ {
		pair(2*r, 2*r+8, 2*r)     // (r,t0),(r+4,t0)
		pair(2*r+1, 2*r+9, 2*r+1) // (r,t1),(r+4,t1)
	}
	g.c("stage 2: [A8|B8],[C8|D8] -> [A4|B4|C4|D4], s4[l] = s8[l] + s8[l+4]")
	for r := 0; r < 4; r++ {
		g.i("VSHUFF64X2 $0x88, Z%d, Z%d, Z16", 2*r+1, 2*r)
		g.i("VSHUFF64X2 $0xDD, Z%d, Z%d, Z17", 2*r+1, 2*r)
		g.i("VADDPS Z17, Z16, Z%d", 2*r)
	}
	g.c("Z(2r) = [(r,t0) | (r+4,t0) | (r,t1) | (r+4,t1)], 4 partials per 128-bit lane")
	g.c("stage 3: s2[l] = s4[l] + s4[l+2]")
	for _, p := range [][3]int{{0, 2, 0}, {4, 6, 4}} {
		g.i("VSHUFPS $0x44, Z%d, Z%d, Z16", p[1], p[0])
		g.i("VSHUFPS $0xEE, Z%d, Z%d, Z17", p[1], p[0])
		g.i("VADDPS Z17, Z16, Z%d", p[2])
	}
	g.c("stage 4: s = s2[0] + s2[1]; lanes become [rows 0-3 t0 | rows 4-7 t0 | rows 0-3 t1 | rows 4-7 t1]")
	g.i("VSHUFPS $0x88, Z4, Z0, Z16")
	g.i("VSHUFPS $0xDD, Z4, Z0, Z17")
	g.i("VADDPS Z17, Z16, Z0")
	g.i("MOVQ y+40(FP), DI")
	g.i("MOVQ ldy+48(FP), R8")
	g.i("VMOVUPS Y0, (DI)")
	g.i("VEXTRACTF64X4 $1, Z0, (DI)(R8*4)")
	g.i("VZEROUPPER")
	g.i("RET")
}

// ew512 emits an element-wise loop over n=CX elements with index BX:
// unrolled by u vectors, then single vectors, then a K1-masked tail.
// body(j, masked) emits one 16-element step using vector slot j, at element
// index BX + 16*j.
func (g *gen) ew512(u int, body func(j int, masked bool)) {
	g.i("XORQ BX, BX")
	g.i("MOVQ CX, DX")
	g.i("ANDQ $-%d, DX", 16*u)
	g.i("JZ single")
	g.l("loopu")
	for j := 0; j < u; j++ {
		body(j, false)
	}
	g.i("ADDQ $%d, BX", 16*u)
	g.i("CMPQ BX, DX")
	g.i("JB loopu")
	g.l("single")
	g.i("MOVQ CX, DX")
	g.i("ANDQ $-16, DX")
	g.i("CMPQ BX, DX")
	g.i("JAE tail")
	g.l("loop1")
	body(0, false)
	g.i("ADDQ $16, BX")
	g.i("CMPQ BX, DX")
	g.i("JB loop1")
	g.l("tail")
	g.i("SUBQ BX, CX")
	g.i("JZ done")
	g.mask512()
	body(0, true)
	g.l("done")
}

func addr(base string, scale, off int) string {
	if off == 0 {
		return fmt.Sprintf("(%s)(BX*%d)", base, scale)
	}
	return fmt.Sprintf("%d(%s)(BX*%d)", off, base, scale)
}

func kz(masked bool) string {
	if masked {
		return ".Z"
	}
	return ""
}

func km(masked bool) string {
	if masked {
		return "K1, "
	}
	return ""
}

func (g *gen) elementwiseAVX512() {
	// F16ToF32
	g.text("f16ToF32AVX512", "(dst *float32, src *uint16, n int)", 0, 24)
	g.i("MOVQ dst+0(FP), DI")
	g.i("MOVQ src+8(FP), SI")
	g.i("MOVQ n+16(FP), CX")
	g.ew512(4, func(j int, m bool) {
		g.ld512(eF16, addr("SI", 2, 32*j), zr(j), m)
		g.i("VMOVUPS Z%d, %s%s", j, km(m), addr("DI", 4, 64*j))
	})
	g.i("VZEROUPPER")
	g.i("RET")

	// F32ToF16
	g.text("f32ToF16AVX512", "(dst *uint16, src *float32, n int)", 0, 24)
	g.i("MOVQ dst+0(FP), DI")
	g.i("MOVQ src+8(FP), SI")
	g.i("MOVQ n+16(FP), CX")
	g.ew512(4, func(j int, m bool) {
		g.i("VMOVUPS%s %s, %s%s", kz(m), addr("SI", 4, 64*j), km(m), zr(j))
		g.i("VCVTPS2PH $0, Z%d, Y%d", j, j)
		g.i("VMOVDQU16 Y%d, %s%s", j, km(m), addr("DI", 2, 32*j))
	})
	g.i("VZEROUPPER")
	g.i("RET")

	// Axpy: y = fma(a, x, y)
	g.text("axpyAVX512", "(a float32, x *float32, y *float32, n int)", 0, 32)
	g.i("VBROADCASTSS a+0(FP), Z31")
	g.i("MOVQ x+8(FP), SI")
	g.i("MOVQ y+16(FP), DI")
	g.i("MOVQ n+24(FP), CX")
	g.ew512(4, func(j int, m bool) {
		g.i("VMOVUPS%s %s, %s%s", kz(m), addr("DI", 4, 64*j), km(m), zr(j))
		g.i("VMOVUPS%s %s, %s%s", kz(m), addr("SI", 4, 64*j), km(m), zr(8+j))
		g.i("VFMADD231PS Z%d, Z31, Z%d", 8+j, j)
		g.i("VMOVUPS Z%d, %s%s", j, km(m), addr("DI", 4, 64*j))
	})
	g.i("VZEROUPPER")
	g.i("RET")

	// AxpyF16
	g.text("axpyF16AVX512", "(a float32, x *uint16, y *float32, n int)", 0, 32)
	g.i("VBROADCASTSS a+0(FP), Z31")
	g.i("MOVQ x+8(FP), SI")
	g.i("MOVQ y+16(FP), DI")
	g.i("MOVQ n+24(FP), CX")
	g.ew512(4, func(j int, m bool) {
		g.i("VMOVUPS%s %s, %s%s", kz(m), addr("DI", 4, 64*j), km(m), zr(j))
		g.ld512(eF16, addr("SI", 2, 32*j), zr(8+j), m)
		g.i("VFMADD231PS Z%d, Z31, Z%d", 8+j, j)
		g.i("VMOVUPS Z%d, %s%s", j, km(m), addr("DI", 4, 64*j))
	})
	g.i("VZEROUPPER")
	g.i("RET")

	// Scale
	g.text("scaleAVX512", "(a float32, x *float32, n int)", 0, 24)
	g.i("VBROADCASTSS a+0(FP), Z31")
	g.i("MOVQ x+8(FP), DI")
	g.i("MOVQ n+16(FP), CX")
	g.ew512(4, func(j int, m bool) {
		g.i("VMOVUPS%s %s, %s%s", kz(m), addr("DI", 4, 64*j), km(m), zr(j))
		g.i("VMULPS Z31, Z%d, Z%d", j, j)
		g.i("VMOVUPS Z%d, %s%s", j, km(m), addr("DI", 4, 64*j))
	})
	g.i("VZEROUPPER")
	g.i("RET")

	// Add, Mul
	for _, op := range []string{"add", "mul"} {
		inst := map[string]string{"add": "VADDPS", "mul": "VMULPS"}[op]
		g.text(op+"AVX512", "(dst *float32, a *float32, b *float32, n int)", 0, 32)
		g.i("MOVQ dst+0(FP), DI")
		g.i("MOVQ a+8(FP), SI")
		g.i("MOVQ b+16(FP), R8")
		g.i("MOVQ n+24(FP), CX")
		g.ew512(4, func(j int, m bool) {
			g.i("VMOVUPS%s %s, %s%s", kz(m), addr("SI", 4, 64*j), km(m), zr(j))
			g.i("VMOVUPS%s %s, %s%s", kz(m), addr("R8", 4, 64*j), km(m), zr(8+j))
			g.i("%s Z%d, Z%d, Z%d", inst, 8+j, j, j)
			g.i("VMOVUPS Z%d, %s%s", j, km(m), addr("DI", 4, 64*j))
		})
		g.i("VZEROUPPER")
		g.i("RET")
	}

	// SumSquares: four accumulators Z16..Z19 (slot j), masked tail into
	// slot 0 with zeroed lanes; total = (a0+a1)+(a2+a3), then the tree.
	g.text("sumSquaresAVX512", "(x *float32, n int) float32", 0, 20)
	g.i("MOVQ x+0(FP), SI")
	g.i("MOVQ n+8(FP), CX")
	for j := 0; j < 4; j++ {
		g.i("VPXORD Z%d, Z%d, Z%d", 16+j, 16+j, 16+j)
	}
	g.ew512(4, func(j int, m bool) {
		g.i("VMOVUPS%s %s, %s%s", kz(m), addr("SI", 4, 64*j), km(m), zr(j))
		g.i("VFMADD231PS Z%d, Z%d, Z%d", j, j, 16+j)
	})
	g.i("VADDPS Z17, Z16, Z16")
	g.i("VADDPS Z19, Z18, Z18")
	g.i("VADDPS Z18, Z16, Z0")
	g.reduce16(0, 1)
	g.i("VMOVSS X0, ret+16(FP)")
	g.i("VZEROUPPER")
	g.i("RET")

	// Max: accumulators start at -Inf; masked tail merges into -Inf.
	g.text("maxAVX512", "(x *float32, n int) float32", 0, 20)
	g.i("MOVQ x+0(FP), SI")
	g.i("MOVQ n+8(FP), CX")
	g.i("MOVL $0xff800000, AX")
	g.i("VPBROADCASTD AX, Z20")
	for j := 0; j < 4; j++ {
		g.i("VMOVAPS Z20, Z%d", 16+j)
	}
	g.ew512(4, func(j int, m bool) {
		if m {
			g.i("VMOVAPS Z20, Z%d", j)
			g.i("VMOVUPS %s, K1, Z%d", addr("SI", 4, 64*j), j)
		} else {
			g.i("VMOVUPS %s, Z%d", addr("SI", 4, 64*j), j)
		}
		g.i("VMAXPS Z%d, Z%d, Z%d", j, 16+j, 16+j)
	})
	g.i("VMAXPS Z17, Z16, Z16")
	g.i("VMAXPS Z19, Z18, Z18")
	g.i("VMAXPS Z18, Z16, Z0")
	g.i("VEXTRACTF64X4 $1, Z0, Y1")
	g.i("VMAXPS Y1, Y0, Y0")
	g.i("VEXTRACTF128 $1, Y0, X1")
	g.i("VMAXPS X1, X0, X0")
	g.i("VPERMILPS $0xEE, X0, X1")
	g.i("VMAXPS X1, X0, X0")
	g.i("VMOVSHDUP X0, X1")
	g.i("VMAXSS X1, X0, X0")
	g.i("VMOVSS X0, ret+16(FP)")
	g.i("VZEROUPPER")
	g.i("RET")

	// ExpSub and SiLUMul share the exp core.
	g.text("expSubAVX512", "(x *float32, n int, m float32) float32", 0, 28)
	g.i("MOVQ x+0(FP), SI")
	g.i("MOVQ n+8(FP), CX")
	g.i("VBROADCASTSS m+16(FP), Z31")
	g.expConsts512()
	g.i("VPXORD Z29, Z29, Z29")
	g.i("VPXORD Z30, Z30, Z30")
	g.ew512(2, func(j int, m bool) {
		t := 5 * j
		g.i("VMOVUPS%s %s, %s%s", kz(m), addr("SI", 4, 64*j), km(m), zr(t))
		g.i("VSUBPS Z31, Z%d, Z%d", t, t)
		g.exp512(t)
		g.i("VMOVUPS Z%d, %s%s", t, km(m), addr("SI", 4, 64*j))
		if m {
			g.i("VADDPS Z%d, Z%d, K1, Z%d", t, 29+j, 29+j)
		} else {
			g.i("VADDPS Z%d, Z%d, Z%d", t, 29+j, 29+j)
		}
	})
	g.i("VADDPS Z30, Z29, Z0")
	g.reduce16(0, 1)
	g.i("VMOVSS X0, ret+24(FP)")
	g.i("VZEROUPPER")
	g.i("RET")

	// silu(g)·up = g · (s / (1+e)) · up with e = exp(-|g|) and s = e for
	// g < 0, else 1: exp never overflows, so very negative g keeps its
	// tiny value instead of flushing to -0.
	g.text("siluMulAVX512", "(dst *float32, gate *float32, up *float32, n int)", 0, 32)
	g.i("MOVQ dst+0(FP), DI")
	g.i("MOVQ gate+8(FP), SI")
	g.i("MOVQ up+16(FP), R8")
	g.i("MOVQ n+24(FP), CX")
	g.expConsts512()
	g.i("VPXORD Z31, Z31, Z31")
	g.i("MOVL $0x80000000, AX")
	g.i("VPBROADCASTD AX, Z30")
	g.ew512(2, func(j int, m bool) {
		t := 5 * j
		gz := 10 + j
		g.i("VMOVUPS%s %s, %s%s", kz(m), addr("SI", 4, 64*j), km(m), zr(gz))
		g.i("VPORD Z30, Z%d, Z%d", gz, t) // t = -|g|
		g.exp512(t)
		g.i("VCMPPS $1, Z31, Z%d, K2", gz)         // K2 = g < 0
		g.i("VBLENDMPS Z%d, Z28, K2, Z%d", t, t+1) // s = g<0 ? e : 1
		g.i("VADDPS Z28, Z%d, Z%d", t, t)          // 1 + e
		g.i("VDIVPS Z%d, Z%d, Z%d", t, t+1, t+1)   // s / (1+e)
		g.i("VMULPS Z%d, Z%d, Z%d", t+1, gz, gz)   // g · sigmoid(g)
		g.i("VMOVUPS%s %s, %s%s", kz(m), addr("R8", 4, 64*j), km(m), zr(t))
		g.i("VMULPS Z%d, Z%d, Z%d", t, gz, gz)
		g.i("VMOVUPS Z%d, %s%s", gz, km(m), addr("DI", 4, 64*j))
	})
	g.i("VZEROUPPER")
	g.i("RET")
}

// exp constants, as float32 (see expf32 in exp.go for the algorithm).
var expConsts = []struct {
	name string
	v    string
}{
	{"hi", "88.9"},                   // 0: clamp high (exp overflows to +Inf above ~88.72)
	{"lo", "-110.0"},                 // 1: clamp low (exp underflows to 0 below ~-103.97)
	{"log2e", "1.44269504088896341"}, // 2
	{"c1", "0.693359375"},            // 3: ln2 high part (exact, 9 bits)
	{"c2", "-2.12194440e-4"},         // 4: ln2 - c1
	{"p0", "1.9875691500e-4"},        // 5
	{"p1", "1.3981999507e-3"},        // 6
	{"p2", "8.3334519073e-3"},        // 7
	{"p3", "4.1665795894e-2"},        // 8
	{"p4", "1.6666665459e-1"},        // 9
	{"p5", "5.0000001201e-1"},        // 10
	{"one", "1.0"},                   // 11
}

// expConsts512 broadcasts expConsts[i] into Z(17+i): Z17 (hi) .. Z28 (one).
func (g *gen) expConsts512() {
	for i := range expConsts {
		g.i("VBROADCASTSS expc<>+%d(SB), Z%d", 32*i, 17+i)
	}
}

func ec512(name string) string {
	for i, c := range expConsts {
		if c.name == name {
			return zr(17 + i)
		}
	}
	panic(name)
}

// exp512 replaces Z<t> by exp(Z<t>), using Z<t+1..t+4> as scratch.
func (g *gen) exp512(t int) {
	T, N, R, P, R2 := zr(t), zr(t+1), zr(t+2), zr(t+3), zr(t+4)
	// NaN-propagating clamps: the Intel second source (Go's first operand) is returned for NaN.
	g.i("VMINPS %s, %s, %s", T, ec512("hi"), T)
	g.i("VMAXPS %s, %s, %s", T, ec512("lo"), T)
	g.i("VMULPS %s, %s, %s", ec512("log2e"), T, N)
	g.i("VRNDSCALEPS $8, %s, %s", N, N)
	g.i("VMOVAPS %s, %s", T, R)
	g.i("VFNMADD231PS %s, %s, %s", ec512("c1"), N, R)
	g.i("VFNMADD231PS %s, %s, %s", ec512("c2"), N, R)
	g.i("VMOVAPS %s, %s", ec512("p0"), P)
	for _, c := range []string{"p1", "p2", "p3", "p4", "p5"} {
		g.i("VFMADD213PS %s, %s, %s", ec512(c), R, P)
	}
	g.i("VMULPS %s, %s, %s", R, R, R2)
	g.i("VFMADD213PS %s, %s, %s", R, R2, P)
	g.i("VADDPS %s, %s, %s", ec512("one"), P, P)
	g.i("VSCALEFPS %s, %s, %s", N, P, T)
}

func (g *gen) peak() {
	g.text("fmaPeakAVX512", "(iters int)", 0, 8)
	g.i("MOVQ iters+0(FP), CX")
	for r := 0; r < 12; r++ {
		g.i("VPXORD Z%d, Z%d, Z%d", r, r, r)
	}
	g.i("VPXORD Z20, Z20, Z20")
	g.i("VPXORD Z21, Z21, Z21")
	g.l("loop")
	for r := 0; r < 12; r++ {
		g.i("VFMADD231PS Z20, Z21, Z%d", r)
	}
	g.i("DECQ CX")
	g.i("JNZ loop")
	g.i("VZEROUPPER")
	g.i("RET")

	g.text("fmaPeakAVX2", "(iters int)", 0, 8)
	g.i("MOVQ iters+0(FP), CX")
	for r := 0; r < 12; r++ {
		g.i("VXORPS Y%d, Y%d, Y%d", r, r, r)
	}
	g.i("VXORPS Y12, Y12, Y12")
	g.i("VXORPS Y13, Y13, Y13")
	g.l("loop")
	for r := 0; r < 12; r++ {
		g.i("VFMADD231PS Y12, Y13, Y%d", r)
	}
	g.i("DECQ CX")
	g.i("JNZ loop")
	g.i("VZEROUPPER")
	g.i("RET")
}

// ---------------------------------------------------------------- AVX2

// ld256 loads 8 elements at addr into f32 register y.
func (g *gen) ld256(e elem, addr, yreg string) {
	switch e {
	case eF32:
		g.i("VMOVUPS %s, %s", addr, yreg)
	case eF16:
		g.i("VCVTPH2PS %s, %s", addr, yreg)
	case eBF16:
		g.i("VPMOVZXWD %s, %s", addr, yreg)
		g.i("VPSLLD $16, %s, %s", yreg, yreg)
	}
}

// mask256 loads into Y<m> a lane mask with the low CX (0 < CX < 8) lanes
// set. Clobbers AX, DX.
func (g *gen) mask256(m int) {
	g.i("MOVQ CX, AX")
	g.i("SHLQ $2, AX")
	g.i("NEGQ AX")
	g.i("LEAQ masktab<>+32(SB), DX")
	g.i("VMOVDQU (DX)(AX*1), Y%d", m)
}

var lblN int

// copyTail16 copies CX (< 8) 16-bit elements from src to the 16-byte stack
// buffer at bufoff(SP) after zeroing it, leaving its address in R12.
// Clobbers AX, DX, R12, R13.
func (g *gen) copyTail16(srcAddr string, bufoff int) {
	lblN++
	lbl := fmt.Sprintf("copy%d", lblN)
	g.i("LEAQ %s, R13", srcAddr)
	g.i("LEAQ buf-%d(SP), R12", bufoff)
	g.i("MOVQ $0, (R12)")
	g.i("MOVQ $0, 8(R12)")
	g.i("XORQ AX, AX")
	g.l(lbl)
	g.i("MOVWLZX (R13)(AX*2), DX")
	g.i("MOVW DX, (R12)(AX*2)")
	g.i("INCQ AX")
	g.i("CMPQ AX, CX")
	g.i("JB %s", lbl)
}

// ldTail256 loads the CX-element tail at srcAddr into f32 Y<yreg>, zero
// beyond CX; Y<m> must hold the lane mask (for f32).
func (g *gen) ldTail256(e elem, srcAddr string, yreg, m, bufoff int) {
	if e == eF32 {
		g.i("VMASKMOVPS %s, Y%d, Y%d", srcAddr, m, yreg)
		return
	}
	g.copyTail16(srcAddr, bufoff)
	g.ld256(e, "(R12)", yr(yreg))
}

func (g *gen) dot1AVX2(e elem) {
	name := "dot1" + e.name + "AVX2"
	frame := 0
	if e != eF32 {
		frame = 16
	}
	g.text(name, fmt.Sprintf("(w *%s, x *float32, n int) float32", e.gtyp), frame, 28)
	g.i("MOVQ w+0(FP), SI")
	g.i("MOVQ x+8(FP), DI")
	g.i("MOVQ n+16(FP), CX")
	g.i("VXORPS Y0, Y0, Y0")
	g.i("CMPQ CX, $8")
	g.i("JB tail")
	g.l("loop")
	g.ld256(e, "(SI)", "Y1")
	g.i("VFMADD231PS (DI), Y1, Y0")
	g.i("ADDQ $%d, SI", 8*e.size)
	g.i("ADDQ $32, DI")
	g.i("SUBQ $8, CX")
	g.i("CMPQ CX, $8")
	g.i("JAE loop")
	g.l("tail")
	g.i("TESTQ CX, CX")
	g.i("JZ reduce")
	g.mask256(15)
	g.ldTail256(e, "(SI)", 1, 15, 16)
	g.i("VMASKMOVPS (DI), Y15, Y2")
	g.i("VFMADD231PS Y2, Y1, Y0")
	g.l("reduce")
	g.reduce8(0, 1)
	g.i("VMOVSS X0, ret+24(FP)")
	g.i("VZEROUPPER")
	g.i("RET")
}

func (g *gen) dot4AVX2(e elem) {
	name := "dot4" + e.name + "AVX2"
	frame := 0
	if e != eF32 {
		frame = 64
	}
	g.text(name, fmt.Sprintf("(w *%s, ldw int, x *float32, n int, y *float32)", e.gtyp), frame, 40)
	g.i("MOVQ w+0(FP), SI")
	g.i("MOVQ ldw+8(FP), R8")
	g.i("SHLQ $%d, R8", map[int]int{2: 1, 4: 2}[e.size])
	g.i("LEAQ (SI)(R8*1), R9")
	g.i("LEAQ (SI)(R8*2), R10")
	g.i("LEAQ (R9)(R8*2), R11")
	g.i("MOVQ x+16(FP), DI")
	g.i("MOVQ n+24(FP), DX")
	g.i("MOVQ DX, CX")
	g.i("ANDQ $7, CX")
	g.i("ANDQ $-8, DX")
	g.i("XORQ BX, BX")
	for r := 0; r < 4; r++ {
		g.i("VXORPS Y%d, Y%d, Y%d", r, r, r)
	}
	rows := []string{"SI", "R9", "R10", "R11"}
	g.i("CMPQ BX, DX")
	g.i("JAE tail")
	g.l("loop")
	g.i("VMOVUPS (DI)(BX*4), Y8")
	for r, p := range rows {
		g.ld256(e, fmt.Sprintf("(%s)(BX*%d)", p, e.size), yr(4+r))
		g.i("VFMADD231PS Y8, Y%d, Y%d", 4+r, r)
	}
	g.i("ADDQ $8, BX")
	g.i("CMPQ BX, DX")
	g.i("JB loop")
	g.l("tail")
	g.i("TESTQ CX, CX")
	g.i("JZ reduce")
	g.mask256(15)
	g.i("VMASKMOVPS (DI)(BX*4), Y15, Y8")
	for r, p := range rows {
		g.ldTail256(e, fmt.Sprintf("(%s)(BX*%d)", p, e.size), 4+r, 15, 64-16*r)
		g.i("VFMADD231PS Y8, Y%d, Y%d", 4+r, r)
	}
	g.l("reduce")
	g.i("MOVQ y+32(FP), DI")
	for r := 0; r < 4; r++ {
		g.reduce8(r, 8)
		g.i("VMOVSS X%d, %d(DI)", r, 4*r)
	}
	g.i("VZEROUPPER")
	g.i("RET")
}

// packAVX2: block b (8 elements) of the row goes to dst + b*128 bytes (4
// rows of 8 floats per block), last block zero-padded.
func (g *gen) packAVX2(e elem) {
	name := "pack" + e.name + "AVX2"
	frame := 0
	if e != eF32 {
		frame = 16
	}
	g.text(name, fmt.Sprintf("(dst *float32, w *%s, n int)", e.gtyp), frame, 24)
	g.i("MOVQ dst+0(FP), DI")
	g.i("MOVQ w+8(FP), SI")
	g.i("MOVQ n+16(FP), CX")
	g.i("CMPQ CX, $8")
	g.i("JB tail")
	g.l("loop")
	g.ld256(e, "(SI)", "Y0")
	g.i("VMOVUPS Y0, (DI)")
	g.i("ADDQ $%d, SI", 8*e.size)
	g.i("ADDQ $128, DI")
	g.i("SUBQ $8, CX")
	g.i("CMPQ CX, $8")
	g.i("JAE loop")
	g.l("tail")
	g.i("TESTQ CX, CX")
	g.i("JZ done")
	g.mask256(15)
	g.ldTail256(e, "(SI)", 0, 15, 16)
	g.i("VMOVUPS Y0, (DI)")
	g.l("done")
	g.i("VZEROUPPER")
	g.i("RET")
}

// gemm4x2AVX2: 4 packed rows x 2 tokens; acc(r,t) in Y(2r+t), 8 lanes each.
func (g *gen) gemmAVX2() {
	g.text("gemm4x2AVX2", "(pw *float32, x *float32, ldx int, n int, acc *float32, y *float32, ldy int, flags int)", 0, 64)
	g.i("MOVQ pw+0(FP), SI")
	g.i("MOVQ x+8(FP), DI")
	g.i("MOVQ ldx+16(FP), R8")
	g.i("SHLQ $2, R8")
	g.i("MOVQ n+24(FP), R10")
	g.i("MOVQ R10, CX")
	g.i("ANDQ $7, CX")
	g.i("SHRQ $3, R10")
	g.i("MOVQ acc+32(FP), R9")
	g.i("MOVQ flags+56(FP), BX")
	g.i("TESTQ $1, BX")
	g.i("JNZ loadacc")
	for r := 0; r < 8; r++ {
		g.i("VXORPS Y%d, Y%d, Y%d", r, r, r)
	}
	g.i("JMP start")
	g.l("loadacc")
	for r := 0; r < 8; r++ {
		g.i("VMOVUPS %d(R9), Y%d", 32*r, r)
	}
	g.l("start")
	g.i("TESTQ R10, R10")
	g.i("JZ tail")
	g.l("loop")
	g.i("VMOVUPS (DI), Y8")
	g.i("VMOVUPS (DI)(R8*1), Y9")
	for r := 0; r < 4; r++ {
		g.i("VMOVUPS %d(SI), Y%d", 32*r, 10+r)
		g.i("VFMADD231PS Y%d, Y8, Y%d", 10+r, 2*r)
		g.i("VFMADD231PS Y%d, Y9, Y%d", 10+r, 2*r+1)
	}
	g.i("ADDQ $128, SI")
	g.i("ADDQ $32, DI")
	g.i("DECQ R10")
	g.i("JNZ loop")
	g.l("tail")
	g.i("TESTQ CX, CX")
	g.i("JZ finish")
	g.mask256(14)
	g.i("VMASKMOVPS (DI), Y14, Y8")
	g.i("VMASKMOVPS (DI)(R8*1), Y14, Y9")
	for r := 0; r < 4; r++ {
		g.i("VMOVUPS %d(SI), Y%d", 32*r, 10+r)
		g.i("VFMADD231PS Y%d, Y8, Y%d", 10+r, 2*r)
		g.i("VFMADD231PS Y%d, Y9, Y%d", 10+r, 2*r+1)
	}
	g.l("finish")
	g.i("TESTQ $2, BX")
	g.i("JNZ reduce")
	for r := 0; r < 8; r++ {
		g.i("VMOVUPS Y%d, %d(R9)", r, 32*r)
	}
	g.i("VZEROUPPER")
	g.i("RET")
	g.l("reduce")
	g.c("stage 1: (r,t0),(r,t1) -> [s4 (r,t0) | s4 (r,t1)], s4[l] = a[l] + a[l+4]")
	for r := 0; r < 4; r++ {
		g.i("VPERM2F128 $0x20, Y%d, Y%d, Y8", 2*r+1, 2*r)
		g.i("VPERM2F128 $0x31, Y%d, Y%d, Y9", 2*r+1, 2*r)
		g.i("VADDPS Y9, Y8, Y%d", 2*r)
	}
	g.c("stage 2: s2[l] = s4[l] + s4[l+2]")
	for _, p := range [][3]int{{0, 2, 0}, {4, 6, 4}} {
		g.i("VSHUFPS $0x44, Y%d, Y%d, Y8", p[1], p[0])
		g.i("VSHUFPS $0xEE, Y%d, Y%d, Y9", p[1], p[0])
		g.i("VADDPS Y9, Y8, Y%d", p[2])
	}
	g.c("stage 3: s = s2[0] + s2[1]; lanes [rows 0-3 t0 | rows 0-3 t1]")
	g.i("VSHUFPS $0x88, Y4, Y0, Y8")
	g.i("VSHUFPS $0xDD, Y4, Y0, Y9")
	g.i("VADDPS Y9, Y8, Y0")
	g.i("MOVQ y+40(FP), DI")
	g.i("MOVQ ldy+48(FP), R8")
	g.i("VMOVUPS X0, (DI)")
	g.i("VEXTRACTF128 $1, Y0, (DI)(R8*4)")
	g.i("VZEROUPPER")
	g.i("RET")
}

// ew256: like ew512 with 8-lane vectors; the tail body gets the lane mask
// in Y15 (body must not use Y15 otherwise) and CX = tail count.
func (g *gen) ew256(u int, body func(j int, masked bool)) {
	g.i("XORQ BX, BX")
	g.i("MOVQ CX, R11")
	g.i("ANDQ $-%d, R11", 8*u)
	g.i("JZ single")
	g.l("loopu")
	for j := 0; j < u; j++ {
		body(j, false)
	}
	g.i("ADDQ $%d, BX", 8*u)
	g.i("CMPQ BX, R11")
	g.i("JB loopu")
	g.l("single")
	g.i("MOVQ CX, R11")
	g.i("ANDQ $-8, R11")
	g.i("CMPQ BX, R11")
	g.i("JAE tail")
	g.l("loop1")
	body(0, false)
	g.i("ADDQ $8, BX")
	g.i("CMPQ BX, R11")
	g.i("JB loop1")
	g.l("tail")
	g.i("SUBQ BX, CX")
	g.i("JZ done")
	g.mask256(15)
	body(0, true)
	g.l("done")
}

// f32 load/store helpers for ew256 bodies.
func (g *gen) ld32(masked bool, a string, r int) {
	if masked {
		g.i("VMASKMOVPS %s, Y15, Y%d", a, r)
	} else {
		g.i("VMOVUPS %s, Y%d", a, r)
	}
}

func (g *gen) st32(masked bool, r int, a string) {
	if masked {
		g.i("VMASKMOVPS Y%d, Y15, %s", r, a)
	} else {
		g.i("VMOVUPS Y%d, %s", r, a)
	}
}

func (g *gen) elementwiseAVX2() {
	g.text("f16ToF32AVX2", "(dst *float32, src *uint16, n int)", 16, 24)
	g.i("MOVQ dst+0(FP), DI")
	g.i("MOVQ src+8(FP), SI")
	g.i("MOVQ n+16(FP), CX")
	g.ew256(4, func(j int, m bool) {
		if m {
			g.ldTail256(eF16, addr("SI", 2, 0), j, 15, 16)
		} else {
			g.ld256(eF16, addr("SI", 2, 16*j), yr(j))
		}
		g.st32(m, j, addr("DI", 4, 32*j))
	})
	g.i("VZEROUPPER")
	g.i("RET")

	g.text("f32ToF16AVX2", "(dst *uint16, src *float32, n int)", 16, 24)
	g.i("MOVQ dst+0(FP), DI")
	g.i("MOVQ src+8(FP), SI")
	g.i("MOVQ n+16(FP), CX")
	g.ew256(4, func(j int, m bool) {
		g.ld32(m, addr("SI", 4, 32*j), j)
		if !m {
			g.i("VCVTPS2PH $0, Y%d, %s", j, addr("DI", 2, 16*j))
			return
		}
		g.i("VCVTPS2PH $0, Y%d, X%d", j, j)
		g.i("LEAQ buf-16(SP), R12")
		g.i("VMOVDQU X%d, (R12)", j)
		g.i("LEAQ %s, R13", addr("DI", 2, 0))
		g.i("XORQ AX, AX")
		g.l("store16")
		g.i("MOVWLZX (R12)(AX*2), DX")
		g.i("MOVW DX, (R13)(AX*2)")
		g.i("INCQ AX")
		g.i("CMPQ AX, CX")
		g.i("JB store16")
	})
	g.i("VZEROUPPER")
	g.i("RET")

	g.text("axpyAVX2", "(a float32, x *float32, y *float32, n int)", 0, 32)
	g.i("VBROADCASTSS a+0(FP), Y14")
	g.i("MOVQ x+8(FP), SI")
	g.i("MOVQ y+16(FP), DI")
	g.i("MOVQ n+24(FP), CX")
	g.ew256(4, func(j int, m bool) {
		g.ld32(m, addr("DI", 4, 32*j), j)
		g.ld32(m, addr("SI", 4, 32*j), 4+j)
		g.i("VFMADD231PS Y%d, Y14, Y%d", 4+j, j)
		g.st32(m, j, addr("DI", 4, 32*j))
	})
	g.i("VZEROUPPER")
	g.i("RET")

	g.text("axpyF16AVX2", "(a float32, x *uint16, y *float32, n int)", 16, 32)
	g.i("VBROADCASTSS a+0(FP), Y14")
	g.i("MOVQ x+8(FP), SI")
	g.i("MOVQ y+16(FP), DI")
	g.i("MOVQ n+24(FP), CX")
	g.ew256(4, func(j int, m bool) {
		g.ld32(m, addr("DI", 4, 32*j), j)
		if m {
			g.ldTail256(eF16, addr("SI", 2, 0), 4+j, 15, 16)
		} else {
			g.ld256(eF16, addr("SI", 2, 16*j), yr(4+j))
		}
		g.i("VFMADD231PS Y%d, Y14, Y%d", 4+j, j)
		g.st32(m, j, addr("DI", 4, 32*j))
	})
	g.i("VZEROUPPER")
	g.i("RET")

	g.text("scaleAVX2", "(a float32, x *float32, n int)", 0, 24)
	g.i("VBROADCASTSS a+0(FP), Y14")
	g.i("MOVQ x+8(FP), DI")
	g.i("MOVQ n+16(FP), CX")
	g.ew256(4, func(j int, m bool) {
		g.ld32(m, addr("DI", 4, 32*j), j)
		g.i("VMULPS Y14, Y%d, Y%d", j, j)
		g.st32(m, j, addr("DI", 4, 32*j))
	})
	g.i("VZEROUPPER")
	g.i("RET")

	for _, op := range []string{"add", "mul"} {
		inst := map[string]string{"add": "VADDPS", "mul": "VMULPS"}[op]
		g.text(op+"AVX2", "(dst *float32, a *float32, b *float32, n int)", 0, 32)
		g.i("MOVQ dst+0(FP), DI")
		g.i("MOVQ a+8(FP), SI")
		g.i("MOVQ b+16(FP), R8")
		g.i("MOVQ n+24(FP), CX")
		g.ew256(4, func(j int, m bool) {
			g.ld32(m, addr("SI", 4, 32*j), j)
			g.ld32(m, addr("R8", 4, 32*j), 4+j)
			g.i("%s Y%d, Y%d, Y%d", inst, 4+j, j, j)
			g.st32(m, j, addr("DI", 4, 32*j))
		})
		g.i("VZEROUPPER")
		g.i("RET")
	}

	g.text("sumSquaresAVX2", "(x *float32, n int) float32", 0, 20)
	g.i("MOVQ x+0(FP), SI")
	g.i("MOVQ n+8(FP), CX")
	for j := 0; j < 4; j++ {
		g.i("VXORPS Y%d, Y%d, Y%d", 8+j, 8+j, 8+j)
	}
	g.ew256(4, func(j int, m bool) {
		g.ld32(m, addr("SI", 4, 32*j), j)
		g.i("VFMADD231PS Y%d, Y%d, Y%d", j, j, 8+j)
	})
	g.i("VADDPS Y9, Y8, Y8")
	g.i("VADDPS Y11, Y10, Y10")
	g.i("VADDPS Y10, Y8, Y0")
	g.reduce8(0, 1)
	g.i("VMOVSS X0, ret+16(FP)")
	g.i("VZEROUPPER")
	g.i("RET")

	g.text("maxAVX2", "(x *float32, n int) float32", 0, 20)
	g.i("MOVQ x+0(FP), SI")
	g.i("MOVQ n+8(FP), CX")
	g.i("VBROADCASTSS neginf<>(SB), Y12")
	for j := 0; j < 4; j++ {
		g.i("VMOVAPS Y12, Y%d", 8+j)
	}
	g.ew256(4, func(j int, m bool) {
		g.ld32(m, addr("SI", 4, 32*j), j)
		if m {
			g.i("VBLENDVPS Y15, Y%d, Y12, Y%d", j, j)
		}
		g.i("VMAXPS Y%d, Y%d, Y%d", j, 8+j, 8+j)
	})
	g.i("VMAXPS Y9, Y8, Y8")
	g.i("VMAXPS Y11, Y10, Y10")
	g.i("VMAXPS Y10, Y8, Y0")
	g.i("VEXTRACTF128 $1, Y0, X1")
	g.i("VMAXPS X1, X0, X0")
	g.i("VPERMILPS $0xEE, X0, X1")
	g.i("VMAXPS X1, X0, X0")
	g.i("VMOVSHDUP X0, X1")
	g.i("VMAXSS X1, X0, X0")
	g.i("VMOVSS X0, ret+16(FP)")
	g.i("VZEROUPPER")
	g.i("RET")

	g.text("expSubAVX2", "(x *float32, n int, m float32) float32", 0, 28)
	g.i("MOVQ x+0(FP), SI")
	g.i("MOVQ n+8(FP), CX")
	g.i("VBROADCASTSS m+16(FP), Y12")
	g.i("VMOVUPS expc<>+0(SB), Y10")
	g.i("VMOVUPS expc<>+32(SB), Y11")
	g.i("VXORPS Y13, Y13, Y13")
	g.i("VXORPS Y14, Y14, Y14")
	g.ew256(2, func(j int, m bool) {
		t := 5 * j
		g.ld32(m, addr("SI", 4, 32*j), t)
		g.i("VSUBPS Y12, Y%d, Y%d", t, t)
		g.exp256(t)
		if m {
			g.i("VANDPS Y15, Y%d, Y%d", t, t) // zero lanes past the tail before summing
		}
		g.st32(m, t, addr("SI", 4, 32*j))
		g.i("VADDPS Y%d, Y%d, Y%d", t, 13+j, 13+j)
	})
	g.i("VADDPS Y14, Y13, Y0")
	g.reduce8(0, 1)
	g.i("VMOVSS X0, ret+24(FP)")
	g.i("VZEROUPPER")
	g.i("RET")

	g.text("siluMulAVX2", "(dst *float32, gate *float32, up *float32, n int)", 0, 32)
	g.i("MOVQ dst+0(FP), DI")
	g.i("MOVQ gate+8(FP), SI")
	g.i("MOVQ up+16(FP), R8")
	g.i("MOVQ n+24(FP), CX")
	g.i("VMOVUPS expc<>+0(SB), Y10")
	g.i("VMOVUPS expc<>+32(SB), Y11")
	g.ew256(2, func(j int, m bool) {
		t := 5 * j
		gy := 12 + j
		g.ld32(m, addr("SI", 4, 32*j), gy)
		g.i("VORPS signbit<>(SB), Y%d, Y%d", gy, t) // t = -|g|
		g.exp256(t)
		g.i("VMOVUPS %s, Y%d", ec256("one"), t+2)
		g.i("VBLENDVPS Y%d, Y%d, Y%d, Y%d", gy, t, t+2, t+1) // s = sign(g) ? e : 1
		g.i("VADDPS Y%d, Y%d, Y%d", t+2, t, t)               // 1 + e
		g.i("VDIVPS Y%d, Y%d, Y%d", t, t+1, t+1)             // s / (1+e)
		g.i("VMULPS Y%d, Y%d, Y%d", t+1, gy, gy)             // g · sigmoid(g)
		g.ld32(m, addr("R8", 4, 32*j), t)
		g.i("VMULPS Y%d, Y%d, Y%d", t, gy, gy)
		g.st32(m, gy, addr("DI", 4, 32*j))
	})
	g.i("VZEROUPPER")
	g.i("RET")
}

func ec256(name string) string {
	for i, c := range expConsts {
		if c.name == name {
			return fmt.Sprintf("expc<>+%d(SB)", 32*i)
		}
	}
	panic(name)
}

// exp256 replaces Y<t> by exp(Y<t>) using Y<t+1..t+4>; Y10/Y11 hold the
// hi/lo clamps.
func (g *gen) exp256(t int) {
	T, N, R, P, R2 := yr(t), yr(t+1), yr(t+2), yr(t+3), yr(t+4)
	g.i("VMINPS %s, Y10, %s", T, T)
	g.i("VMAXPS %s, Y11, %s", T, T)
	g.i("VMULPS %s, %s, %s", ec256("log2e"), T, N)
	g.i("VROUNDPS $0, %s, %s", N, N)
	g.i("VMOVAPS %s, %s", T, R)
	g.i("VFNMADD231PS %s, %s, %s", ec256("c1"), N, R)
	g.i("VFNMADD231PS %s, %s, %s", ec256("c2"), N, R)
	g.i("VMOVUPS %s, %s", ec256("p0"), P)
	for _, c := range []string{"p1", "p2", "p3", "p4", "p5"} {
		g.i("VFMADD213PS %s, %s, %s", ec256(c), R, P)
	}
	g.i("VMULPS %s, %s, %s", R, R, R2)
	g.i("VFMADD213PS %s, %s, %s", R, R2, P)
	g.i("VADDPS %s, %s, %s", ec256("one"), P, P)
	// 2^n as two factors 2^(n>>1) * 2^(n-(n>>1)), each a normal float.
	g.i("VCVTPS2DQ %s, %s", N, N)
	g.i("VPSRAD $1, %s, %s", N, R)
	g.i("VPSUBD %s, %s, %s", R, N, N)
	g.i("VPADDD expi127<>(SB), %s, %s", R, R)
	g.i("VPSLLD $23, %s, %s", R, R)
	g.i("VPADDD expi127<>(SB), %s, %s", N, N)
	g.i("VPSLLD $23, %s, %s", N, N)
	g.i("VMULPS %s, %s, %s", R, P, P)
	g.i("VMULPS %s, %s, %s", N, P, T)
}

// ---------------------------------------------------------------- FWHT

// fwhtISA describes how one ISA runs the FWHT kernel (see fwht.go for the
// contract and the operation order, which must match the reference loop).
type fwhtISA struct {
	suffix     string
	L          int // lanes
	B          int // elements of a row block held in registers (data registers = B/L)
	minN, maxN int // row lengths handled; a row longer than B is n/B ≤ 4 blocks
	reg        func(int) string
	scale      int   // register holding the broadcast scale
	temps      []int // registers free for temporaries (besides the data registers)
	// sign returns the operand holding the ±1 vector of in-register stage
	// h = 2^k: +1 in lanes with bit k clear, -1 where it is set.
	sign func(k int) string
	// perm emits dst = src with lanes l and l^(1<<k) swapped (k ≥ 1).
	perm  func(g *gen, k int, src, dst string)
	setup func(g *gen)
}

var fwhtAVX512 = fwhtISA{
	suffix: "AVX512", L: 16, B: 256, minN: 16, maxN: 1024,
	reg: zr, scale: 20, temps: []int{21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31},
	sign: func(k int) string { return zr(16 + k) },
	perm: func(g *gen, k int, src, dst string) {
		switch k {
		case 1:
			g.i("VPERMILPS $0x4E, %s, %s", src, dst)
		case 2:
			g.i("VSHUFF32X4 $0xB1, %s, %s, %s", src, src, dst)
		case 3:
			g.i("VSHUFF32X4 $0x4E, %s, %s, %s", src, src, dst)
		}
	},
	setup: func(g *gen) {
		for k := 0; k < 4; k++ {
			g.i("VMOVUPS fwhtsign<>+%d(SB), Z%d", 64*k, 16+k)
		}
	},
}

var fwhtAVX2 = fwhtISA{
	suffix: "AVX2", L: 8, B: 64, minN: 8, maxN: 256,
	reg: yr, scale: 15, temps: []int{8, 9, 10, 11, 12, 13, 14},
	sign: func(k int) string { return fmt.Sprintf("fwhtsign<>+%d(SB)", 64*k) },
	perm: func(g *gen, k int, src, dst string) {
		switch k {
		case 1:
			g.i("VPERMILPS $0x4E, %s, %s", src, dst)
		case 2:
			g.i("VPERM2F128 $0x01, %s, %s, %s", src, src, dst)
		}
	},
	setup: func(g *gen) {},
}

// fwhtRegs maps the vectors (slots) of the block being transformed to
// registers. Butterflies across registers write a+b to a free register and
// a-b over b, so the slots move around; the generator tracks them, and
// every row starts from the same assignment.
type fwhtRegs struct {
	slot []int
	free []int
}

func (ra *fwhtRegs) reset(f *fwhtISA, nv int) {
	ra.slot = ra.slot[:0]
	for i := 0; i < nv; i++ {
		ra.slot = append(ra.slot, i)
	}
	ra.free = append(ra.free[:0], f.temps...)
}

func (ra *fwhtRegs) get() int {
	if len(ra.free) == 0 {
		panic("fwht: out of registers")
	}
	r := ra.free[0]
	ra.free = ra.free[1:]
	return r
}

func (ra *fwhtRegs) put(r int) { ra.free = append(ra.free, r) }

// fwhtBfly emits the butterfly of registers a (lower index) and b:
// returns the register holding a+b; b is overwritten with a-b and a freed.
func (g *gen) fwhtBfly(f *fwhtISA, ra *fwhtRegs, a, b int) int {
	t := ra.get()
	g.i("VADDPS %s, %s, %s", f.reg(b), f.reg(a), f.reg(t))
	g.i("VSUBPS %s, %s, %s", f.reg(b), f.reg(a), f.reg(b))
	ra.put(a)
	return t
}

// fwhtBlock loads the nv vectors at base into registers and runs the
// stages h = 1, 2, 4, ..., nv·L/2 on them. Stage h = 1 comes with the load:
// VMOVSLDUP and VMOVSHDUP (pure loads, no shuffle uop) give e = (x0, x0,
// x2, x2, ...) and o = (x1, x1, x3, x3, ...), and x = fma(o, ±1, e) is
// exactly x0+x1, x0-x1, x2+x3, .... The other in-register stages (h < L):
// t = x with lanes l, l^h swapped, then x = fma(x, ±1, t), which is exactly
// t+x in the lower lane of each pair (a+b) and t-x in the upper one (a-b).
// Cross-register stages are VADDPS/VSUBPS of the two vectors.
func (g *gen) fwhtBlock(f *fwhtISA, ra *fwhtRegs, base string, nv int) {
	ra.reset(f, nv)
	g.c("stage h=1 (at the load)")
	for i := 0; i < nv; i++ {
		t, x := ra.get(), ra.slot[i]
		g.i("VMOVSLDUP %s, %s", off(4*f.L*i, base), f.reg(x))
		g.i("VMOVSHDUP %s, %s", off(4*f.L*i, base), f.reg(t))
		g.i("VFMADD231PS %s, %s, %s", f.sign(0), f.reg(t), f.reg(x))
		ra.put(t)
	}
	for k := 1; 1<<k < f.L; k++ {
		g.c(fmt.Sprintf("stage h=%d (in register)", 1<<k))
		for i := 0; i < nv; i++ {
			t := ra.get()
			x := ra.slot[i]
			f.perm(g, k, f.reg(x), f.reg(t))
			g.i("VFMADD132PS %s, %s, %s", f.sign(k), f.reg(t), f.reg(x))
			ra.put(t)
		}
	}
	for hv := 1; hv < nv; hv *= 2 {
		g.c(fmt.Sprintf("stage h=%d (across registers)", hv*f.L))
		for i := 0; i < nv; i++ {
			if i&hv == 0 {
				ra.slot[i] = g.fwhtBfly(f, ra, ra.slot[i], ra.slot[i+hv])
			}
		}
	}
}

// off formats a byte offset from base ("(DI)" for 0).
func off(o int, base string) string {
	if o == 0 {
		return "(" + base + ")"
	}
	return fmt.Sprintf("%d(%s)", o, base)
}

// fwhtStore stores the block's registers at base, scaled by the scale
// register if scaled.
func (g *gen) fwhtStore(f *fwhtISA, ra *fwhtRegs, base string, nv int, scaled bool) {
	for i := 0; i < nv; i++ {
		r := f.reg(ra.slot[i])
		if scaled {
			g.i("VMULPS %s, %s, %s", f.reg(f.scale), r, r)
		}
		g.i("VMOVUPS %s, %s", r, off(4*f.L*i, base))
	}
}

// fwhtKernel emits fwht<ISA>(x, rows, n, s): the normalized transform of
// each of the rows rows of n elements at x (rows ≥ 1, n a power of two in
// [minN, maxN]), every element finally multiplied by s. A row of up to B
// elements lives in registers from load to store. A longer row of nb = 2
// or 4 blocks: blocks 0..nb-2 each get the stages h < B in registers and
// are stored unscaled, the last block keeps its registers, and the
// remaining stages (h = B, then 2B) run column by column, radix 2 or 4,
// reading the earlier blocks back, then scale and store.
func (g *gen) fwhtKernel(f *fwhtISA) {
	g.text("fwht"+f.suffix, "(x *float32, rows int, n int, s float32)", 0, 28)
	g.i("MOVQ x+0(FP), DI")
	g.i("MOVQ rows+8(FP), CX")
	g.i("MOVQ n+16(FP), AX")
	g.i("VBROADCASTSS s+24(FP), %s", f.reg(f.scale))
	f.setup(g)
	for n := f.minN; n <= f.maxN; n *= 2 {
		g.i("CMPQ AX, $%d", n)
		g.i("JEQ n%d", n)
	}
	g.i("JMP done")
	var ra fwhtRegs
	for n := f.minN; n <= f.maxN; n *= 2 {
		nb := max(1, n/f.B)
		nv := min(n, f.B) / f.L
		g.l(fmt.Sprintf("n%d", n))
		if nb == 1 {
			g.fwhtBlock(f, &ra, "DI", nv)
			g.fwhtStore(f, &ra, "DI", nv, true)
		} else {
			g.i("MOVQ DI, SI")
			g.i("MOVQ $%d, DX", nb-1)
			g.l(fmt.Sprintf("n%dblock", n))
			g.fwhtBlock(f, &ra, "SI", nv)
			g.fwhtStore(f, &ra, "SI", nv, false)
			g.i("ADDQ $%d, SI", 4*f.B)
			g.i("DECQ DX")
			g.i("JNZ n%dblock", n)
			g.fwhtBlock(f, &ra, "SI", nv)
			g.c(fmt.Sprintf("stages h=%d.. across blocks, last block in registers", f.B))
			for c := 0; c < nv; c++ {
				v := make([]int, nb)
				for q := 0; q < nb-1; q++ {
					v[q] = ra.get()
					g.i("VMOVUPS %s, %s", off(4*(q*f.B+c*f.L), "DI"), f.reg(v[q]))
				}
				v[nb-1] = ra.slot[c]
				for hb := 1; hb < nb; hb *= 2 {
					for q := 0; q < nb; q++ {
						if q&hb == 0 {
							v[q] = g.fwhtBfly(f, &ra, v[q], v[q+hb])
						}
					}
				}
				for q := 0; q < nb; q++ {
					r := f.reg(v[q])
					g.i("VMULPS %s, %s, %s", f.reg(f.scale), r, r)
					g.i("VMOVUPS %s, %s", r, off(4*(q*f.B+c*f.L), "DI"))
					ra.put(v[q])
				}
			}
		}
		g.i("ADDQ $%d, DI", 4*n)
		g.i("DECQ CX")
		g.i("JNZ n%d", n)
		g.i("JMP done")
	}
	g.l("done")
	g.i("VZEROUPPER")
	g.i("RET")
}

// ---------------------------------------------------------------- AccumRows

// accumCaps512[G] and accumCaps256[G] are the most vectors (16 and 8 f32
// lanes) of one column block that the (G heads, b vectors) variants of
// accumRows*AVX512 / accumRows*AVX2 hold in registers: G·b accumulators,
// plus min(G, b) live broadcasts or converted row vectors, plus one
// temporary. They must equal accumMaxVec512 / accumMaxVec256 in
// accum_amd64.go (the kernels return false for a shape they lack, and the
// Go side panics).
var (
	accumCaps512 = [9]int{0, 8, 4, 4, 4, 4, 4, 3, 3}
	accumCaps256 = [9]int{0, 8, 4, 4, 3, 2, 2, 0, 0} // 7 and 8 heads go in two groups
)

// accumAddrA is head gi's coefficient for the current row: a + gi·lda·4
// bytes, with R9 = 4·lda, R10 = 3·R9, R11 = 5·R9, R12 = 7·R9 and DI = the
// current row's coefficient of head 0.
func accumAddrA(gi int) string {
	return [8]string{"(DI)", "(DI)(R9*1)", "(DI)(R9*2)", "(DI)(R10*1)", "(DI)(R9*4)", "(DI)(R11*1)", "(DI)(R10*2)", "(DI)(R12*1)"}[gi]
}

// accumPrologue loads the pointer and stride arguments shared by both ISAs:
// BX = y, R13 = 4·ldy, DI = a, R9..R12 = multiples of 4·lda (accumAddrA),
// SI = rows, R8 = stride in bytes, CX = n.
func (g *gen) accumPrologue(e elem) {
	g.i("MOVQ y+0(FP), BX")
	g.i("MOVQ ldy+8(FP), R13")
	g.i("SHLQ $2, R13")
	g.i("MOVQ a+16(FP), DI")
	g.i("MOVQ lda+24(FP), R9")
	g.i("SHLQ $2, R9")
	g.i("LEAQ (R9)(R9*2), R10")
	g.i("LEAQ (R9)(R9*4), R11")
	g.i("LEAQ (R10)(R9*4), R12")
	g.i("MOVQ rows+32(FP), SI")
	g.i("MOVQ stride+40(FP), R8")
	g.i("SHLQ $%d, R8", map[int]int{2: 1, 4: 2}[e.size])
}

// accumRowsAVX512 emits accumRows<E>AVX512(y, ldy, a, lda, rows, stride, n,
// g, cols) bool: for gi < g, c < cols (1 ≤ cols ≤ 16·accumCaps512[g]),
//
//	y[gi·ldy+c] = fma(a[gi·lda+t], w[t·stride+c], ...) for t = 0..n-1 in turn
//
// (n ≥ 1) with the g·⌈cols/16⌉ accumulators in registers across all rows.
// The last vector of each row block is masked by K1 (the low
// cols-16·(⌈cols/16⌉-1) lanes), so nothing past column cols is read or
// written. It returns false, doing nothing, for a (g, ⌈cols/16⌉) without a
// variant.
func (g *gen) accumRowsAVX512(e elem) {
	name := "accumRows" + e.name + "AVX512"
	g.text(name, fmt.Sprintf("(y *float32, ldy int, a *float32, lda int, rows *%s, stride int, n int, ng int, cols int) bool", e.gtyp), 0, 73)
	g.accumPrologue(e)
	g.c("K1 = low ((cols-1)&15)+1 lanes; AX = 16·g + ⌈cols/16⌉ selects the variant")
	g.i("MOVQ cols+64(FP), CX")
	g.i("LEAQ 15(CX), AX")
	g.i("SHRQ $4, AX")
	g.i("DECQ CX")
	g.i("ANDQ $15, CX")
	g.i("INCQ CX")
	g.i("MOVL $1, DX")
	g.i("SHLL CX, DX")
	g.i("DECL DX")
	g.i("KMOVW DX, K1")
	g.i("MOVQ ng+56(FP), DX")
	g.i("SHLQ $4, DX")
	g.i("ADDQ DX, AX")
	g.i("MOVQ n+48(FP), CX")
	for G := 1; G <= 8; G++ {
		for b := 1; b <= accumCaps512[G]; b++ {
			g.i("CMPQ AX, $%d", 16*G+b)
			g.i("JEQ g%db%d", G, b)
		}
	}
	g.i("MOVB $0, ret+72(FP)")
	g.i("RET")
	for G := 1; G <= 8; G++ {
		for b := 1; b <= accumCaps512[G]; b++ {
			g.accumVariant512(e, G, b)
		}
	}
	g.l("done")
	g.i("VZEROUPPER")
	g.i("MOVB $1, ret+72(FP)")
	g.i("RET")
}

// ldRow512 loads row vector j (of b; the last one masked by K1) at SI into
// the f32 register z.
func (g *gen) ldRow512(e elem, j, b int, z string) {
	a := fmt.Sprintf("%d(SI)", 16*e.size*j)
	if j == 0 {
		a = "(SI)"
	}
	last := j == b-1
	switch {
	case e == eF32 && last:
		g.i("VMOVUPS.Z %s, K1, %s", a, z)
	case e == eF32:
		g.i("VMOVUPS %s, %s", a, z)
	case e == eF16 && last:
		g.i("VCVTPH2PS.Z %s, K1, %s", a, z)
	case e == eF16:
		g.i("VCVTPH2PS %s, %s", a, z)
	case e == eBF16 && last:
		g.i("VPMOVZXWD.Z %s, K1, %s", a, z)
		g.i("VPSLLD $16, %s, %s", z, z)
	default:
		g.i("VPMOVZXWD %s, %s", a, z)
		g.i("VPSLLD $16, %s, %s", z, z)
	}
}

// accumVariant512: G heads × b vectors; accumulator (gi, j) is Z(gi·b+j).
func (g *gen) accumVariant512(e elem, G, b int) {
	if G*b > 24 || min(G, b) > 4 {
		panic(fmt.Sprintf("accum AVX-512 variant G=%d b=%d does not fit the registers", G, b))
	}
	acc := func(gi, j int) string { return zr(gi*b + j) }
	g.l(fmt.Sprintf("g%db%d", G, b))
	g.i("MOVQ BX, DX")
	for gi := 0; gi < G; gi++ {
		for j := 0; j < b; j++ {
			if j == b-1 {
				g.i("VMOVUPS.Z %d(DX), K1, %s", 64*j, acc(gi, j))
			} else {
				g.i("VMOVUPS %d(DX), %s", 64*j, acc(gi, j))
			}
		}
		if gi < G-1 {
			g.i("ADDQ R13, DX")
		}
	}
	loop := fmt.Sprintf("g%db%dloop", G, b)
	g.l(loop)
	switch {
	case G == 1 && e == eF32:
		// One broadcast; the FMAs read the row from memory.
		g.i("VBROADCASTSS (DI), Z31")
		for j := 0; j < b; j++ {
			if j == b-1 {
				g.i("VFMADD231PS %d(SI), Z31, K1, %s", 64*j, acc(0, j))
			} else {
				g.i("VFMADD231PS %d(SI), Z31, %s", 64*j, acc(0, j))
			}
		}
	case G <= b:
		// G broadcasts live in Z24.., each converted row vector in Z30/Z31.
		for gi := 0; gi < G; gi++ {
			g.i("VBROADCASTSS %s, Z%d", accumAddrA(gi), 24+gi)
		}
		for j := 0; j < b; j++ {
			r := zr(30 + j%2)
			g.ldRow512(e, j, b, r)
			for gi := 0; gi < G; gi++ {
				g.i("VFMADD231PS %s, Z%d, %s", r, 24+gi, acc(gi, j))
			}
		}
	default:
		// b converted row vectors live in Z24.., each broadcast in Z30/Z31.
		for j := 0; j < b; j++ {
			g.ldRow512(e, j, b, zr(24+j))
		}
		for gi := 0; gi < G; gi++ {
			s := zr(30 + gi%2)
			g.i("VBROADCASTSS %s, %s", accumAddrA(gi), s)
			for j := 0; j < b; j++ {
				g.i("VFMADD231PS Z%d, %s, %s", 24+j, s, acc(gi, j))
			}
		}
	}
	g.i("ADDQ R8, SI")
	g.i("ADDQ $4, DI")
	g.i("DECQ CX")
	g.i("JNZ %s", loop)
	g.i("MOVQ BX, DX")
	for gi := 0; gi < G; gi++ {
		for j := 0; j < b; j++ {
			if j == b-1 {
				g.i("VMOVUPS %s, K1, %d(DX)", acc(gi, j), 64*j)
			} else {
				g.i("VMOVUPS %s, %d(DX)", acc(gi, j), 64*j)
			}
		}
		if gi < G-1 {
			g.i("ADDQ R13, DX")
		}
	}
	g.i("JMP done")
}

// accumRowsAVX2 emits accumRows<E>AVX2 with the contract of the AVX-512
// kernel, 8-lane vectors and accumCaps256, except that it needs the row
// block's last vector, which sits at column cols-8 (it may overlap the
// previous vector or, for cols < 8, the previous block: the caller
// guarantees column cols-8 of the block exists, i.e. dim ≥ 8). Its lanes
// below column 8·(⌈cols/8⌉-1) are computed from whatever y holds there and
// not stored (VMASKMOVPS), so no tail is ever read from a row.
func (g *gen) accumRowsAVX2(e elem) {
	name := "accumRows" + e.name + "AVX2"
	g.text(name, fmt.Sprintf("(y *float32, ldy int, a *float32, lda int, rows *%s, stride int, n int, ng int, cols int) bool", e.gtyp), 0, 73)
	g.accumPrologue(e)
	g.c("AX = (cols-8)·elemsize (last vector); DX = 16·g + ⌈cols/8⌉ selects the variant")
	g.i("MOVQ cols+64(FP), AX")
	g.i("LEAQ 7(AX), DX")
	g.i("SHRQ $3, DX")
	g.i("SUBQ $8, AX")
	g.i("SHLQ $%d, AX", map[int]int{2: 1, 4: 2}[e.size])
	g.i("MOVQ ng+56(FP), CX")
	g.i("SHLQ $4, CX")
	g.i("ADDQ CX, DX")
	g.i("MOVQ n+48(FP), CX")
	for G := 1; G <= 8; G++ {
		for b := 1; b <= accumCaps256[G]; b++ {
			g.i("CMPQ DX, $%d", 16*G+b)
			g.i("JEQ g%db%d", G, b)
		}
	}
	g.i("MOVB $0, ret+72(FP)")
	g.i("RET")
	for G := 1; G <= 8; G++ {
		for b := 1; b <= accumCaps256[G]; b++ {
			g.accumVariant256(e, G, b)
		}
	}
	g.l("done")
	g.i("VZEROUPPER")
	g.i("MOVB $1, ret+72(FP)")
	g.i("RET")
}

// ldRow256 loads row vector j (of b; the last one at byte offset AX) at SI
// into the f32 register y.
func (g *gen) ldRow256(e elem, j, b int, yreg string) {
	a := fmt.Sprintf("%d(SI)", 8*e.size*j)
	if j == b-1 {
		a = "(SI)(AX*1)"
	}
	g.ld256(e, a, yreg)
}

// accumVariant256: G heads × b vectors; accumulator (gi, j) is Y(gi·b+j),
// temporaries Y12..Y15.
func (g *gen) accumVariant256(e elem, G, b int) {
	if G*b > 12 || min(G, b) > 3 {
		panic(fmt.Sprintf("accum AVX2 variant G=%d b=%d does not fit the registers", G, b))
	}
	acc := func(gi, j int) string { return yr(gi*b + j) }
	yScale := 4 / e.size // y offset of the last vector is AX·4/elemsize
	yAddr := func(j int) string {
		if j == b-1 {
			return fmt.Sprintf("(DX)(AX*%d)", yScale)
		}
		return fmt.Sprintf("%d(DX)", 32*j)
	}
	g.l(fmt.Sprintf("g%db%d", G, b))
	g.i("MOVQ BX, DX")
	for gi := 0; gi < G; gi++ {
		for j := 0; j < b; j++ {
			g.i("VMOVUPS %s, %s", yAddr(j), acc(gi, j))
		}
		if gi < G-1 {
			g.i("ADDQ R13, DX")
		}
	}
	loop := fmt.Sprintf("g%db%dloop", G, b)
	g.l(loop)
	switch {
	case G == 1 && e == eF32:
		g.i("VBROADCASTSS (DI), Y15")
		for j := 0; j < b; j++ {
			a := fmt.Sprintf("%d(SI)", 32*j)
			if j == b-1 {
				a = "(SI)(AX*1)"
			}
			g.i("VFMADD231PS %s, Y15, %s", a, acc(0, j))
		}
	case G <= b:
		for gi := 0; gi < G; gi++ {
			g.i("VBROADCASTSS %s, Y%d", accumAddrA(gi), 12+gi)
		}
		for j := 0; j < b; j++ {
			g.ldRow256(e, j, b, "Y15")
			for gi := 0; gi < G; gi++ {
				g.i("VFMADD231PS Y15, Y%d, %s", 12+gi, acc(gi, j))
			}
		}
	default:
		for j := 0; j < b; j++ {
			g.ldRow256(e, j, b, yr(12+j))
		}
		for gi := 0; gi < G; gi++ {
			g.i("VBROADCASTSS %s, Y15", accumAddrA(gi))
			for j := 0; j < b; j++ {
				g.i("VFMADD231PS Y%d, Y15, %s", 12+j, acc(gi, j))
			}
		}
	}
	g.i("ADDQ R8, SI")
	g.i("ADDQ $4, DI")
	g.i("DECQ CX")
	g.i("JNZ %s", loop)
	g.c("Y15 = lanes >= 8-r of the last vector, r = ((cols-1)&7)+1")
	g.i("MOVQ cols+64(FP), CX")
	g.i("DECQ CX")
	g.i("ANDQ $7, CX")
	g.i("INCQ CX")
	g.i("LEAQ maskhi<>(SB), SI")
	g.i("VMOVDQU (SI)(CX*4), Y15")
	g.i("MOVQ BX, DX")
	for gi := 0; gi < G; gi++ {
		for j := 0; j < b; j++ {
			if j == b-1 {
				g.i("VMASKMOVPS %s, Y15, %s", acc(gi, j), yAddr(j))
			} else {
				g.i("VMOVUPS %s, %s", acc(gi, j), yAddr(j))
			}
		}
		if gi < G-1 {
			g.i("ADDQ R13, DX")
		}
	}
	g.i("JMP done")
}

// accumRowsSmallAVX2 is the scalar form for rows shorter than 8 (where the
// AVX2 kernel's overlapping last vector does not exist): for gi < g, c <
// cols, the same t-ascending chain of VFMADD231SS.
func (g *gen) accumRowsSmallAVX2(e elem) {
	name := "accumRowsSmall" + e.name + "AVX2"
	g.text(name, fmt.Sprintf("(y *float32, ldy int, a *float32, lda int, rows *%s, stride int, n int, ng int, cols int)", e.gtyp), 0, 72)
	g.accumPrologue(e)
	g.i("MOVQ n+48(FP), R10")
	g.i("SHLQ $2, R10")
	g.i("MOVQ ng+56(FP), R11")
	g.l("gloop")
	g.i("XORQ DX, DX")
	g.l("cloop")
	g.i("VMOVSS (BX)(DX*4), X0")
	g.i("MOVQ DI, AX")
	g.i("LEAQ (DI)(R10*1), R12")
	g.i("LEAQ (SI)(DX*%d), CX", e.size)
	g.l("tloop")
	switch e {
	case eF32:
		g.i("VMOVSS (CX), X1")
	case eF16:
		g.i("VPBROADCASTW (CX), X1")
		g.i("VCVTPH2PS X1, X1")
	case eBF16:
		g.i("VPBROADCASTW (CX), X1")
		g.i("VPSLLD $16, X1, X1")
	}
	g.i("VMOVSS (AX), X2")
	g.i("VFMADD231SS X1, X2, X0")
	g.i("ADDQ $4, AX")
	g.i("ADDQ R8, CX")
	g.i("CMPQ AX, R12")
	g.i("JB tloop")
	g.i("VMOVSS X0, (BX)(DX*4)")
	g.i("INCQ DX")
	g.i("CMPQ DX, cols+64(FP)")
	g.i("JB cloop")
	g.i("ADDQ R13, BX")
	g.i("ADDQ R9, DI")
	g.i("DECQ R11")
	g.i("JNZ gloop")
	g.i("VZEROUPPER")
	g.i("RET")
}

func (g *gen) data() {
	g.blank()
	g.b.WriteString("// Lane masks for AVX2 tails: 8 all-ones words then 8 zero words.\n")
	for i := 0; i < 16; i++ {
		v := "$0xffffffff"
		if i >= 8 {
			v = "$0"
		}
		fmt.Fprintf(&g.b, "DATA masktab<>+%d(SB)/4, %s\n", 4*i, v)
	}
	g.b.WriteString("GLOBL masktab<>(SB), RODATA|NOPTR, $64\n\n")
	g.b.WriteString("// Lane masks for the AccumRows AVX2 last vector: 8 zero words then 8 all-ones words.\n")
	for i := 0; i < 16; i++ {
		v := "$0"
		if i >= 8 {
			v = "$0xffffffff"
		}
		fmt.Fprintf(&g.b, "DATA maskhi<>+%d(SB)/4, %s\n", 4*i, v)
	}
	g.b.WriteString("GLOBL maskhi<>(SB), RODATA|NOPTR, $64\n\n")
	g.b.WriteString("DATA neginf<>+0(SB)/4, $0xff800000\nGLOBL neginf<>(SB), RODATA|NOPTR, $4\n\n")
	for i := 0; i < 8; i++ {
		fmt.Fprintf(&g.b, "DATA signbit<>+%d(SB)/4, $0x80000000\n", 4*i)
	}
	g.b.WriteString("GLOBL signbit<>(SB), RODATA|NOPTR, $32\n\n")
	for i := 0; i < 8; i++ {
		fmt.Fprintf(&g.b, "DATA expi127<>+%d(SB)/4, $127\n", 4*i)
	}
	g.b.WriteString("GLOBL expi127<>(SB), RODATA|NOPTR, $32\n\n")
	g.b.WriteString("// exp constants, each repeated 8 times (32 bytes apart).\n")
	for i, c := range expConsts {
		for k := 0; k < 8; k++ {
			fmt.Fprintf(&g.b, "DATA expc<>+%d(SB)/4, $%s // %s\n", 32*i+4*k, c.v, c.name)
		}
	}
	fmt.Fprintf(&g.b, "GLOBL expc<>(SB), RODATA|NOPTR, $%d\n", 32*len(expConsts))
	g.b.WriteString("\n// FWHT in-register stage signs: for h = 1, 2, 4, 8 (64 bytes apart), 16\n")
	g.b.WriteString("// lanes of +1 where lane&h == 0, -1 where it is set.\n")
	for k := 0; k < 4; k++ {
		for l := 0; l < 16; l++ {
			v := "$0x3f800000"
			if l&(1<<k) != 0 {
				v = "$0xbf800000"
			}
			fmt.Fprintf(&g.b, "DATA fwhtsign<>+%d(SB)/4, %s\n", 64*k+4*l, v)
		}
	}
	g.b.WriteString("GLOBL fwhtsign<>(SB), RODATA|NOPTR, $256\n")
}

const header = `// Code generated by gen/main.go; DO NOT EDIT.

//go:build amd64

#include "textflag.h"
`

func write(file string, g *gen) {
	out := header + g.b.String()
	out = strings.ReplaceAll(out, "\n\n\n", "\n\n")
	if err := os.WriteFile(filepath.Join(*outDir, file), []byte(out), 0o644); err != nil {
		panic(err)
	}
}

// outDir is where the generated files are written (-o; the tests that
// check the committed assembly write to a temporary directory).
var outDir = flag.String("o", ".", "directory to write the generated files into")

func main() {
	flag.Parse()
	var a gen
	for _, e := range elems {
		a.dot1AVX512(e)
		a.dot4AVX512(e)
		a.dot16PAVX512(e, false)
		a.dot16PAVX512(e, true)
		for T := 1; T <= 4; T++ {
			a.dot4xTPAVX512(e, T)
		}
		a.packAVX512(e)
		a.accumRowsAVX512(e)
	}
	a.gemmAVX512()
	a.elementwiseAVX512()
	a.fwhtKernel(&fwhtAVX512)
	a.peak()
	a.data()
	write("avx512_amd64.s", &a)

	var b gen
	for _, e := range elems {
		b.dot1AVX2(e)
		b.dot4AVX2(e)
		b.packAVX2(e)
		b.accumRowsAVX2(e)
		b.accumRowsSmallAVX2(e)
	}
	b.gemmAVX2()
	b.elementwiseAVX2()
	b.fwhtKernel(&fwhtAVX2)
	b.data()
	write("avx2_amd64.s", &b)
}
