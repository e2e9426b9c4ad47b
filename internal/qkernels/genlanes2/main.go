// Command genlanes2 writes lanes_avx2_amd64.s: the AVX2 matrix-vector
// kernels over row-lane packed weights (see lanes.go), one per weight type
// and token count 1–4, reading the same layout and prepared activations as
// the AVX-512 kernels of genlanes; and lanes_q5k_amd64.s, the AVX-512
// kernels of the Q5_K row-lane layout (lanes_q5k.go). Run by `go generate`
// in internal/qkernels.
//
// A 64-byte vector of the layout holds 16 rows' 4 bytes; a 256-bit
// register holds 8 rows'. Each group of 16 rows is run as two halves
// (rows 0–7 then 8–15, the low and the high 32 bytes of every vector),
// each a full pass over the group's blocks: the second pass reads the
// group (16·rowB bytes) from L2, where the first pass left it. The byte
// products are VPMADDUBSW (unsigned weight × signed activation, pairs
// summed into int16) and VPMADDWD (pairs of int16 into int32), kept
// exact: every int16 pair sum is bounded below 2^15 (see each kernel), so
// the integer block sums equal the AVX-512 kernels' and tensor.VecDot's,
// and the float steps are the same operations in the same order.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

type gen struct{ b bytes.Buffer }

func (g *gen) i(format string, a ...any) { fmt.Fprintf(&g.b, "\t"+format+"\n", a...) }
func (g *gen) label(l string)            { fmt.Fprintf(&g.b, "%s:\n", l) }

// Argument block (larg in lanes_amd64.go).
const (
	aW      = 0  // first group of 16 rows
	aNB     = 8  // blocks (or super-blocks) per row
	aGroups = 16 // groups of 16 rows
	aGStr   = 24 // bytes between groups
	aLast   = 32 // rows in the last group (1..16)
	aXC     = 40 // [4] prepared activations per token
	aY      = 72 // [4] outputs per token (advanced by 16 floats per group)
)

var tok = []string{"R8", "R9", "R10", "R11"}

// bcastB broadcasts the byte v to every byte of the register y.
func (g *gen) bcastB(y string, v int) {
	g.i("MOVL $%d, R12", v)
	g.i("VMOVD R12, X%s", y[1:])
	g.i("VPBROADCASTB X%s, %s", y[1:], y)
}

// bcastW broadcasts the 16-bit v to every word of y.
func (g *gen) bcastW(y string, v int) {
	g.i("MOVL $%d, R12", v)
	g.i("VMOVD R12, X%s", y[1:])
	g.i("VPBROADCASTW X%s, %s", y[1:], y)
}

// kernel is one kernel's code: setup emits constants (once), start the
// per-group set-up (after SI, CX and the token pointers are loaded), body
// one half's work on one block (h = 0, 1: rows 0–7, 8–15), adding its 8
// outputs per token into the frame (frameAcc), end the per-block pointer
// steps beyond SI (wstep bytes) and the tokens' (xstep bytes).
type kernel struct {
	name, comment string
	setup, start  func(g *gen)
	body          func(g *gen, h int)
	end           func(g *gen)
	wstep, xstep  int
}

// vpdpbusdVEX emits the AVX-VNNI VPDPBUSD acc, u, x (acc += the dword
// sums of the unsigned bytes of u times the signed bytes of x, all Y
// registers): VEX.256.66.0F38.W0 50 /r, as bytes (the Go assembler encodes
// only the AVX-512 form).
func (g *gen) vpdpbusdVEX(acc, u, x int) {
	b1 := 0x40 | 0x02 // ~X = 1, map 0F38
	if acc < 8 {
		b1 |= 0x80 // ~R
	}
	if x < 8 {
		b1 |= 0x20 // ~B
	}
	b2 := (^u&15)<<3 | 0x04 | 0x01 // W0, ~vvvv, L = 256, pp = 66
	g.i("BYTE $0xc4; BYTE $0x%02x; BYTE $0x%02x; BYTE $0x50; BYTE $0x%02x // VPDPBUSD Y%d, Y%d, Y%d (AVX-VNNI)",
		b1, b2, 0xc0|(acc&7)<<3|(x&7), acc, u, x)
}

// q8_0VNNI is the Q8_0 kernel for T tokens on AVX2 with AVX-VNNI: q8_0's
// frame with the AVX-512 kernel's arithmetic (VPDPBUSD of w+128 with the
// broadcast activations, exact int32 sums).
//
// Registers: Y4–Y7 integer sums, Y8 weights, Y9–Y12 broadcast
// activations, Y13 scratch; accumulators in the frame.
func q8_0VNNI(T int) kernel {
	name := fmt.Sprintf("lanesQ8_0x%dAVXVNNI", T)
	k := q8_0(T)
	k.name = name
	k.comment = fmt.Sprintf("%s: %d token(s) × 16 rows per pass over row-lane packed Q8_0 (AVX-VNNI).", name, T)
	k.setup = func(g *gen) {}
	k.body = func(g *gen, h int) {
		for t := 0; t < T; t++ {
			g.i("VPBROADCASTD 4(%s), Y%d", tok[t], 4+t)
		}
		for j := 0; j < 8; j++ {
			g.i("VMOVDQU %d(SI), Y8", 64*j+32*h)
			for t := 0; t < T; t++ {
				g.i("VPBROADCASTD %d(%s), Y%d", 8+4*j, tok[t], 9+t)
				g.vpdpbusdVEX(4+t, 8, 9+t)
			}
		}
		g.i("VCVTPH2PS %d(DI), Y8", 16*h)
		for t := 0; t < T; t++ {
			is := fmt.Sprintf("Y%d", 4+t)
			g.i("VCVTDQ2PS %s, %s", is, is)
			g.i("VBROADCASTSS (%s), Y9", tok[t])
			g.i("VMULPS Y9, Y8, Y9")
			g.i("VMULPS Y9, %s, %s", is, is)
			g.i("VADDPS %s, %s, %s", frameAcc(t, h), is, is)
			g.i("VMOVUPS %s, %s", is, frameAcc(t, h))
		}
	}
	return k
}

// frameAcc is token t's accumulators of half h in the frame.
func frameAcc(t, h int) string { return fmt.Sprintf("%d(SP)", 64*t+32*h) }

// emit writes kernel k for T tokens: per group of 16 rows, one pass over
// the blocks running both halves, then the stores (masked in the last
// group, R13 its rows).
func (g *gen) emit(k kernel, T int) {
	fmt.Fprintf(&g.b, "\n// %s\n// func %s(a *larg)\nTEXT ·%s(SB), NOSPLIT, $%d-8\n", k.comment, k.name, k.name, 64*T)
	g.i("MOVQ a+0(FP), R14")
	g.i("MOVQ %d(R14), BX", aW)
	g.i("MOVQ %d(R14), AX", aGroups)
	k.setup(g)
	loop := k.name + "_group"
	g.label(loop)
	g.i("MOVQ BX, SI")
	g.i("MOVQ %d(R14), CX", aNB)
	for t := 0; t < T; t++ {
		g.i("MOVQ %d(R14), %s", aXC+8*t, tok[t])
	}
	if k.start != nil {
		k.start(g)
	}
	g.i("VPXOR Y8, Y8, Y8")
	for t := 0; t < T; t++ {
		g.i("VMOVUPS Y8, %s", frameAcc(t, 0))
		g.i("VMOVUPS Y8, %s", frameAcc(t, 1))
	}
	g.label(k.name + "_block")
	k.body(g, 0)
	k.body(g, 1)
	for t := 0; t < T; t++ {
		g.i("ADDQ $%d, %s", k.xstep, tok[t])
	}
	g.i("ADDQ $%d, SI", k.wstep)
	if k.end != nil {
		k.end(g)
	}
	g.i("DECQ CX")
	g.i("JNZ %s_block", k.name)
	g.i("MOVQ $16, R13")
	g.i("CMPQ AX, $1")
	g.i("JNE %s_rows", k.name)
	g.i("MOVQ %d(R14), R13", aLast)
	g.label(k.name + "_rows")
	for h := 0; h < 2; h++ {
		pfx := fmt.Sprintf("%s_h%d", k.name, h)
		if h == 1 {
			g.i("CMPQ R13, $8")
			g.i("JLE %s_next", k.name)
		}
		// Rows of this half: n = R13 − 8h (≥ 8: all of them).
		g.i("MOVQ R13, DX")
		if h == 1 {
			g.i("SUBQ $8, DX")
		}
		g.i("CMPQ DX, $8")
		g.i("JGE %s_full", pfx)
		g.i("NEGQ DX")
		g.i("ADDQ $8, DX")
		g.i("LEAQ ·lanemask<>(SB), R12")
		g.i("VMOVDQU (R12)(DX*4), Y9")
		for t := 0; t < T; t++ {
			g.i("VMOVUPS %s, Y8", frameAcc(t, h))
			g.i("MOVQ %d(R14), R12", aY+8*t)
			g.i("VMASKMOVPS Y8, Y9, %d(R12)", 32*h)
		}
		g.i("JMP %s_done", pfx)
		g.label(pfx + "_full")
		for t := 0; t < T; t++ {
			g.i("VMOVUPS %s, Y8", frameAcc(t, h))
			g.i("MOVQ %d(R14), R12", aY+8*t)
			g.i("VMOVUPS Y8, %d(R12)", 32*h)
		}
		g.label(pfx + "_done")
	}
	g.label(k.name + "_next")
	g.nextGroup(T, loop)
}

// q8_0 is the Q8_0 kernel for T tokens. Weights u = w+128 (0..255) are
// split into u & 0x7f and u & 0x80: VPMADDUBSW of each with the int8
// activations sums pairs of products within int16 (|127·x + 127·x'| ≤
// 32512, |128·x + 128·x'| ≤ 32768 with −32768 the only extreme reached),
// VPMADDWD by ones adds the pairs into each row's int32 lane. Lane r then
// holds −128·Σx + Σ u·x = Σ w·x, and acc += float32(isum)·(dw·dx).
//
// Registers: Y4–Y7 integer sums, Y8–Y13 scratch, Y14 the words 1, Y15
// the bytes 0x7f; accumulators in the frame.
func q8_0(T int) kernel {
	name := fmt.Sprintf("lanesQ8_0x%dAVX2", T)
	is := []string{"Y4", "Y5", "Y6", "Y7"}
	return kernel{
		name:    name,
		comment: fmt.Sprintf("%s: %d token(s) × 16 rows per pass over row-lane packed Q8_0.", name, T),
		setup: func(g *gen) {
			g.bcastW("Y14", 1)
			g.bcastB("Y15", 0x7f)
		},
		start: func(g *gen) { // DI: the scales
			g.i("MOVQ CX, DI")
			g.i("SHLQ $9, DI")
			g.i("ADDQ BX, DI")
		},
		body: func(g *gen, h int) {
			for t := 0; t < T; t++ {
				g.i("VPBROADCASTD 4(%s), %s", tok[t], is[t])
			}
			for j := 0; j < 8; j++ {
				g.i("VMOVDQU %d(SI), Y8", 64*j+32*h)
				g.i("VPAND Y15, Y8, Y9")
				g.i("VPANDN Y8, Y15, Y10")
				for t := 0; t < T; t++ {
					g.i("VPBROADCASTD %d(%s), Y11", 8+4*j, tok[t])
					g.i("VPMADDUBSW Y11, Y9, Y12")
					g.i("VPMADDUBSW Y11, Y10, Y13")
					g.i("VPMADDWD Y14, Y12, Y12")
					g.i("VPMADDWD Y14, Y13, Y13")
					g.i("VPADDD Y12, %s, %s", is[t], is[t])
					g.i("VPADDD Y13, %s, %s", is[t], is[t])
				}
			}
			g.i("VCVTPH2PS %d(DI), Y8", 16*h)
			for t := 0; t < T; t++ {
				g.i("VCVTDQ2PS %s, %s", is[t], is[t])
				g.i("VBROADCASTSS (%s), Y9", tok[t])
				g.i("VMULPS Y9, Y8, Y9")
				g.i("VMULPS Y9, %s, %s", is[t], is[t])
				g.i("VADDPS %s, %s, %s", frameAcc(t, h), is[t], is[t])
				g.i("VMOVUPS %s, %s", is[t], frameAcc(t, h))
			}
		},
		end:   func(g *gen) { g.i("ADDQ $32, DI") },
		wstep: 512,
		xstep: 40,
	}
}

// q4_K is the Q4_K kernel for T tokens. The nibbles u (0..15) times int8
// activations: a VPMADDUBSW pair is within ±3840, so the 8 of a sub-block
// (32 values per row) add up in int16 (≤ 30720); VPMADDWD by the
// sub-block's scale (≤ 63) in both words of each lane gives
// sc·Σ q·x in int32. imin = Σ_k m_k·(bsum pair k) by VPMULLD. Then, as
// tensor.VecDot: acc = acc + (dw·dx)·float32(isum); acc = acc −
// (dminw·dx)·float32(imin).
//
// Registers: Y0–Y3 integer sums, Y4–Y7 the sub-block's int16 sums, Y8
// weights, Y9 nibbles, Y10–Y11 scratch, Y12 scratch, Y15 the bytes 0x0f;
// accumulators in the frame.
func q4_K(T int, vnni bool) kernel {
	name := fmt.Sprintf("lanesQ4_Kx%dAVX2", T)
	if vnni {
		name = fmt.Sprintf("lanesQ4_Kx%dAVXVNNI", T)
	}
	is := []string{"Y0", "Y1", "Y2", "Y3"}
	s16 := []string{"Y4", "Y5", "Y6", "Y7"}
	return kernel{
		name:    name,
		comment: fmt.Sprintf("%s: %d token(s) × 16 rows per pass over row-lane packed Q4_K.", name, T),
		setup:   func(g *gen) { g.bcastB("Y15", 0x0f) },
		body: func(g *gen, h int) {
			for t := 0; t < T; t++ {
				g.i("VPXOR %s, %s, %s", is[t], is[t], is[t])
			}
			for sb := 0; sb < 8; sb++ { // sub-block: pair p, low or high nibble
				p, hi := sb/2, sb%2
				for t := 0; t < T; t++ {
					g.i("VPXOR %s, %s, %s", s16[t], s16[t], s16[t])
				}
				for j := 0; j < 8; j++ {
					off := 64*(8*p+j) + 32*h
					if hi == 0 {
						g.i("VPAND %d(SI), Y15, Y9", off)
					} else {
						g.i("VMOVDQU %d(SI), Y8", off)
						g.i("VPSRLW $4, Y8, Y9")
						g.i("VPAND Y15, Y9, Y9")
					}
					for t := 0; t < T; t++ {
						g.i("VPBROADCASTD %d(%s), Y10", 40+64*p+32*hi+4*j, tok[t])
						if vnni { // int32 sums
							g.vpdpbusdVEX(4+t, 9, 10)
							continue
						}
						g.i("VPMADDUBSW Y10, Y9, Y10")
						g.i("VPADDW Y10, %s, %s", s16[t], s16[t])
					}
				}
				g.i("VPMOVZXBD %d(SI), Y10", 2048+16*sb+8*h)
				if vnni {
					for t := 0; t < T; t++ {
						g.i("VPMULLD Y10, %s, %s", s16[t], s16[t])
						g.i("VPADDD %s, %s, %s", s16[t], is[t], is[t])
					}
					continue
				}
				// The scale in both words of each row's lane.
				g.i("VPSLLD $16, Y10, Y11")
				g.i("VPOR Y11, Y10, Y10")
				for t := 0; t < T; t++ {
					g.i("VPMADDWD Y10, %s, %s", s16[t], s16[t])
					g.i("VPADDD %s, %s, %s", s16[t], is[t], is[t])
				}
			}
			g.i("VCVTPH2PS %d(SI), Y8", 2304+16*h)
			g.i("VCVTPH2PS %d(SI), Y9", 2336+16*h)
			for t := 0; t < T; t++ {
				// imin in Y11.
				g.i("VPMOVZXBD %d(SI), Y11", 2176+8*h)
				g.i("VPBROADCASTD 4(%s), Y10", tok[t])
				g.i("VPMULLD Y10, Y11, Y11")
				for k := 1; k < 8; k++ {
					g.i("VPMOVZXBD %d(SI), Y12", 2176+16*k+8*h)
					g.i("VPBROADCASTD %d(%s), Y10", 4+4*k, tok[t])
					g.i("VPMULLD Y10, Y12, Y12")
					g.i("VPADDD Y12, Y11, Y11")
				}
				g.i("VBROADCASTSS (%s), Y10", tok[t])
				g.i("VMULPS Y10, Y8, Y12")
				g.i("VCVTDQ2PS %s, %s", is[t], is[t])
				g.i("VMULPS %s, Y12, %s", is[t], is[t])
				g.i("VADDPS %s, %s, %s", frameAcc(t, h), is[t], is[t])
				g.i("VMULPS Y10, Y9, Y12")
				g.i("VCVTDQ2PS Y11, Y11")
				g.i("VMULPS Y11, Y12, Y11")
				g.i("VSUBPS Y11, %s, %s", is[t], is[t])
				g.i("VMOVUPS %s, %s", is[t], frameAcc(t, h))
			}
		},
		wstep: 2368,
		xstep: 296,
	}
}

// q6_K is the Q6_K kernel for T tokens. Values q (0..63) times int8
// activations: a VPMADDUBSW pair is within ±16128, two of them add in
// int16; per sub-block (16 values per row, 4 dwords) and token, S =
// −32·bsums[k] + Σ q·x (VPMADDWD by ones) in int32, isum += sc_k·S
// (VPMULLD). acc = acc + (dw·dx)·float32(isum), as tensor.VecDot.
//
// Registers: Y0–Y3 integer sums, Y4–Y7 the sub-block's 4 value vectors,
// Y8–Y10 scratch, Y11 the scales, Y12 the words 1, Y13 the bytes 0x0f,
// Y14 the bytes 0x30, Y15 scratch; accumulators in the frame.
func q6_K(T int, vnni bool) kernel {
	name := fmt.Sprintf("lanesQ6_Kx%dAVX2", T)
	if vnni {
		name = fmt.Sprintf("lanesQ6_Kx%dAVXVNNI", T)
	}
	is := []string{"Y0", "Y1", "Y2", "Y3"}
	v := []string{"Y4", "Y5", "Y6", "Y7"}
	return kernel{
		name:    name,
		comment: fmt.Sprintf("%s: %d token(s) × 16 rows per pass over row-lane packed Q6_K.", name, T),
		setup: func(g *gen) {
			g.bcastW("Y12", 1)
			g.bcastB("Y13", 0x0f)
			g.bcastB("Y14", 0x30)
		},
		body: func(g *gen, h int) {
			for t := 0; t < T; t++ {
				g.i("VPXOR %s, %s, %s", is[t], is[t], is[t])
			}
			for h2 := 0; h2 < 2; h2++ {
				for jh := 0; jh < 2; jh++ {
					for c := 0; c < 4; c++ {
						k := 8*h2 + 2*c + jh
						for jj := 0; jj < 4; jj++ {
							j := 4*jh + jj
							st := 192 * (8*h2 + j) // the step record: L1, L2, qh
							l1 := st + 32*h
							l2 := st + 64 + 32*h
							qh := st + 128 + 32*h
							d := v[jj]
							switch c {
							case 0:
								g.i("VMOVDQU %d(SI), Y15", qh)
								g.i("VPSLLW $4, Y15, Y15")
								g.i("VPAND Y14, Y15, Y15")
								g.i("VPAND %d(SI), Y13, %s", l1, d)
							case 1:
								g.i("VMOVDQU %d(SI), Y15", qh)
								g.i("VPSLLW $2, Y15, Y15")
								g.i("VPAND Y14, Y15, Y15")
								g.i("VPAND %d(SI), Y13, %s", l2, d)
							case 2:
								g.i("VPAND %d(SI), Y14, Y15", qh)
								g.i("VMOVDQU %d(SI), %s", l1, d)
								g.i("VPSRLW $4, %s, %s", d, d)
								g.i("VPAND Y13, %s, %s", d, d)
							case 3:
								g.i("VMOVDQU %d(SI), Y15", qh)
								g.i("VPSRLW $2, Y15, Y15")
								g.i("VPAND Y14, Y15, Y15")
								g.i("VMOVDQU %d(SI), %s", l2, d)
								g.i("VPSRLW $4, %s, %s", d, d)
								g.i("VPAND Y13, %s, %s", d, d)
							}
							g.i("VPOR Y15, %s, %s", d, d)
						}
						g.i("VPMOVSXBD %d(SI), Y11", 3072+16*k+8*h)
						for t := 0; t < T; t++ {
							x := func(jj int) int { return 72 + 128*h2 + 32*c + 4*(4*jh+jj) }
							g.i("VPBROADCASTD %d(%s), Y8", 4+4*k, tok[t])
							for pr := 0; pr < 2; pr++ {
								if vnni {
									g.i("VPBROADCASTD %d(%s), Y9", x(2*pr), tok[t])
									g.vpdpbusdVEX(8, 4+2*pr, 9)
									g.i("VPBROADCASTD %d(%s), Y10", x(2*pr+1), tok[t])
									g.vpdpbusdVEX(8, 5+2*pr, 10)
									continue
								}
								g.i("VPBROADCASTD %d(%s), Y9", x(2*pr), tok[t])
								g.i("VPMADDUBSW Y9, %s, Y9", v[2*pr])
								g.i("VPBROADCASTD %d(%s), Y10", x(2*pr+1), tok[t])
								g.i("VPMADDUBSW Y10, %s, Y10", v[2*pr+1])
								g.i("VPADDW Y10, Y9, Y9")
								g.i("VPMADDWD Y12, Y9, Y9")
								g.i("VPADDD Y9, Y8, Y8")
							}
							g.i("VPMULLD Y11, Y8, Y8")
							g.i("VPADDD Y8, %s, %s", is[t], is[t])
						}
					}
				}
			}
			g.i("VCVTPH2PS %d(SI), Y8", 3328+16*h)
			for t := 0; t < T; t++ {
				g.i("VBROADCASTSS (%s), Y9", tok[t])
				g.i("VMULPS Y9, Y8, Y9")
				g.i("VCVTDQ2PS %s, %s", is[t], is[t])
				g.i("VMULPS %s, Y9, %s", is[t], is[t])
				g.i("VADDPS %s, %s, %s", frameAcc(t, h), is[t], is[t])
				g.i("VMOVUPS %s, %s", is[t], frameAcc(t, h))
			}
		},
		wstep: 3360,
		xstep: 328,
	}
}

// shiftBit emits dst = src shifted so that bit b (of every byte) lands on
// bit 4 (word shifts: with b ≤ 7 no other byte's bit reaches bit 4), then
// ANDed with the bytes 0x10 in mask. evex: AVX-512 forms.
func (g *gen) shiftBit(src, dst, mask string, b int, evex bool) {
	and := "VPAND"
	if evex {
		and = "VPANDD"
	}
	switch s := 4 - b; {
	case s > 0:
		g.i("VPSLLW $%d, %s, %s", s, src, dst)
		g.i("%s %s, %s, %s", and, mask, dst, dst)
	case s < 0:
		g.i("VPSRLW $%d, %s, %s", -s, src, dst)
		g.i("%s %s, %s, %s", and, mask, dst, dst)
	default:
		g.i("%s %s, %s, %s", and, mask, src, dst)
	}
}

// q5_K is the Q5_K kernel for T tokens (layout: lanes_q5k.go): Q4_K's,
// each nibble with its fifth bit from the qh plane. The values u (0..31)
// times int8 activations: a VPMADDUBSW pair is within ±7936, so 4 add up
// in int16 (≤ 31744); a sub-block's 8 dwords are two such sums, each
// VPMADDWD by the scale into int32.
//
// Registers: Y0–Y3 integer sums, Y4–Y7 int16 sums, Y8 weights, Y9 values,
// Y10–Y12 scratch, Y13 the bytes 0x10, Y14 the scale words, Y15 the bytes
// 0x0f; accumulators in the frame.
func q5_K(T int, vnni bool) kernel {
	name := fmt.Sprintf("lanesQ5_Kx%dAVX2", T)
	if vnni {
		name = fmt.Sprintf("lanesQ5_Kx%dAVXVNNI", T)
	}
	is := []string{"Y0", "Y1", "Y2", "Y3"}
	s16 := []string{"Y4", "Y5", "Y6", "Y7"}
	return kernel{
		name:    name,
		comment: fmt.Sprintf("%s: %d token(s) × 16 rows per pass over row-lane packed Q5_K.", name, T),
		setup: func(g *gen) {
			g.bcastB("Y15", 0x0f)
			g.bcastB("Y13", 0x10)
		},
		body: func(g *gen, h int) {
			for t := 0; t < T; t++ {
				g.i("VPXOR %s, %s, %s", is[t], is[t], is[t])
			}
			for sb := 0; sb < 8; sb++ { // sub-block: pair p, low or high nibble
				p, hi := sb/2, sb%2
				g.i("VPMOVZXBD %d(SI), Y14", 2560+16*sb+8*h)
				if !vnni {
					g.i("VPSLLD $16, Y14, Y10")
					g.i("VPOR Y10, Y14, Y14")
				}
				flush := 4 // int16 sums: 4 dwords at most
				if vnni {
					flush = 8 // int32 sums
				}
				for j := 0; j < 8; j++ {
					if j%flush == 0 {
						for t := 0; t < T; t++ {
							g.i("VPXOR %s, %s, %s", s16[t], s16[t], s16[t])
						}
					}
					off := 64*(8*p+j) + 32*h
					if hi == 0 {
						g.i("VPAND %d(SI), Y15, Y9", off)
					} else {
						g.i("VMOVDQU %d(SI), Y8", off)
						g.i("VPSRLW $4, Y8, Y9")
						g.i("VPAND Y15, Y9, Y9")
					}
					g.i("VMOVDQU %d(SI), Y8", 2048+64*j+32*h)
					g.shiftBit("Y8", "Y8", "Y13", sb, false)
					g.i("VPOR Y8, Y9, Y9")
					for t := 0; t < T; t++ {
						g.i("VPBROADCASTD %d(%s), Y10", 40+64*p+32*hi+4*j, tok[t])
						if vnni {
							g.vpdpbusdVEX(4+t, 9, 10)
							continue
						}
						g.i("VPMADDUBSW Y10, Y9, Y10")
						g.i("VPADDW Y10, %s, %s", s16[t], s16[t])
					}
					if j%flush == flush-1 {
						for t := 0; t < T; t++ {
							if vnni {
								g.i("VPMULLD Y14, %s, %s", s16[t], s16[t])
							} else {
								g.i("VPMADDWD Y14, %s, %s", s16[t], s16[t])
							}
							g.i("VPADDD %s, %s, %s", s16[t], is[t], is[t])
						}
					}
				}
			}
			g.i("VCVTPH2PS %d(SI), Y8", 2816+16*h)
			g.i("VCVTPH2PS %d(SI), Y9", 2848+16*h)
			for t := 0; t < T; t++ {
				g.i("VPMOVZXBD %d(SI), Y11", 2688+8*h)
				g.i("VPBROADCASTD 4(%s), Y10", tok[t])
				g.i("VPMULLD Y10, Y11, Y11")
				for k := 1; k < 8; k++ {
					g.i("VPMOVZXBD %d(SI), Y12", 2688+16*k+8*h)
					g.i("VPBROADCASTD %d(%s), Y10", 4+4*k, tok[t])
					g.i("VPMULLD Y10, Y12, Y12")
					g.i("VPADDD Y12, Y11, Y11")
				}
				g.i("VBROADCASTSS (%s), Y10", tok[t])
				g.i("VMULPS Y10, Y8, Y12")
				g.i("VCVTDQ2PS %s, %s", is[t], is[t])
				g.i("VMULPS %s, Y12, %s", is[t], is[t])
				g.i("VADDPS %s, %s, %s", frameAcc(t, h), is[t], is[t])
				g.i("VMULPS Y10, Y9, Y12")
				g.i("VCVTDQ2PS Y11, Y11")
				g.i("VMULPS Y11, Y12, Y11")
				g.i("VSUBPS Y11, %s, %s", is[t], is[t])
				g.i("VMOVUPS %s, %s", is[t], frameAcc(t, h))
			}
		},
		wstep: 2880,
		xstep: 296,
	}
}

// q5_K512 writes the AVX-512 Q5_K kernel for T tokens: genlanes' Q4_K
// kernel (VPDPBUSD, 16 rows per vector) with each nibble's fifth bit from
// the qh plane; exact integer sums, the same float steps.
func (g *gen) q5_K512(T int) {
	name := fmt.Sprintf("lanesQ5_Kx%dAVX512", T)
	fmt.Fprintf(&g.b, "\n// %s: %d token(s) × 16 rows per pass over row-lane packed Q5_K.\n// func %s(a *larg)\nTEXT ·%s(SB), NOSPLIT, $0-8\n", name, T, name, name)
	g.i("MOVQ a+0(FP), R14")
	g.i("MOVQ %d(R14), BX", aW)
	g.i("MOVQ %d(R14), AX", aGroups)
	accs := []string{"Z0", "Z1", "Z2", "Z3"}
	isum := []string{"Z4", "Z5", "Z6", "Z7"}
	imin := []string{"Z16", "Z17", "Z18", "Z19"}
	slo := []string{"Z20", "Z21", "Z22", "Z23"}
	shi := []string{"Z24", "Z25", "Z26", "Z27"}
	g.i("MOVL $0x0f, R12")
	g.i("VPBROADCASTB R12, Z11")
	g.i("MOVL $0x10, R12")
	g.i("VPBROADCASTB R12, Z31")
	loop, blk := name+"_group", name+"_block"
	g.label(loop)
	g.i("MOVQ BX, SI")
	g.i("MOVQ %d(R14), CX", aNB)
	for t := 0; t < T; t++ {
		g.i("MOVQ %d(R14), %s", aXC+8*t, tok[t])
		g.i("VPXORD %s, %s, %s", accs[t], accs[t], accs[t])
	}
	g.label(blk)
	for t := 0; t < T; t++ {
		g.i("VPXORD %s, %s, %s", isum[t], isum[t], isum[t])
		g.i("VPXORD %s, %s, %s", imin[t], imin[t], imin[t])
	}
	for p := 0; p < 4; p++ {
		for t := 0; t < T; t++ {
			g.i("VPXORD %s, %s, %s", slo[t], slo[t], slo[t])
			g.i("VPXORD %s, %s, %s", shi[t], shi[t], shi[t])
		}
		for j := 0; j < 8; j++ {
			g.i("VMOVDQU64 %d(SI), Z8", 64*(8*p+j))
			g.i("VMOVDQU64 %d(SI), Z30", 2048+64*j)
			g.shiftBit("Z30", "Z9", "Z31", 2*p, true)
			g.i("VPTERNLOGD $0xf8, Z11, Z8, Z9")
			g.shiftBit("Z30", "Z10", "Z31", 2*p+1, true)
			g.i("VPSRLW $4, Z8, Z29")
			g.i("VPTERNLOGD $0xf8, Z11, Z29, Z10")
			for t := 0; t < T; t++ {
				g.i("VPDPBUSD.BCST %d(%s), Z9, %s", 40+64*p+4*j, tok[t], slo[t])
				g.i("VPDPBUSD.BCST %d(%s), Z10, %s", 40+64*p+32+4*j, tok[t], shi[t])
			}
		}
		g.i("VPMOVZXBD %d(SI), Z12", 2560+16*(2*p))
		g.i("VPMOVZXBD %d(SI), Z13", 2560+16*(2*p+1))
		for t := 0; t < T; t++ {
			g.i("VPMULLD Z12, %s, %s", slo[t], slo[t])
			g.i("VPADDD %s, %s, %s", slo[t], isum[t], isum[t])
			g.i("VPMULLD Z13, %s, %s", shi[t], shi[t])
			g.i("VPADDD %s, %s, %s", shi[t], isum[t], isum[t])
		}
	}
	for k := 0; k < 8; k++ {
		g.i("VPMOVZXBD %d(SI), Z12", 2688+16*k)
		for t := 0; t < T; t++ {
			g.i("VPMULLD.BCST %d(%s), Z12, Z28", 4+4*k, tok[t])
			g.i("VPADDD Z28, %s, %s", imin[t], imin[t])
		}
	}
	g.i("VCVTPH2PS 2816(SI), Z14")
	g.i("VCVTPH2PS 2848(SI), Z15")
	for t := 0; t < T; t++ {
		g.i("VMULPS.BCST (%s), Z14, Z28", tok[t])
		g.i("VCVTDQ2PS %s, Z29", isum[t])
		g.i("VMULPS Z29, Z28, Z29")
		g.i("VADDPS Z29, %s, %s", accs[t], accs[t])
		g.i("VMULPS.BCST (%s), Z15, Z28", tok[t])
		g.i("VCVTDQ2PS %s, Z29", imin[t])
		g.i("VMULPS Z29, Z28, Z29")
		g.i("VSUBPS Z29, %s, %s", accs[t], accs[t])
		g.i("ADDQ $296, %s", tok[t])
	}
	g.i("ADDQ $2880, SI")
	g.i("DECQ CX")
	g.i("JNZ %s", blk)
	// Store each token's 16 outputs (masked in the last group), next group.
	full := loop + "_full"
	g.i("MOVL $0xffff, R12")
	g.i("CMPQ AX, $1")
	g.i("JNE %s", full)
	g.i("MOVQ %d(R14), CX", aLast)
	g.i("MOVQ $-1, R12")
	g.i("BZHIQ CX, R12, R12")
	g.label(full)
	g.i("KMOVW R12, K1")
	for t := 0; t < T; t++ {
		g.i("MOVQ %d(R14), R12", aY+8*t)
		g.i("VMOVUPS %s, K1, (R12)", accs[t])
	}
	g.nextGroup(T, loop)
}

// nextGroup moves to the next group of 16 rows, or returns after the last.
// The output pointers in the argument block advance only when a group
// follows: one past the last group's outputs may be past the end of y's
// allocation, and the block is on the caller's stack, which the garbage
// collector scans (a pointer to a free object is fatal).
func (g *gen) nextGroup(T int, loop string) {
	g.i("ADDQ %d(R14), BX", aGStr)
	g.i("DECQ AX")
	g.i("JZ %s_ret", loop)
	for t := 0; t < T; t++ {
		g.i("ADDQ $64, %d(R14)", aY+8*t)
	}
	g.i("JMP %s", loop)
	g.label(loop + "_ret")
	g.i("VZEROUPPER")
	g.i("RET")
}

// outDir is where the generated files are written (-o; the tests that
// check the committed assembly write to a temporary directory).
var outDir = flag.String("o", ".", "directory to write the generated files into")

func main() {
	flag.Parse()
	g := &gen{}
	g.b.WriteString("// Code generated by genlanes2/main.go; DO NOT EDIT.\n\n//go:build amd64\n\n#include \"textflag.h\"\n")
	// lanemask: 8 dwords of all ones then 8 of zeros; the 8 dwords at
	// 4·(8−n) are n lanes of ones (the store mask for n rows).
	for i := 0; i < 8; i++ {
		v := "0xffffffffffffffff"
		if i >= 4 {
			v = "0x0000000000000000"
		}
		fmt.Fprintf(&g.b, "DATA ·lanemask<>+%d(SB)/8, $%s\n", 8*i, v)
	}
	g.b.WriteString("GLOBL ·lanemask<>(SB), RODATA|NOPTR, $64\n")
	for _, vnni := range []bool{false, true} {
		mks := []func(int, bool) kernel{q4_K, q5_K, q6_K}
		for T := 1; T <= 4; T++ {
			if vnni {
				g.emit(q8_0VNNI(T), T)
			} else {
				g.emit(q8_0(T), T)
			}
		}
		for _, mk := range mks {
			for T := 1; T <= 4; T++ {
				g.emit(mk(T, vnni), T)
			}
		}
	}
	write("lanes_avx2_amd64.s", g)
	// The AVX-512 Q5_K kernels (genlanes writes the other AVX-512 ones).
	g = &gen{}
	g.b.WriteString("// Code generated by genlanes2/main.go; DO NOT EDIT.\n\n//go:build amd64\n\n#include \"textflag.h\"\n")
	for T := 1; T <= 4; T++ {
		g.q5_K512(T)
	}
	write("lanes_q5k_amd64.s", g)
}

func write(name string, g *gen) {
	if err := os.WriteFile(filepath.Join(*outDir, name), g.b.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
