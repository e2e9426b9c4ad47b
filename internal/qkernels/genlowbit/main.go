// Command genlowbit writes lowbit_amd64.s: the fused AVX2 matrix-vector
// kernels of the low-bit super-block types (Q3_K, Q2_K, IQ4_XS and the IQ
// types; the contract is in ../lowbit_amd64.go). Run it with `go generate
// ./internal/qkernels/` (the go:generate directive is in ../generate.go)
// after editing; the generated file is committed, and main_test.go checks
// that it is what this program writes.
//
// Every kernel takes a *lbArg (offsets below; TestLowbitLayout checks them)
// and sets y[r] = tensor.VecDot(t, 256·nsb, row r, x) for r < rows,
// decoding the packed weights in registers (VEX encodings only): each
// super-block's integer sums exactly in int32, then tensor.VecDot's float
// steps one by one in its order.
package main

import (
	"bytes"
	"fmt"
	"os"
)

// Argument block (lbArg in ../lowbit_amd64.go).
const (
	aW      = 0  // first weight row
	aStride = 8  // bytes between weight rows
	aRows   = 16 // rows
	aX      = 24 // the Q8_K activation row
	aNSB    = 32 // super-blocks per row
	aY      = 40 // rows float32 outputs
	aC      = 48 // IQ types: the prepared activations (lbPrepIQ)
	aGrid   = 56 // IQ types: the grid table
	aSigns  = 64 // ksigns_iq2xs
)

// Bytes per Q8_K super-block of the activations (d, 256 quants, 16 bsums)
// and of the IQ types' prepared activations.
const (
	q8KBytes   = 292
	prepBytes  = 256
	q8KBsumOff = 260
)

type gen struct{ b bytes.Buffer }

func (g *gen) i(format string, a ...any) { fmt.Fprintf(&g.b, "\t"+format+"\n", a...) }
func (g *gen) c(comment string)          { fmt.Fprintf(&g.b, "\t// %s\n", comment) }
func (g *gen) label(l string)            { fmt.Fprintf(&g.b, "\n%s:\n", l) }
func (g *gen) text(name, comment string) {
	fmt.Fprintf(&g.b, "\n// %s\n// func %s(a *lbArg)\nTEXT ·%s(SB), NOSPLIT, $0-8\n", comment, name, name)
	g.i("MOVQ a+0(FP), DI")
	g.i("MOVQ %d(DI), SI", aW)
	g.i("MOVQ %d(DI), R8", aRows)
	g.i("MOVQ %d(DI), R9", aY)
}

// ---------------------------------------------------------------- tables

// table is a read-only data symbol built from named sections, so that the
// kernels refer to its entries by name.
type table struct {
	name  string
	doc   string
	width int // bytes per DATA entry
	size  int
	lines []string
	at    map[string]int
}

var tables []*table

func newTable(name string, width int, doc string) *table {
	t := &table{name: name, doc: doc, width: width, at: map[string]int{}}
	tables = append(tables, t)
	return t
}

// add appends the entries vals as section key (comment on its first entry).
func (t *table) add(key, comment string, vals ...uint64) {
	t.at[key] = t.size
	for n, v := range vals {
		var s string
		switch {
		case t.width == 8:
			s = fmt.Sprintf("$0x%016x", v)
		case t.width == 1:
			s = fmt.Sprintf("$0x%02x", v)
		case v >= 0x300:
			s = fmt.Sprintf("$0x%x", v)
		default:
			s = fmt.Sprintf("$%d", v)
		}
		l := fmt.Sprintf("DATA %s<>+%d(SB)/%d, %s", t.name, t.size, t.width, s)
		if n == 0 && comment != "" {
			l += " // " + comment
		}
		t.lines = append(t.lines, l)
		t.size += t.width
	}
}

// ref is the operand of section key's entry n.
func (t *table) ref(key string, n int) string {
	o, ok := t.at[key]
	if !ok {
		panic("no table entry " + key)
	}
	return fmt.Sprintf("%s<>+%d(SB)", t.name, o+n*t.width)
}

func (g *gen) emitTables() {
	for _, t := range tables {
		fmt.Fprintf(&g.b, "\n// %s\n", t.doc)
		for _, l := range t.lines {
			fmt.Fprintf(&g.b, "%s\n", l)
		}
		fmt.Fprintf(&g.b, "GLOBL %s<>(SB), RODATA|NOPTR, $%d\n", t.name, t.size)
	}
}

func rep8(b byte) uint64 { return 0x0101010101010101 * uint64(b) }

var (
	shuf = newTable("lbShuf", 8, "The VPSHUFB controls that spread two int16 scales over the int16 lanes of\n"+
		"// a chunk of 32 products: at 32·j, lanes 0-7 (low 128 bits) get scale 2j,\n"+
		"// lanes 8-15 scale 2j+1, from a vector holding eight int16 scales in both\n"+
		"// 128-bit lanes.")
	kb    = newTable("lbK", 1, "Byte constants, broadcast from here.")
	iq4Hi = newTable("lbIQ4Hi", 8, "IQ4_XS: the sixteen kvalues_iq4nl levels q as (q>>1)+64 (unsigned, at\n"+
		"// most 120) and as q&1, each in both 128-bit lanes.")
	iq4Lo  = newTable("lbIQ4Lo", 8, "q&1 of the kvalues_iq4nl levels.")
	spread = newTable("lbSpread", 8, "VPSHUFB control copying byte l of a dword to bytes 8l..8l+7.")
	bits   = newTable("lbBits", 8, "Bit j in byte 8l+j.")
	kd     = newTable("lbD", 4, "Dword constants: the shifts and masks of the index high bits.")
)

// kvaluesIQ4NL is ggml's kvalues_iq4nl.
var kvaluesIQ4NL = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

func init() {
	for m := uint64(0); m < 8; m++ {
		w := (2*m+1)<<8 | 2*m
		v := w | w<<16 | w<<32 | w<<48
		shuf.add(fmt.Sprint(m), "", v, v)
	}
	kb.add("3", "", 0x03)
	kb.add("4", "", 0x04)
	kb.add("1", "", 0x01)
	kb.add("32", "", 0x20)
	kb.add("0f", "", 0x0f)
	kb.add("64", "", 0x40)
	var hi, lo [2]uint64
	for n, q := range kvaluesIQ4NL {
		hi[n/8] |= uint64(uint8(q>>1+64)) << (8 * (n % 8))
		lo[n/8] |= uint64(uint8(q&1)) << (8 * (n % 8))
	}
	iq4Hi.add("", "q: -127 -104 -83 -65 -49 -35 -22 -10 1 13 25 38 53 69 89 113", hi[0], hi[1], hi[0], hi[1])
	iq4Lo.add("", "", lo[0], lo[1], lo[0], lo[1])
	spread.add("", "", rep8(0), rep8(1), rep8(2), rep8(3))
	bits.add("", "", 0x8040201008040201, 0x8040201008040201, 0x8040201008040201, 0x8040201008040201)
	kd.add("iq3sShift", "IQ3_S: qh bit g to bit 8, g = 0..7", 8, 7, 6, 5, 4, 3, 2, 1)
	kd.add("iq2sShift", "IQ2_S: qh bits 2l,2l+1 to bits 8,9", 8, 6, 4, 2)
	kd.add("iq1sShift", "IQ1_S: 3-bit fields", 0, 3, 6, 9)
	kd.add("iq1mShift", "IQ1_M: 4-bit fields", 0, 4, 8, 12)
	kd.add("0x300", "", 0x300, 0x300, 0x300, 0x300)
	kd.add("7", "", 7, 7, 7, 7)
	kd.add("8", "", 8, 8, 8, 8)
	kd.add("256", "", 256)
	kd.add("511", "", 511)
	kd.add("0.125", "0.125", 0x3e000000)
	kd.add("0.5", "0.5", 0x3f000000)
}

// ---------------------------------------------------------------- shared steps

// hsumd sums the eight int32 lanes of y (x its low half) into the 32-bit
// register r (clobbers x, xt).
func (g *gen) hsumd(y, x, xt, r string) {
	g.i("VEXTRACTI128 $1, %s, %s", y, xt)
	g.i("VPADDD %s, %s, %s", xt, x, x)
	g.i("VPSHUFD $0x4e, %s, %s", x, xt)
	g.i("VPADDD %s, %s, %s", xt, x, x)
	g.i("VPSHUFD $0xb1, %s, %s", x, xt)
	g.i("VPADDD %s, %s, %s", xt, x, x)
	g.i("VMOVD %s, %s", x, r)
}

// scaledAdd: acc += (D·dx)·float32(isum), D's binary16 in DX, isum in the
// 32-bit register isum, dx at (R11).
func (g *gen) scaledAdd(isum, acc string) {
	g.i("VMOVD DX, X9")
	g.i("VCVTPH2PS X9, X9")
	g.i("VMULSS (R11), X9, X9")
	g.i("VCVTSI2SSL %s, X10, X10", isum)
	g.i("VMULSS X10, X9, X9")
	g.i("VADDSS X9, %s, %s", acc, acc)
}

// kernel writes the row and super-block loops around sb (one super-block
// of one row: R10 the block, R11 the Q8_K block, and for the IQ types R13
// the prepared activations): acc the row's float accumulator, block the
// bytes per weight super-block, tail what is done with acc before it is
// stored.
func (g *gen) kernel(lbl, acc string, block int, iq bool, setup, rowInit, sb, tail func()) {
	setup()
	g.label(lbl + "row")
	g.i("TESTQ R8, R8")
	g.i("JEQ %sdone", lbl)
	g.i("MOVQ SI, R10")
	g.i("MOVQ %d(DI), R11", aX)
	if iq {
		g.i("MOVQ %d(DI), R13", aC)
	}
	g.i("MOVQ %d(DI), R12", aNSB)
	g.i("VXORPS %s, %s, %s", acc, acc, acc)
	if rowInit != nil {
		rowInit()
	}
	g.label(lbl + "sb")
	sb()
	fmt.Fprintf(&g.b, "\n")
	g.i("ADDQ $%d, R10", block)
	g.i("ADDQ $%d, R11", q8KBytes)
	if iq {
		g.i("ADDQ $%d, R13", prepBytes)
	}
	g.i("DECQ R12")
	g.i("JNZ %ssb", lbl)
	if tail != nil {
		tail()
	}
	g.i("VMOVSS %s, (R9)", acc)
	g.i("ADDQ $4, R9")
	g.i("ADDQ %d(DI), SI", aStride)
	g.i("DECQ R8")
	g.i("JMP %srow", lbl)
	g.label(lbl + "done")
	g.i("VZEROUPPER")
	g.i("RET")
}

// ---------------------------------------------------------------- Q3_K, Q2_K

// The sixteen 6-bit scales of a Q3_K block (ggml's kmask trick), minus
// 32, as int16 in Y1 (scales 0-7, both 128-bit lanes) and Y2 (8-15).
func (g *gen) q3Scales() {
	g.c("The sixteen 6-bit scales (ggml's kmask trick), minus 32.")
	g.i("MOVL 96(R10), AX")
	g.i("MOVL 100(R10), BX")
	g.i("MOVL 104(R10), CX")
	for k := 0; k < 4; k++ {
		src := []string{"AX", "BX"}[k%2]
		g.i("MOVL %s, DX", src)
		if k >= 2 {
			g.i("SHRL $4, DX")
		}
		g.i("ANDL $0x0f0f0f0f, DX")
		g.i("MOVL CX, R13")
		if k > 0 {
			g.i("SHRL $%d, R13", 2*k)
		}
		g.i("ANDL $0x03030303, R13")
		g.i("SHLL $4, R13")
		g.i("ORL R13, DX")
		if k == 0 {
			g.i("VMOVD DX, X0")
		} else {
			g.i("VPINSRD $%d, DX, X0, X0", k)
		}
	}
	g.i("VPBROADCASTB %s, X1", kb.ref("32", 0))
	g.i("VPSUBB X1, X0, X0")
	g.i("VPMOVSXBW X0, Y0")
	g.i("VPERM2I128 $0x00, Y0, Y0, Y1")
	g.i("VPERM2I128 $0x11, Y0, Y0, Y2")
}

// q3Chunk adds chunk j (32 elements) of half h to Y5: Y6 holds
// qs[32h:32h+32], Y3 the hmask, Y4 the bit (1<<j in each byte), Y1 or Y2
// the scales. Σ scale·q·x = Σ scale·(Σ low·x − Σ 4·(1−hbit)·x)
// (VPMADDUBSW cannot saturate: u ≤ 4).
func (g *gen) q3Chunk(h, j int) {
	g.i("VPSRLW $%d, Y6, Y7", 2*j)
	g.i("VPAND Y15, Y7, Y7")
	g.i("VPAND Y4, Y3, Y8")
	g.i("VPCMPEQB Y12, Y8, Y8")
	g.i("VPAND Y11, Y8, Y8")
	g.i("VPADDB Y4, Y4, Y4")
	g.i("VMOVDQU %d(R11), Y13", 4+32*(4*h+j))
	g.i("VPMADDUBSW Y13, Y7, Y9")
	g.i("VPMADDUBSW Y13, Y8, Y10")
	g.i("VPSUBW Y10, Y9, Y9")
	g.i("VPSHUFB %s, Y%d, Y10", shuf.ref(fmt.Sprint(2*j), 0), 1+h)
	g.i("VPMADDWD Y10, Y9, Y9")
	g.i("VPADDD Y9, Y5, Y5")
}

// Q3_K (110 bytes): hmask[32], qs[64], scales[12], d.
func (g *gen) q3K() {
	name := "lbQ3_KAVX2"
	g.text(name, name+": Q3_K, Σ q·x = Σ low2·x − Σ 4·(1−hbit)·x, the scales by VPSHUFB.")
	g.kernel("q3", "X14", 110, false, func() {
		g.i("VPBROADCASTB %s, Y15", kb.ref("3", 0))
		g.i("VPBROADCASTB %s, Y11", kb.ref("4", 0))
		g.i("VPXOR Y12, Y12, Y12")
	}, nil, func() {
		g.q3Scales()
		g.i("VMOVDQU 0(R10), Y3")
		g.i("VPBROADCASTB %s, Y4", kb.ref("1", 0))
		g.i("VPXOR Y5, Y5, Y5")
		for h := 0; h < 2; h++ {
			g.i("VMOVDQU %d(R10), Y6", 32+32*h)
			for j := 0; j < 4; j++ {
				g.q3Chunk(h, j)
			}
		}
		g.hsumd("Y5", "X5", "X9", "AX")
		g.c("acc += (D·dx)·float32(isum)")
		g.i("MOVWLZX 108(R10), DX")
		g.scaledAdd("AX", "X14")
	}, nil)
}

// q2Chunk: as q3Chunk without the high bit (q = low, unsigned).
func (g *gen) q2Chunk(h, j int) {
	g.i("VPSRLW $%d, Y6, Y7", 2*j)
	g.i("VPAND Y15, Y7, Y7")
	g.i("VPMADDUBSW %d(R11), Y7, Y9", 4+32*(4*h+j))
	g.i("VPSHUFB %s, Y%d, Y10", shuf.ref(fmt.Sprint(2*j), 0), 1+h)
	g.i("VPMADDWD Y10, Y9, Y9")
	g.i("VPADDD Y9, Y5, Y5")
}

// Q2_K (84 bytes): scales[16] (scale | min<<4), qs[64], d, dmin.
func (g *gen) q2K() {
	name := "lbQ2_KAVX2"
	g.text(name, name+": Q2_K, Σ q·x with q the 2-bit level; imin from the Q8_K bsums (as tensor.VecDot reads them).")
	g.kernel("q2", "X14", 84, false, func() {
		g.i("VPBROADCASTB %s, Y15", kb.ref("3", 0))
		g.i("VPBROADCASTB %s, X11", kb.ref("0f", 0))
	}, func() {
		g.i("VXORPS X13, X13, X13 // accm")
	}, func() {
		g.i("VMOVDQU 0(R10), X0")
		g.i("VPAND X11, X0, X3 // scales")
		g.i("VPSRLW $4, X0, X0")
		g.i("VPAND X11, X0, X0 // mins")
		g.i("VPMOVZXBW X0, Y0")
		g.i("VPMADDWD %d(R11), Y0, Y0", q8KBsumOff)
		g.hsumd("Y0", "X0", "X9", "BX") // imin
		g.i("VPMOVZXBW X3, Y3")
		g.i("VPERM2I128 $0x00, Y3, Y3, Y1")
		g.i("VPERM2I128 $0x11, Y3, Y3, Y2")
		g.i("VPXOR Y5, Y5, Y5")
		for h := 0; h < 2; h++ {
			g.i("VMOVDQU %d(R10), Y6", 16+32*h)
			for j := 0; j < 4; j++ {
				g.q2Chunk(h, j)
			}
		}
		g.hsumd("Y5", "X5", "X9", "AX")
		g.c("acc += (D·dx)·float32(isum); accm += (DMin·dx)·float32(imin)")
		g.i("MOVWLZX 80(R10), DX")
		g.scaledAdd("AX", "X14")
		g.i("MOVWLZX 82(R10), DX")
		g.scaledAdd("BX", "X13")
	}, func() {
		g.i("VSUBSS X13, X14, X14")
	})
}

// ---------------------------------------------------------------- IQ4_XS

// iq4Sub adds sub-block ib (32 elements) of an IQ4_XS block: its scale
// ls−32 broadcast in Y0 (from bits 2·ib of scales_h in CX and the nibble
// of scales_l), Σ ls·Σ((q>>1)+64)·x to Y5, Σ ls·Σx to Y4 and
// Σ ls·Σ(q&1)·x to Y3.
func (g *gen) iq4Sub(ib int) {
	g.i("MOVL CX, DX")
	g.i("SHRL $%d, DX", 2*ib)
	g.i("ANDL $3, DX")
	g.i("SHLL $4, DX")
	g.i("MOVBLZX %d(R10), AX", 4+ib/2)
	g.i("SHRL $%d, AX", 4*(ib%2))
	g.i("ANDL $15, AX")
	g.i("ORL AX, DX")
	g.i("SUBL $32, DX")
	g.i("VMOVD DX, X0")
	g.i("VPBROADCASTW X0, Y0")
	g.i("VMOVDQU %d(R10), X6", 8+16*ib)
	g.i("VPSRLW $4, X6, X7")
	g.i("VINSERTI128 $1, X7, Y6, Y6")
	g.i("VPAND Y15, Y6, Y6")
	g.i("VMOVDQU %d(R11), Y13", 4+32*ib)
	g.i("VPSHUFB Y6, Y12, Y7")
	g.i("VPSHUFB Y6, Y11, Y8")
	g.i("VPMADDUBSW Y13, Y7, Y7")
	g.i("VPMADDUBSW Y13, Y8, Y8")
	g.i("VPMADDUBSW Y13, Y1, Y9")
	g.i("VPMADDWD Y0, Y7, Y7")
	g.i("VPMADDWD Y0, Y8, Y8")
	g.i("VPMADDWD Y0, Y9, Y9")
	g.i("VPADDD Y7, Y5, Y5")
	g.i("VPADDD Y8, Y3, Y3")
	g.i("VPADDD Y9, Y4, Y4")
}

// IQ4_XS (136 bytes): d, scales_h, scales_l[4], qs[128].
func (g *gen) iq4XS() {
	name := "lbIQ4_XSAVX2"
	g.text(name, name+": IQ4_XS, the levels by VPSHUFB from two tables, (q>>1)+64 and q&1, so hi = 2·(Σ ls·Σ u·x − 64·Σ ls·Σx) and lo = Σ ls·Σ(q&1)·x.")
	g.kernel("x4", "X14", 136, false, func() {
		g.i("VPBROADCASTB %s, Y15", kb.ref("0f", 0))
		g.i("VPBROADCASTB %s, Y1", kb.ref("1", 0))
		g.i("VMOVDQU %s, Y12", iq4Hi.ref("", 0))
		g.i("VMOVDQU %s, Y11", iq4Lo.ref("", 0))
	}, nil, func() {
		g.i("MOVWLZX 2(R10), CX // scales_h")
		g.i("VPXOR Y5, Y5, Y5")
		g.i("VPXOR Y4, Y4, Y4")
		g.i("VPXOR Y3, Y3, Y3")
		for ib := 0; ib < 8; ib++ {
			g.iq4Sub(ib)
		}
		g.hsumd("Y5", "X5", "X9", "AX")
		g.hsumd("Y4", "X4", "X9", "BX")
		g.hsumd("Y3", "X3", "X9", "CX")
		g.c("hi = 2·(Σ ls·Σ u·x − 64·Σ ls·Σx), lo = Σ ls·Σ(q&1)·x")
		g.i("SHLL $6, BX")
		g.i("SUBL BX, AX")
		g.i("SHLL $1, AX")
		g.c("acc += (D·dx)·float32(hi); acc += (D·dx)·float32(lo)")
		g.i("MOVWLZX 0(R10), DX")
		g.i("VMOVD DX, X9")
		g.i("VCVTPH2PS X9, X9")
		g.i("VMULSS (R11), X9, X9")
		for _, r := range []string{"AX", "CX"} {
			g.i("VCVTSI2SSL %s, X10, X10", r)
			g.i("VMULSS X10, X9, X10")
			g.i("VADDSS X10, X14, X14")
		}
	}, nil)
}

// ---------------------------------------------------------------- IQ types
//
// Each 32-element chunk: the unsigned grid magnitudes g of its groups by
// scalar loads from the grid table (R15; IQ3_XXS's halved, IQ1's as
// 8g+64), the signs applied as u = ±g + 64 (every |q| ≤ 63, so u ≤ 127
// and VPMADDUBSW cannot saturate), Y5 += scale·Σ u·x and Y4 += scale·Σx
// (from the prepared activations c: per chunk the sums of its two halves
// in int16 lanes 0 and 8, lbPrepIQ), so that isum = ΣY5 − 64·ΣY4 exactly.
// Registers: R10 block, R11 x block, R13 c block, R14 ksigns, R15 grid,
// X11 the row's float accumulator, Y12 64s, Y13 the sign bits, Y14 the
// sign-byte spread, Y15 ones.

// gatherQ: Y6 = the four uint64 entries of the table R15 indexed by the
// dwords of X9, by scalar loads (faster than VPGATHERDQ on the CPUs
// measured; clobbers AX, BX, X7).
func (g *gen) gatherQ() {
	g.i("VMOVD X9, AX")
	g.i("VPEXTRD $1, X9, BX")
	g.i("VMOVQ (R15)(AX*8), X6")
	g.i("VPINSRQ $1, (R15)(BX*8), X6, X6")
	g.i("VPEXTRD $2, X9, AX")
	g.i("VPEXTRD $3, X9, BX")
	g.i("VMOVQ (R15)(AX*8), X7")
	g.i("VPINSRQ $1, (R15)(BX*8), X7, X7")
	g.i("VINSERTI128 $1, X7, Y6, Y6")
}

// gatherD: Y6 = the eight uint32 entries of the table R15 indexed by the
// dwords of Y9 (clobbers AX, BX, X7, X9).
func (g *gen) gatherD() {
	for half, x := range []string{"X6", "X7"} {
		if half == 1 {
			g.i("VEXTRACTI128 $1, Y9, X9")
		}
		g.i("VMOVD X9, AX")
		g.i("VPEXTRD $1, X9, BX")
		g.i("VMOVD (R15)(AX*4), %s", x)
		g.i("VPINSRD $1, (R15)(BX*4), %s, %s", x, x)
		g.i("VPEXTRD $2, X9, AX")
		g.i("VPEXTRD $3, X9, BX")
		g.i("VPINSRD $2, (R15)(AX*4), %s, %s", x, x)
		g.i("VPINSRD $3, (R15)(BX*4), %s, %s", x, x)
	}
	g.i("VINSERTI128 $1, X7, Y6, Y6")
}

// sign: Y6 = ±g + 64 from the magnitudes Y6 and the sign bits in DX (bit
// j of byte l: element 8l+j is negative).
func (g *gen) sign() {
	g.i("VMOVD DX, X7")
	g.i("VPBROADCASTD X7, Y7")
	g.i("VPSHUFB Y14, Y7, Y7")
	g.i("VPAND Y13, Y7, Y7")
	g.i("VPCMPEQB Y13, Y7, Y7")
	g.i("VPXOR Y7, Y6, Y6")
	g.i("VPSUBB Y7, Y6, Y6")
	g.i("VPADDB Y12, Y6, Y6")
}

// dot adds chunk c: Y6 its u, Y8 its scales (int16 lanes 0-7 the first 16
// elements', 8-15 the second's).
func (g *gen) dot(c int) {
	g.i("VPMADDUBSW %d(R11), Y6, Y6", 4+32*c)
	g.i("VPMADDWD Y8, Y6, Y6")
	g.i("VPADDD Y6, Y5, Y5")
	g.i("VPMADDWD %d(R13), Y8, Y7", 32*c)
	g.i("VPADDD Y7, Y4, Y4")
}

// sc32: Y8 = the odd scale 2·CX+1 in every lane.
func (g *gen) sc32() {
	g.i("LEAL 1(CX)(CX*1), CX")
	g.i("VMOVD CX, X8")
	g.i("VPBROADCASTW X8, Y8")
}

// sc16: Y8 = 2·BX+1 in lanes 0-7, 2·CX+1 in lanes 8-15.
func (g *gen) sc16() {
	g.i("LEAL 1(BX)(BX*1), BX")
	g.i("LEAL 1(CX)(CX*1), CX")
	g.i("VMOVD BX, X8")
	g.i("VPBROADCASTW X8, X8")
	g.i("VMOVD CX, X7")
	g.i("VPBROADCASTW X7, X7")
	g.i("VINSERTI128 $1, X7, Y8, Y8")
}

// nibbleScales16: Y8 from the scale byte at off (low nibble for the first
// 16 elements, high nibble for the second).
func (g *gen) nibbleScales16(off int) {
	g.i("MOVBLZX %d(R10), CX", off)
	g.i("MOVL CX, BX")
	g.i("ANDL $15, BX")
	g.i("SHRL $4, CX")
	g.sc16()
}

// ksigns: DX = the four ksigns bytes of the 7-bit fields of CX.
func (g *gen) ksigns() {
	for l := 0; l < 4; l++ {
		g.i("MOVL CX, BX")
		if l > 0 {
			g.i("SHRL $%d, BX", 7*l)
		}
		g.i("ANDL $127, BX")
		if l == 0 {
			g.i("MOVBLZX (R14)(BX*1), DX")
			continue
		}
		g.i("MOVBLZX (R14)(BX*1), BX")
		g.i("SHLL $%d, BX", 8*l)
		g.i("ORL BX, DX")
	}
}

// fin: acc X11 += (D·dx)·float32(ΣY5 − 64·ΣY4), D's binary16 in DX.
func (g *gen) fin() {
	g.i("VPSLLD $6, Y4, Y4")
	g.i("VPSUBD Y4, Y5, Y5")
	g.hsumd("Y5", "X5", "X9", "AX")
	g.scaledAdd("AX", "X11")
}

// iq writes the kernel of an IQ type: chunk(c) leaves chunk c's u in Y6
// and scales in Y8, d(...) loads D's binary16 into DX, and the row's sum
// is multiplied by scale ("" for none) at its end.
func (g *gen) iq(t, comment string, block int, chunk func(c int), d func(), scale string) {
	name := "lb" + t + "AVX2"
	g.text(name, name+": "+comment)
	g.kernel(t, "X11", block, true, func() {
		g.i("MOVQ %d(DI), R15", aGrid)
		g.i("MOVQ %d(DI), R14", aSigns)
		g.i("VPBROADCASTB %s, Y12", kb.ref("64", 0))
		g.i("VMOVDQU %s, Y13", bits.ref("", 0))
		g.i("VMOVDQU %s, Y14", spread.ref("", 0))
		g.i("VPBROADCASTB %s, Y15", kb.ref("1", 0))
	}, nil, func() {
		g.i("VPXOR Y5, Y5, Y5")
		g.i("VPXOR Y4, Y4, Y4")
		for c := 0; c < 8; c++ {
			g.c(fmt.Sprintf("chunk %d", c))
			chunk(c)
			g.dot(c)
		}
		if d == nil {
			g.i("MOVWLZX 0(R10), DX")
		} else {
			d()
		}
		g.fin()
	}, func() {
		if scale != "" {
			g.i("VMULSS %s, X11, X11", kd.ref(scale, 0))
		}
	})
}

// xxs is a chunk of IQ3_XXS or IQ2_XXS: grid indices bytes at qoff, the
// 32-bit aux word at aux (four 7-bit ksigns indices, the 4-bit scale on
// top); gather (uint32 entries into Y9) or uint64 (X9).
func (g *gen) xxs(qoff, aux int, wide bool) {
	if wide {
		g.i("VPMOVZXBD %d(R10), Y9", qoff)
		g.gatherD()
	} else {
		g.i("VPMOVZXBD %d(R10), X9", qoff)
		g.gatherQ()
	}
	g.i("MOVL %d(R10), CX", aux)
	g.ksigns()
	g.sign()
	g.i("SHRL $28, CX")
	g.sc32()
}

// IQ3_XXS (98 bytes): d, qs[64] grid indices, then 8 aux words.
func (g *gen) iq3XXS() {
	g.iq("IQ3_XXS", "IQ3_XXS, the halved grid, ksigns, sum times 0.5.", 98,
		func(c int) { g.xxs(2+8*c, 66+4*c, true) }, nil, "0.5")
}

// IQ2_XXS (66 bytes): d, per chunk 4 grid index bytes and the aux word.
func (g *gen) iq2XXS() {
	g.iq("IQ2_XXS", "IQ2_XXS, ksigns, sum times 0.125.", 66,
		func(c int) { g.xxs(2+8*c, 6+8*c, false) }, nil, "0.125")
}

// IQ2_XS (74 bytes): d, qs[32] uint16 (9-bit grid index, 7-bit ksigns
// index), scales[8].
func (g *gen) iq2XS() {
	g.iq("IQ2_XS", "IQ2_XS, 9-bit grid indices, ksigns, sum times 0.125.", 74, func(c int) {
		q := 2 + 8*c
		g.i("VPMOVZXWD %d(R10), X9", q)
		g.i("VPBROADCASTD %s, X7", kd.ref("511", 0))
		g.i("VPAND X7, X9, X9")
		g.gatherQ()
		for l := 0; l < 4; l++ {
			g.i("MOVWLZX %d(R10), BX", q+2*l)
			g.i("SHRL $9, BX")
			g.i("MOVBLZX (R14)(BX*1), BX")
			if l == 0 {
				g.i("MOVL BX, DX")
				continue
			}
			g.i("SHLL $%d, BX", 8*l)
			g.i("ORL BX, DX")
		}
		g.sign()
		g.nibbleScales16(66 + c)
	}, nil, "0.125")
}

// IQ2_S (82 bytes): d, qs[32] grid index low bytes, signs[32], qh[8],
// scales[8].
func (g *gen) iq2S() {
	g.iq("IQ2_S", "IQ2_S, 10-bit grid indices, stored signs, sum times 0.125.", 82, func(c int) {
		g.i("VPMOVZXBD %d(R10), X9", 2+4*c)
		g.i("MOVBLZX %d(R10), BX", 66+c)
		g.i("VMOVD BX, X7")
		g.i("VPBROADCASTD X7, X7")
		g.i("VPSLLVD %s, X7, X7", kd.ref("iq2sShift", 0))
		g.i("VPAND %s, X7, X7", kd.ref("0x300", 0))
		g.i("VPOR X7, X9, X9")
		g.gatherQ()
		g.i("MOVL %d(R10), DX", 34+4*c)
		g.sign()
		g.nibbleScales16(74 + c)
	}, nil, "0.125")
}

// IQ3_S (110 bytes): d, qs[64] grid index low bytes, qh[8], signs[32],
// scales[4].
func (g *gen) iq3S() {
	g.iq("IQ3_S", "IQ3_S, 9-bit grid indices, stored signs.", 110, func(c int) {
		g.i("VPMOVZXBD %d(R10), Y9", 2+8*c)
		g.i("MOVBLZX %d(R10), BX", 66+c)
		g.i("VMOVD BX, X7")
		g.i("VPBROADCASTD X7, Y7")
		g.i("VPSLLVD %s, Y7, Y7", kd.ref("iq3sShift", 0))
		g.i("VPBROADCASTD %s, Y8", kd.ref("256", 0))
		g.i("VPAND Y8, Y7, Y7")
		g.i("VPOR Y7, Y9, Y9")
		g.gatherD()
		g.i("MOVL %d(R10), DX", 74+4*c)
		g.sign()
		g.i("MOVBLZX %d(R10), CX", 106+c/2)
		g.i("SHRL $%d, CX", 4*(c%2))
		g.i("ANDL $15, CX")
		g.sc32()
	}, nil, "")
}

// IQ1_S (50 bytes): d, qs[32] grid index low bytes, qh[8] uint16 (3-bit
// index highs, 3-bit scale, delta sign).
func (g *gen) iq1S() {
	g.iq("IQ1_S", "IQ1_S, grid entries 8g+64 plus the ±1 delta, sum times 0.125.", 50, func(c int) {
		g.i("VPMOVZXBD %d(R10), X9", 2+4*c)
		g.i("MOVWLZX %d(R10), CX", 34+2*c)
		g.i("VMOVD CX, X7")
		g.i("VPBROADCASTD X7, X7")
		g.i("VPSRLVD %s, X7, X7", kd.ref("iq1sShift", 0))
		g.i("VPAND %s, X7, X7", kd.ref("7", 0))
		g.i("VPSLLD $8, X7, X7")
		g.i("VPOR X7, X9, X9")
		g.gatherQ()
		g.i("MOVL CX, BX")
		g.i("SHRL $15, BX")
		g.i("NEGL BX")
		g.i("VMOVD BX, X7")
		g.i("VPBROADCASTB X7, Y7")
		g.i("VPADDB Y15, Y6, Y6")
		g.i("VPADDB Y7, Y6, Y6")
		g.i("VPADDB Y7, Y6, Y6")
		g.i("SHRL $12, CX")
		g.i("ANDL $7, CX")
		g.sc32()
	}, nil, "0.125")
}

// IQ1_M (56 bytes): qs[32] grid index low bytes, qh[16] (per group of 8 a
// 3-bit index high and a delta sign), scales[8] (3-bit scales; d's
// binary16 in the top nibbles of the four uint16).
func (g *gen) iq1M() {
	g.iq("IQ1_M", "IQ1_M, grid entries 8g+64 plus the ±1 delta per group, sum times 0.125.", 56, func(c int) {
		g.i("VPMOVZXBD %d(R10), X9", 4*c)
		g.i("MOVWLZX %d(R10), CX", 32+2*c)
		g.i("VMOVD CX, X7")
		g.i("VPBROADCASTD X7, X7")
		g.i("VPSRLVD %s, X7, X7", kd.ref("iq1mShift", 0))
		g.i("VPAND %s, X7, X8", kd.ref("7", 0))
		g.i("VPSLLD $8, X8, X8")
		g.i("VPOR X8, X9, X9")
		g.i("VPAND %s, X7, X3", kd.ref("8", 0))
		g.i("VPCMPEQD %s, X3, X3", kd.ref("8", 0))
		g.i("VPMOVSXDQ X3, Y3")
		g.gatherQ()
		g.i("VPADDB Y15, Y6, Y6")
		g.i("VPADDB Y3, Y6, Y6")
		g.i("VPADDB Y3, Y6, Y6")
		g.i("MOVWLZX %d(R10), CX", 48+2*(c/2))
		g.i("SHRL $%d, CX", 6*(c%2))
		g.i("MOVL CX, BX")
		g.i("ANDL $7, BX")
		g.i("SHRL $3, CX")
		g.i("ANDL $7, CX")
		g.sc16()
	}, func() {
		g.i("MOVWLZX 48(R10), DX")
		g.i("SHRL $12, DX")
		for n, m := range []int{0xf0, 0xf00, 0xf000} {
			g.i("MOVWLZX %d(R10), BX", 50+2*n)
			if n < 2 {
				g.i("SHRL $%d, BX", 8-4*n)
			}
			g.i("ANDL $0x%x, BX", m)
			g.i("ORL BX, DX")
		}
	}, "0.125")
}

// generate returns the contents of lowbit_amd64.s.
func generate() []byte {
	var g gen
	g.b.WriteString("// Code generated by genlowbit/main.go; DO NOT EDIT.\n\n//go:build amd64\n\n#include \"textflag.h\"\n")
	g.b.WriteString(`
// Fused matrix-vector kernels of the low-bit super-block types (AVX2, VEX
// encodings only); see lowbit_amd64.go for the contract and
// genlowbit/main.go for the method. Each takes a *lbArg and sets
// y[r] = tensor.VecDot(t, 256·nsb, row r, x) for r < rows.
`)
	g.emitTables()
	g.q3K()
	g.q2K()
	g.iq4XS()
	g.iq3XXS()
	g.iq2XXS()
	g.iq2XS()
	g.iq2S()
	g.iq3S()
	g.iq1S()
	g.iq1M()
	return g.b.Bytes()
}

func main() {
	if err := os.WriteFile("lowbit_amd64.s", generate(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
