// Command genlanes writes lanes_amd64.s: the AVX-512 matrix-vector kernels
// over row-lane packed weights (see lanes.go), one per weight type and
// token count 1–4. Run by `go generate` in internal/qkernels.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

type gen struct{ b bytes.Buffer }

// prefetch is how far ahead (bytes) the K-quant kernels prefetch their
// weight stream, 0 for none (GENLANES_PREFETCH overrides, for measuring).
// 2048 bytes (32 lines, under one Q4_K super-block record ahead) helps the
// hardware prefetcher keep a single thread streaming from DRAM
// (BenchmarkMatVecStream; BENCHMARKS.md).
var prefetch = 2048

// q8Prefetch: the Q8_0 kernels prefetch too (GENLANES_Q8PREFETCH=0 turns
// it off, for measuring): +4-6% streaming one thread beyond L3, +10%
// decode on the Llama-3.2-1B Q8_0 shape (BENCHMARKS.md).
var q8Prefetch = os.Getenv("GENLANES_Q8PREFETCH") != "0"

// pf prefetches the line at off(SI) + prefetch.
func (g *gen) pf(off int) {
	if prefetch > 0 {
		g.i("PREFETCHT0 %d(SI)", off+prefetch)
	}
}

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

// prologue loads the argument block and starts the group loop: BX the
// group's base, AX groups left.
func (g *gen) prologue(name, comment string) {
	fmt.Fprintf(&g.b, "\n// %s\n// func %s(a *larg)\nTEXT ·%s(SB), NOSPLIT, $0-8\n", comment, name, name)
	g.i("MOVQ a+0(FP), R14")
	g.i("MOVQ %d(R14), BX", aW)
	g.i("MOVQ %d(R14), AX", aGroups)
}

// epilogue stores each token's 16 accumulators (masked in the last group),
// moves to the next group and returns.
func (g *gen) epilogue(T int, accs []string, loop string) {
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

// q8_0 writes the Q8_0 kernel for T tokens. Per group of 16 rows and block
// b: 512 bytes of quants (dword j of the 16 rows, j = 0..7, each byte
// w+128) at b·512, then the 16 binary16 scales at nb·512 + b·32. Per token
// and block the prepared activations are 40 bytes: dx (float32), corr =
// −128·Σx (int32), the 32 int8 quants. Lane r of the integer sum is
// corr + Σ_j VPDPBUSD(w+128, x) = Σ w·x exactly, then, as tensor.VecDot:
// acc += float32(isum)·(dw·dx).
func (g *gen) q8_0(T int) {
	name := fmt.Sprintf("lanesQ8_0x%dAVX512", T)
	g.prologue(name, fmt.Sprintf("%s: %d token(s) × 16 rows per pass over row-lane packed Q8_0.", name, T))
	accs := []string{"Z0", "Z1", "Z2", "Z3"}
	isA := []string{"Z16", "Z17", "Z18", "Z19"}
	isB := []string{"Z20", "Z21", "Z22", "Z23"}
	loop, blk := name+"_group", name+"_block"
	g.label(loop)
	g.i("MOVQ BX, SI")
	g.i("MOVQ %d(R14), CX", aNB)
	g.i("MOVQ CX, DI")
	g.i("SHLQ $9, DI")
	g.i("ADDQ BX, DI")
	for t := 0; t < T; t++ {
		g.i("MOVQ %d(R14), %s", aXC+8*t, tok[t])
		g.i("VPXORD %s, %s, %s", accs[t], accs[t], accs[t])
	}
	g.label(blk)
	for t := 0; t < T; t++ {
		g.i("VPBROADCASTD 4(%s), %s", tok[t], isA[t])
		g.i("VPXORD %s, %s, %s", isB[t], isB[t], isB[t])
	}
	for j := 0; j < 8; j++ {
		w := fmt.Sprintf("Z%d", 8+j%4)
		if q8Prefetch {
			g.pf(64 * j)
		}
		g.i("VMOVDQU64 %d(SI), %s", 64*j, w)
		for t := 0; t < T; t++ {
			acc := isA[t]
			if j%2 == 1 {
				acc = isB[t]
			}
			g.i("VPDPBUSD.BCST %d(%s), %s, %s", 8+4*j, tok[t], w, acc)
		}
	}
	g.i("VCVTPH2PS (DI), Z12")
	for t := 0; t < T; t++ {
		g.i("VPADDD %s, %s, %s", isB[t], isA[t], isA[t])
		g.i("VCVTDQ2PS %s, %s", isA[t], isA[t])
		g.i("VMULPS.BCST (%s), Z12, Z13", tok[t])
		g.i("VMULPS Z13, %s, %s", isA[t], isA[t])
		g.i("VADDPS %s, %s, %s", isA[t], accs[t], accs[t])
		g.i("ADDQ $40, %s", tok[t])
	}
	g.i("ADDQ $512, SI")
	g.i("ADDQ $32, DI")
	g.i("DECQ CX")
	g.i("JNZ %s", blk)
	g.epilogue(T, accs, loop)
}

// q4_K writes the Q4_K kernel for T tokens. Per group of 16 rows and
// super-block s, a record of 2368 bytes at s·2368: the quants (2048 bytes:
// for sub-block pair p = 0..3 and dword j = 0..7, the 16 rows' bytes
// qs[32p+4j..32p+4j+3] — low nibbles sub-block 2p, high nibbles 2p+1),
// the 8 scales (8×16 bytes, sub-block-major), the 8 mins (8×16 bytes), the
// 16 binary16 d, the 16 binary16 dmin. Per token and super-block the
// prepared activations are 296 bytes: dx (float32), the 8 sums
// bsums[2k]+bsums[2k+1] (int32), 4 bytes of padding, the 256 quants.
// As tensor.VecDot: isum = Σ sc_k·(Σ q·x), imin = Σ m_k·bsum pair k,
// acc = acc + (dw·dx)·float32(isum); acc = acc − (dminw·dx)·float32(imin).
//
// The integer steps take few instructions: the high nibbles come out of
// one GF2P8AFFINEQB (a per-byte shift right by 4), not a shift and a mask;
// each sub-block's Σ q·x is summed in two halves of 16 products, each
// within ±30720 (int16), so the multiplication by the 6-bit scale
// (zero-extended to a dword: the word pair (sc, 0)) is one VPDPWSSD into
// the super-block's sum instead of VPMULLD and VPADDD; likewise each bsum
// pair fits in int16 (±4096), so the mins' products are one VPDPWSSD with
// the pair broadcast. All of it is exact integer arithmetic: the sums are
// the same integers as before, hence bit-identical results.
func (g *gen) q4_K(T int) {
	name := fmt.Sprintf("lanesQ4_Kx%dAVX512", T)
	g.prologue(name, fmt.Sprintf("%s: %d token(s) × 16 rows per pass over row-lane packed Q4_K.", name, T))
	accs := []string{"Z0", "Z1", "Z2", "Z3"}
	isA := []string{"Z4", "Z5", "Z6", "Z7"}
	imin := []string{"Z16", "Z17", "Z18", "Z19"}
	slo := []string{"Z20", "Z21", "Z22", "Z23"}
	shi := []string{"Z24", "Z25", "Z26", "Z27"}
	isB := []string{"Z28", "Z29", "Z30", "Z31"}
	g.i("MOVL $0x0f, R12")
	g.i("VPBROADCASTB R12, Z11")
	g.i("MOVQ $0x%x, R12", gfShr4)
	g.i("VPBROADCASTQ R12, Z14")
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
		g.i("VPXORD %s, %s, %s", isA[t], isA[t], isA[t])
		g.i("VPXORD %s, %s, %s", isB[t], isB[t], isB[t])
		g.i("VPXORD %s, %s, %s", imin[t], imin[t], imin[t])
	}
	for p := 0; p < 4; p++ {
		g.i("VPMOVZXBD %d(SI), Z12", 2048+16*(2*p))
		g.i("VPMOVZXBD %d(SI), Z13", 2048+16*(2*p+1))
		for h := 0; h < 2; h++ {
			for t := 0; t < T; t++ {
				g.i("VPXORD %s, %s, %s", slo[t], slo[t], slo[t])
				g.i("VPXORD %s, %s, %s", shi[t], shi[t], shi[t])
			}
			for j := 4 * h; j < 4*h+4; j++ {
				g.i("VMOVDQU64 %d(SI), Z8", 64*(8*p+j))
				g.pf(64 * (8*p + j))
				g.i("VPANDD Z11, Z8, Z9")
				g.i("VGF2P8AFFINEQB $0, Z14, Z8, Z10")
				for t := 0; t < T; t++ {
					g.i("VPDPBUSD.BCST %d(%s), Z9, %s", 40+64*p+4*j, tok[t], slo[t])
					g.i("VPDPBUSD.BCST %d(%s), Z10, %s", 40+64*p+32+4*j, tok[t], shi[t])
				}
			}
			for t := 0; t < T; t++ {
				g.i("VPDPWSSD Z12, %s, %s", slo[t], isA[t])
				g.i("VPDPWSSD Z13, %s, %s", shi[t], isB[t])
			}
		}
	}
	for off := 2048; off < 2368; off += 64 {
		g.pf(off)
	}
	for k := 0; k < 8; k++ {
		g.i("VPMOVZXBD %d(SI), Z12", 2176+16*k)
		for t := 0; t < T; t++ {
			g.i("VPDPWSSD.BCST %d(%s), Z12, %s", 4+4*k, tok[t], imin[t])
		}
	}
	g.i("VCVTPH2PS 2304(SI), Z12")
	g.i("VCVTPH2PS 2336(SI), Z13")
	for t := 0; t < T; t++ {
		g.i("VPADDD %s, %s, %s", isB[t], isA[t], isA[t])
		g.i("VMULPS.BCST (%s), Z12, Z8", tok[t])
		g.i("VCVTDQ2PS %s, Z9", isA[t])
		g.i("VMULPS Z9, Z8, Z9")
		g.i("VADDPS Z9, %s, %s", accs[t], accs[t])
		g.i("VMULPS.BCST (%s), Z13, Z10", tok[t])
		g.i("VCVTDQ2PS %s, Z15", imin[t])
		g.i("VMULPS Z15, Z10, Z15")
		g.i("VSUBPS Z15, %s, %s", accs[t], accs[t])
		g.i("ADDQ $296, %s", tok[t])
	}
	g.i("ADDQ $2368, SI")
	g.i("DECQ CX")
	g.i("JNZ %s", blk)
	g.epilogue(T, accs, loop)
}

// GF2P8AFFINEQB matrices (one 8×8 bit matrix per qword, row of output bit
// i in byte 7−i): per-byte bit moves in one instruction.
const (
	gfShr4    = 0x1020408000000000 // b >> 4
	gfQh01To4 = 0x0000000001020000 // (b & 0x03) << 4
	gfQh23To4 = 0x0000000004080000 // (b & 0x0c) << 2
	gfQh67To4 = 0x0000000040800000 // (b & 0xc0) >> 2
)

// q6_K writes the Q6_K kernel for T tokens. Per group of 16 rows and
// super-block s, a record of 3360 bytes (16·210) at s·3360: for half h and
// dword j (l = 4j..4j+3) the step record at 192·(8h+j), so that the three
// vectors one step loads are adjacent and the weights one linear stream:
// the 16 rows' ql[64h+4j..] at +0 ("L1": low nibbles values 128h+l, high
// nibbles 128h+64+l), ql[64h+32+4j..] at +64 ("L2": values 128h+32+l and
// 128h+96+l), qh[32h+4j..] at +128 (2 high bits of each of the four); then
// the 16 int8 scales (3072 + 16k + r) and the 16 binary16 d (3328 + 2r).
// Per token and
// super-block the prepared activations are 328 bytes: dx (float32), the
// 16 values −32·bsums[k] (int32), 4 bytes of padding, the 256 quants.
// As tensor.VecDot: isum = Σ_k sc_k·Σ (q−32)·x; acc = acc + (dw·dx)·float32(isum).
// Each 6-bit value is built in two instructions (three for the fourth):
// one GF2P8AFFINEQB moves the 2 high bits of qh (or the ql high nibble)
// into place, one VPTERNLOGD masks and merges.
func (g *gen) q6_K(T int) {
	name := fmt.Sprintf("lanesQ6_Kx%dAVX512", T)
	g.prologue(name, fmt.Sprintf("%s: %d token(s) × 16 rows per pass over row-lane packed Q6_K.", name, T))
	accs := []string{"Z0", "Z1", "Z2", "Z3"}
	isum := []string{"Z4", "Z5", "Z6", "Z7"}
	S := func(c, t int) string { return fmt.Sprintf("Z%d", 8+4*c+t) }
	g.i("MOVL $0x0f, R12")
	g.i("VPBROADCASTB R12, Z29")
	g.i("MOVL $0x30, R12")
	g.i("VPBROADCASTB R12, Z30")
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
	}
	for h := 0; h < 2; h++ {
		for jh := 0; jh < 2; jh++ {
			for c := 0; c < 4; c++ {
				k := 8*h + 2*c + jh
				for t := 0; t < T; t++ {
					g.i("VPBROADCASTD %d(%s), %s", 4+4*k, tok[t], S(c, t))
				}
			}
			for j := 4 * jh; j < 4*jh+4; j++ {
				st := 192 * (8*h + j) // the step record: L1, L2, qh
				g.i("VMOVDQU64 %d(SI), Z24", st)
				g.i("VMOVDQU64 %d(SI), Z25", st+64)
				g.i("VMOVDQU64 %d(SI), Z26", st+128)
				g.pf(st)
				g.pf(st + 64)
				g.pf(st + 128)
				for c := 0; c < 4; c++ {
					// v_c in Z28: (lo nibble source & 0x0f) | (qh's 2 bits at bits 4-5),
					// the bit moves by GF2P8AFFINEQB (matrices in gfq6<>).
					switch c {
					case 0:
						g.i("VGF2P8AFFINEQB.BCST $0, gfq6<>+0(SB), Z26, Z28")
						g.i("VPTERNLOGD $0xf8, Z29, Z24, Z28")
					case 1:
						g.i("VGF2P8AFFINEQB.BCST $0, gfq6<>+8(SB), Z26, Z28")
						g.i("VPTERNLOGD $0xf8, Z29, Z25, Z28")
					case 2:
						g.i("VGF2P8AFFINEQB.BCST $0, gfq6<>+16(SB), Z24, Z28")
						g.i("VPTERNLOGD $0xf8, Z30, Z26, Z28")
					case 3:
						g.i("VGF2P8AFFINEQB.BCST $0, gfq6<>+24(SB), Z26, Z28")
						g.i("VPSRLW $4, Z25, Z27")
						g.i("VPTERNLOGD $0xf8, Z29, Z27, Z28")
					}
					for t := 0; t < T; t++ {
						g.i("VPDPBUSD.BCST %d(%s), Z28, %s", 72+128*h+32*c+4*j, tok[t], S(c, t))
					}
				}
			}
			for c := 0; c < 4; c++ {
				k := 8*h + 2*c + jh
				g.i("VPMOVSXBD %d(SI), Z31", 3072+16*k)
				for t := 0; t < T; t++ {
					g.i("VPMULLD Z31, %s, %s", S(c, t), S(c, t))
					g.i("VPADDD %s, %s, %s", S(c, t), isum[t], isum[t])
				}
			}
		}
	}
	for off := 3072; off < 3360; off += 64 {
		g.pf(off)
	}
	g.i("VCVTPH2PS 3328(SI), Z24")
	for t := 0; t < T; t++ {
		g.i("VMULPS.BCST (%s), Z24, Z25", tok[t])
		g.i("VCVTDQ2PS %s, Z26", isum[t])
		g.i("VMULPS Z26, Z25, Z26")
		g.i("VADDPS Z26, %s, %s", accs[t], accs[t])
		g.i("ADDQ $328, %s", tok[t])
	}
	g.i("ADDQ $3360, SI")
	g.i("DECQ CX")
	g.i("JNZ %s", blk)
	g.epilogue(T, accs, loop)
}

// outDir is where the generated files are written (-o; the tests that
// check the committed assembly write to a temporary directory).
var outDir = flag.String("o", ".", "directory to write the generated files into")

func main() {
	flag.Parse()
	if v := os.Getenv("GENLANES_PREFETCH"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		prefetch = n
	}
	g := &gen{}
	g.b.WriteString("// Code generated by genlanes/main.go; DO NOT EDIT.\n\n//go:build amd64\n\n#include \"textflag.h\"\n")
	for T := 1; T <= 4; T++ {
		g.q8_0(T)
	}
	for T := 1; T <= 4; T++ {
		g.q4_K(T)
	}
	g.b.WriteString("\n// GF2P8AFFINEQB matrices of the Q6_K kernels: qh bits 0-1, 2-3 to bits\n// 4-5; ql >> 4; qh bits 6-7 to bits 4-5.\n")
	for i, m := range []uint64{gfQh01To4, gfQh23To4, gfShr4, gfQh67To4} {
		fmt.Fprintf(&g.b, "DATA gfq6<>+%d(SB)/8, $0x%016x\n", 8*i, m)
	}
	g.b.WriteString("GLOBL gfq6<>(SB), RODATA|NOPTR, $32\n")
	for T := 1; T <= 4; T++ {
		g.q6_K(T)
	}
	if err := os.WriteFile(filepath.Join(*outDir, "lanes_amd64.s"), g.b.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
