//go:build amd64

#include "textflag.h"

// Fused matrix-vector kernels of the low-bit super-block types (AVX2,
// VEX encodings only). Hand-written, unlike the generated avx2_amd64.s and
// avx512_amd64.s: see lowbit_amd64.go for the contract. Each takes a
// *lbArg (offsets: 0 w, 8 stride, 16 rows, 24 x, 32 nsb, 40 y, 48 c) and
// sets y[r] = tensor.VecDot(t, 256·nsb, row r, x) for r < rows, decoding
// the packed weights in registers: each super-block's integer sums exactly
// in int32, then tensor.VecDot's float steps one by one.

// Shuffles that spread two int16 scales over the int16 lanes of a chunk of
// 32 products: lanes 0-7 (low 128 bits) get scale m, lanes 8-15 scale m+1,
// from a vector holding eight int16 scales in both 128-bit lanes.
DATA lbShuf<>+0(SB)/8, $0x0100010001000100
DATA lbShuf<>+8(SB)/8, $0x0100010001000100
DATA lbShuf<>+16(SB)/8, $0x0302030203020302
DATA lbShuf<>+24(SB)/8, $0x0302030203020302
DATA lbShuf<>+32(SB)/8, $0x0504050405040504
DATA lbShuf<>+40(SB)/8, $0x0504050405040504
DATA lbShuf<>+48(SB)/8, $0x0706070607060706
DATA lbShuf<>+56(SB)/8, $0x0706070607060706
DATA lbShuf<>+64(SB)/8, $0x0908090809080908
DATA lbShuf<>+72(SB)/8, $0x0908090809080908
DATA lbShuf<>+80(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA lbShuf<>+88(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA lbShuf<>+96(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA lbShuf<>+104(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA lbShuf<>+112(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA lbShuf<>+120(SB)/8, $0x0f0e0f0e0f0e0f0e
GLOBL lbShuf<>(SB), RODATA|NOPTR, $128

// Byte constants (broadcast from here): 0x03, 0x04, 0x01, 0x20, 0x0f, 64.
DATA lbK<>+0(SB)/1, $0x03
DATA lbK<>+1(SB)/1, $0x04
DATA lbK<>+2(SB)/1, $0x01
DATA lbK<>+3(SB)/1, $0x20
DATA lbK<>+4(SB)/1, $0x0f
DATA lbK<>+5(SB)/1, $0x40
DATA lbK<>+6(SB)/2, $0x0040
GLOBL lbK<>(SB), RODATA|NOPTR, $8

// IQ4_XS: the sixteen kvalues_iq4nl levels q as (q>>1)+64 (unsigned, at
// most 120) and as q&1, each in both 128-bit lanes.
// q: -127 -104 -83 -65 -49 -35 -22 -10 1 13 25 38 53 69 89 113
DATA lbIQ4Hi<>+0(SB)/8, $0x3b352e271f160c00
DATA lbIQ4Hi<>+8(SB)/8, $0x786c625a534c4640
DATA lbIQ4Hi<>+16(SB)/8, $0x3b352e271f160c00
DATA lbIQ4Hi<>+24(SB)/8, $0x786c625a534c4640
DATA lbIQ4Lo<>+0(SB)/8, $0x0000010101010001
DATA lbIQ4Lo<>+8(SB)/8, $0x0101010100010101
DATA lbIQ4Lo<>+16(SB)/8, $0x0000010101010001
DATA lbIQ4Lo<>+24(SB)/8, $0x0101010100010101
GLOBL lbIQ4Hi<>(SB), RODATA|NOPTR, $32
GLOBL lbIQ4Lo<>(SB), RODATA|NOPTR, $32

// HSUMD sums the eight int32 lanes of Y into the 32-bit register R
// (clobbers X, T).
#define HSUMD(Y, X, XT, R) \
	VEXTRACTI128 $1, Y, XT \
	VPADDD       XT, X, X  \
	VPSHUFD      $0x4e, X, XT \
	VPADDD       XT, X, X  \
	VPSHUFD      $0xb1, X, XT \
	VPADDD       XT, X, X  \
	VMOVD        X, R

// Q3_K chunk j (32 elements) of half h: Y6 holds qs[32h:32h+32], Y3 the
// hmask, Y4 the bit (1<<j in each byte), SCL the scales (Y1 for j < 4,
// Y2 after), SHUF the scale shuffle for j%4. Adds Σ scale·q·x to Y5 as
// Σ low·x − Σ 4·(1−hbit)·x (VPMADDUBSW cannot saturate: u ≤ 4).
#define Q3CHUNK(SH, XOFF, SCL, SHUF) \
	VPSRLW     $SH, Y6, Y7          \
	VPAND      Y15, Y7, Y7          \
	VPAND      Y4, Y3, Y8           \
	VPCMPEQB   Y12, Y8, Y8          \
	VPAND      Y11, Y8, Y8          \
	VPADDB     Y4, Y4, Y4           \
	VMOVDQU    XOFF(R11), Y13       \
	VPMADDUBSW Y13, Y7, Y9          \
	VPMADDUBSW Y13, Y8, Y10         \
	VPSUBW     Y10, Y9, Y9          \
	VPSHUFB    SHUF, SCL, Y10       \
	VPMADDWD   Y10, Y9, Y9          \
	VPADDD     Y9, Y5, Y5

// func lbQ3_KAVX2(a *lbArg)
TEXT ·lbQ3_KAVX2(SB), NOSPLIT, $0-8
	MOVQ         a+0(FP), DI
	MOVQ         0(DI), SI
	MOVQ         16(DI), R8
	MOVQ         40(DI), R9
	VPBROADCASTB lbK<>+0(SB), Y15
	VPBROADCASTB lbK<>+1(SB), Y11
	VPXOR        Y12, Y12, Y12

q3row:
	TESTQ  R8, R8
	JEQ    q3done
	MOVQ   SI, R10
	MOVQ   24(DI), R11
	MOVQ   32(DI), R12
	VXORPS X14, X14, X14

q3sb:
	// The sixteen 6-bit scales (ggml's kmask trick), minus 32.
	MOVL         96(R10), AX
	MOVL         100(R10), BX
	MOVL         104(R10), CX
	MOVL         AX, DX
	ANDL         $0x0f0f0f0f, DX
	MOVL         CX, R13
	ANDL         $0x03030303, R13
	SHLL         $4, R13
	ORL          R13, DX
	VMOVD        DX, X0
	MOVL         BX, DX
	ANDL         $0x0f0f0f0f, DX
	MOVL         CX, R13
	SHRL         $2, R13
	ANDL         $0x03030303, R13
	SHLL         $4, R13
	ORL          R13, DX
	VPINSRD      $1, DX, X0, X0
	MOVL         AX, DX
	SHRL         $4, DX
	ANDL         $0x0f0f0f0f, DX
	MOVL         CX, R13
	SHRL         $4, R13
	ANDL         $0x03030303, R13
	SHLL         $4, R13
	ORL          R13, DX
	VPINSRD      $2, DX, X0, X0
	MOVL         BX, DX
	SHRL         $4, DX
	ANDL         $0x0f0f0f0f, DX
	MOVL         CX, R13
	SHRL         $6, R13
	ANDL         $0x03030303, R13
	SHLL         $4, R13
	ORL          R13, DX
	VPINSRD      $3, DX, X0, X0
	VPBROADCASTB lbK<>+3(SB), X1
	VPSUBB       X1, X0, X0
	VPMOVSXBW    X0, Y0
	VPERM2I128   $0x00, Y0, Y0, Y1
	VPERM2I128   $0x11, Y0, Y0, Y2
	VMOVDQU      0(R10), Y3
	VPBROADCASTB lbK<>+2(SB), Y4
	VPXOR        Y5, Y5, Y5

	VMOVDQU 32(R10), Y6
	Q3CHUNK(0, 4, Y1, lbShuf<>+0(SB))
	Q3CHUNK(2, 36, Y1, lbShuf<>+32(SB))
	Q3CHUNK(4, 68, Y1, lbShuf<>+64(SB))
	Q3CHUNK(6, 100, Y1, lbShuf<>+96(SB))
	VMOVDQU 64(R10), Y6
	Q3CHUNK(0, 132, Y2, lbShuf<>+0(SB))
	Q3CHUNK(2, 164, Y2, lbShuf<>+32(SB))
	Q3CHUNK(4, 196, Y2, lbShuf<>+64(SB))
	Q3CHUNK(6, 228, Y2, lbShuf<>+96(SB))

	HSUMD(Y5, X5, X9, AX)

	// acc += (D·dx)·float32(isum)
	MOVWLZX    108(R10), DX
	VMOVD      DX, X9
	VCVTPH2PS  X9, X9
	VMULSS     (R11), X9, X9
	VCVTSI2SSL AX, X10, X10
	VMULSS     X10, X9, X9
	VADDSS     X9, X14, X14

	ADDQ $110, R10
	ADDQ $292, R11
	DECQ R12
	JNZ  q3sb

	VMOVSS X14, (R9)
	ADDQ   $4, R9
	ADDQ   8(DI), SI
	DECQ   R8
	JMP    q3row

q3done:
	VZEROUPPER
	RET

// Q2_K chunk: as Q3CHUNK without the high bit (q = low, unsigned).
#define Q2CHUNK(SH, XOFF, SCL, SHUF) \
	VPSRLW     $SH, Y6, Y7          \
	VPAND      Y15, Y7, Y7          \
	VPMADDUBSW XOFF(R11), Y7, Y9    \
	VPSHUFB    SHUF, SCL, Y10       \
	VPMADDWD   Y10, Y9, Y9          \
	VPADDD     Y9, Y5, Y5

// func lbQ2_KAVX2(a *lbArg)
TEXT ·lbQ2_KAVX2(SB), NOSPLIT, $0-8
	MOVQ         a+0(FP), DI
	MOVQ         0(DI), SI
	MOVQ         16(DI), R8
	MOVQ         40(DI), R9
	VPBROADCASTB lbK<>+0(SB), Y15
	VPBROADCASTB lbK<>+4(SB), X11

q2row:
	TESTQ  R8, R8
	JEQ    q2done
	MOVQ   SI, R10
	MOVQ   24(DI), R11
	MOVQ   32(DI), R12
	VXORPS X14, X14, X14 // acc
	VXORPS X13, X13, X13 // accm

q2sb:
	VMOVDQU    0(R10), X0
	VPAND      X11, X0, X3    // scales
	VPSRLW     $4, X0, X0
	VPAND      X11, X0, X0    // mins
	VPMOVZXBW  X0, Y0
	VPMADDWD   260(R11), Y0, Y0
	HSUMD(Y0, X0, X9, BX)      // imin
	VPMOVZXBW  X3, Y3
	VPERM2I128 $0x00, Y3, Y3, Y1
	VPERM2I128 $0x11, Y3, Y3, Y2
	VPXOR      Y5, Y5, Y5

	VMOVDQU 16(R10), Y6
	Q2CHUNK(0, 4, Y1, lbShuf<>+0(SB))
	Q2CHUNK(2, 36, Y1, lbShuf<>+32(SB))
	Q2CHUNK(4, 68, Y1, lbShuf<>+64(SB))
	Q2CHUNK(6, 100, Y1, lbShuf<>+96(SB))
	VMOVDQU 48(R10), Y6
	Q2CHUNK(0, 132, Y2, lbShuf<>+0(SB))
	Q2CHUNK(2, 164, Y2, lbShuf<>+32(SB))
	Q2CHUNK(4, 196, Y2, lbShuf<>+64(SB))
	Q2CHUNK(6, 228, Y2, lbShuf<>+96(SB))

	HSUMD(Y5, X5, X9, AX)

	// acc += (D·dx)·float32(isum); accm += (DMin·dx)·float32(imin)
	MOVWLZX    80(R10), DX
	VMOVD      DX, X9
	VCVTPH2PS  X9, X9
	VMULSS     (R11), X9, X9
	VCVTSI2SSL AX, X10, X10
	VMULSS     X10, X9, X9
	VADDSS     X9, X14, X14
	MOVWLZX    82(R10), DX
	VMOVD      DX, X9
	VCVTPH2PS  X9, X9
	VMULSS     (R11), X9, X9
	VCVTSI2SSL BX, X10, X10
	VMULSS     X10, X9, X9
	VADDSS     X9, X13, X13

	ADDQ $84, R10
	ADDQ $292, R11
	DECQ R12
	JNZ  q2sb

	VSUBSS X13, X14, X14
	VMOVSS X14, (R9)
	ADDQ   $4, R9
	ADDQ   8(DI), SI
	DECQ   R8
	JMP    q2row

q2done:
	VZEROUPPER
	RET

// IQ4_XS sub-block ib (32 elements, qs at QOFF = 8+16·ib, x at XOFF = 4+32·ib,
// its scale's bits at HSH = 2·ib of scales_h and SSH = 4·(ib%2) of byte SOFF): the
// scale ls−32 broadcast in Y0; adds Σ ls·Σ((q>>1)+64)·x to Y5,
// Σ ls·Σx to Y4 and Σ ls·Σ(q&1)·x to Y3.
#define IQ4SUB(HSH, SOFF, SSH, QOFF, XOFF) \
	MOVL         CX, DX                 \
	SHRL         $HSH, DX               \
	ANDL         $3, DX                 \
	SHLL         $4, DX                 \
	MOVBLZX      SOFF(R10), AX          \
	SHRL         $SSH, AX               \
	ANDL         $15, AX                \
	ORL          AX, DX                 \
	SUBL         $32, DX                \
	VMOVD        DX, X0                 \
	VPBROADCASTW X0, Y0                 \
	VMOVDQU      QOFF(R10), X6     \
	VPSRLW       $4, X6, X7             \
	VINSERTI128  $1, X7, Y6, Y6         \
	VPAND        Y15, Y6, Y6            \
	VMOVDQU      XOFF(R11), Y13    \
	VPSHUFB      Y6, Y12, Y7            \
	VPSHUFB      Y6, Y11, Y8            \
	VPMADDUBSW   Y13, Y7, Y7            \
	VPMADDUBSW   Y13, Y8, Y8            \
	VPMADDUBSW   Y13, Y1, Y9            \
	VPMADDWD     Y0, Y7, Y7             \
	VPMADDWD     Y0, Y8, Y8             \
	VPMADDWD     Y0, Y9, Y9             \
	VPADDD       Y7, Y5, Y5             \
	VPADDD       Y8, Y3, Y3             \
	VPADDD       Y9, Y4, Y4

// func lbIQ4_XSAVX2(a *lbArg)
TEXT ·lbIQ4_XSAVX2(SB), NOSPLIT, $0-8
	MOVQ         a+0(FP), DI
	MOVQ         0(DI), SI
	MOVQ         16(DI), R8
	MOVQ         40(DI), R9
	VPBROADCASTB lbK<>+4(SB), Y15
	VPBROADCASTB lbK<>+2(SB), Y1
	VMOVDQU      lbIQ4Hi<>(SB), Y12
	VMOVDQU      lbIQ4Lo<>(SB), Y11

x4row:
	TESTQ  R8, R8
	JEQ    x4done
	MOVQ   SI, R10
	MOVQ   24(DI), R11
	MOVQ   32(DI), R12
	VXORPS X14, X14, X14

x4sb:
	MOVWLZX 2(R10), CX // scales_h
	VPXOR   Y5, Y5, Y5
	VPXOR   Y4, Y4, Y4
	VPXOR   Y3, Y3, Y3
	IQ4SUB(0, 4, 0, 8, 4)
	IQ4SUB(2, 4, 4, 24, 36)
	IQ4SUB(4, 5, 0, 40, 68)
	IQ4SUB(6, 5, 4, 56, 100)
	IQ4SUB(8, 6, 0, 72, 132)
	IQ4SUB(10, 6, 4, 88, 164)
	IQ4SUB(12, 7, 0, 104, 196)
	IQ4SUB(14, 7, 4, 120, 228)
	HSUMD(Y5, X5, X9, AX)
	HSUMD(Y4, X4, X9, BX)
	HSUMD(Y3, X3, X9, CX)

	// hi = 2·(Σ ls·Σ u·x − 64·Σ ls·Σx), lo = Σ ls·Σ(q&1)·x
	SHLL $6, BX
	SUBL BX, AX
	SHLL $1, AX

	// acc += (D·dx)·float32(hi); acc += (D·dx)·float32(lo)
	MOVWLZX    0(R10), DX
	VMOVD      DX, X9
	VCVTPH2PS  X9, X9
	VMULSS     (R11), X9, X9
	VCVTSI2SSL AX, X10, X10
	VMULSS     X10, X9, X10
	VADDSS     X10, X14, X14
	VCVTSI2SSL CX, X10, X10
	VMULSS     X10, X9, X10
	VADDSS     X10, X14, X14

	ADDQ $136, R10
	ADDQ $292, R11
	DECQ R12
	JNZ  x4sb

	VMOVSS X14, (R9)
	ADDQ   $4, R9
	ADDQ   8(DI), SI
	DECQ   R8
	JMP    x4row

x4done:
	VZEROUPPER
	RET

// ---- IQ types ------------------------------------------------------------
//
// Each 32-element chunk: the unsigned grid magnitudes g of its groups by
// scalar loads from the grid table (R15; IQ3_XXS's halved, IQ1's as 8g+64), the
// signs applied as u = ±g + 64 (every |q| ≤ 63, so u ≤ 127 and VPMADDUBSW
// cannot saturate), Y5 += scale·Σ u·x and Y4 += scale·Σx (from the
// prepared activations c: per chunk the sums of its two halves in int16
// lanes 0 and 8, lbPrepIQ), so that isum = ΣY5 − 64·ΣY4 exactly.
// Registers: R10 block, R11 x block, R13 c block, R14 ksigns, R15 grid,
// X11 the row's float accumulator, Y12 64s, Y13 the sign bits, Y14 the sign-byte spread, Y15 ones.

DATA lbSpread<>+0(SB)/8, $0x0000000000000000
DATA lbSpread<>+8(SB)/8, $0x0101010101010101
DATA lbSpread<>+16(SB)/8, $0x0202020202020202
DATA lbSpread<>+24(SB)/8, $0x0303030303030303
GLOBL lbSpread<>(SB), RODATA|NOPTR, $32

DATA lbBits<>+0(SB)/8, $0x8040201008040201
DATA lbBits<>+8(SB)/8, $0x8040201008040201
DATA lbBits<>+16(SB)/8, $0x8040201008040201
DATA lbBits<>+24(SB)/8, $0x8040201008040201
GLOBL lbBits<>(SB), RODATA|NOPTR, $32

// dword constants: shifts and masks of the index high bits
DATA lbD<>+0(SB)/4, $8   // IQ3_S: qh bit g to bit 8, g = 0..7
DATA lbD<>+4(SB)/4, $7
DATA lbD<>+8(SB)/4, $6
DATA lbD<>+12(SB)/4, $5
DATA lbD<>+16(SB)/4, $4
DATA lbD<>+20(SB)/4, $3
DATA lbD<>+24(SB)/4, $2
DATA lbD<>+28(SB)/4, $1
DATA lbD<>+32(SB)/4, $8   // IQ2_S: qh bits 2l,2l+1 to bits 8,9
DATA lbD<>+36(SB)/4, $6
DATA lbD<>+40(SB)/4, $4
DATA lbD<>+44(SB)/4, $2
DATA lbD<>+48(SB)/4, $0   // IQ1_S: 3-bit fields
DATA lbD<>+52(SB)/4, $3
DATA lbD<>+56(SB)/4, $6
DATA lbD<>+60(SB)/4, $9
DATA lbD<>+64(SB)/4, $0   // IQ1_M: 4-bit fields
DATA lbD<>+68(SB)/4, $4
DATA lbD<>+72(SB)/4, $8
DATA lbD<>+76(SB)/4, $12
DATA lbD<>+80(SB)/4, $0x300
DATA lbD<>+84(SB)/4, $0x300
DATA lbD<>+88(SB)/4, $0x300
DATA lbD<>+92(SB)/4, $0x300
DATA lbD<>+96(SB)/4, $7
DATA lbD<>+100(SB)/4, $7
DATA lbD<>+104(SB)/4, $7
DATA lbD<>+108(SB)/4, $7
DATA lbD<>+112(SB)/4, $8
DATA lbD<>+116(SB)/4, $8
DATA lbD<>+120(SB)/4, $8
DATA lbD<>+124(SB)/4, $8
DATA lbD<>+128(SB)/4, $256
DATA lbD<>+132(SB)/4, $511
DATA lbD<>+136(SB)/4, $0x3e000000 // 0.125
DATA lbD<>+140(SB)/4, $0x3f000000 // 0.5
GLOBL lbD<>(SB), RODATA|NOPTR, $144

// GATHERQ: Y6 = the four uint64 entries of the table R15 indexed by the
// dwords of X9, by scalar loads (faster than VPGATHERDQ on the CPUs
// measured; clobbers AX, BX, X7).
#define GATHERQ \
	VMOVD       X9, AX                 \
	VPEXTRD     $1, X9, BX             \
	VMOVQ       (R15)(AX*8), X6        \
	VPINSRQ     $1, (R15)(BX*8), X6, X6 \
	VPEXTRD     $2, X9, AX             \
	VPEXTRD     $3, X9, BX             \
	VMOVQ       (R15)(AX*8), X7        \
	VPINSRQ     $1, (R15)(BX*8), X7, X7 \
	VINSERTI128 $1, X7, Y6, Y6

// GATHERD: Y6 = the eight uint32 entries of the table R15 indexed by the
// dwords of Y9 (clobbers AX, BX, X7, X9).
#define GATHERD \
	VMOVD        X9, AX                 \
	VPEXTRD      $1, X9, BX             \
	VMOVD        (R15)(AX*4), X6        \
	VPINSRD      $1, (R15)(BX*4), X6, X6 \
	VPEXTRD      $2, X9, AX             \
	VPEXTRD      $3, X9, BX             \
	VPINSRD      $2, (R15)(AX*4), X6, X6 \
	VPINSRD      $3, (R15)(BX*4), X6, X6 \
	VEXTRACTI128 $1, Y9, X9             \
	VMOVD        X9, AX                 \
	VPEXTRD      $1, X9, BX             \
	VMOVD        (R15)(AX*4), X7        \
	VPINSRD      $1, (R15)(BX*4), X7, X7 \
	VPEXTRD      $2, X9, AX             \
	VPEXTRD      $3, X9, BX             \
	VPINSRD      $2, (R15)(AX*4), X7, X7 \
	VPINSRD      $3, (R15)(BX*4), X7, X7 \
	VINSERTI128  $1, X7, Y6, Y6

// LBSIGN: Y6 = ±g + 64 from the magnitudes Y6 and the sign bits in DX
// (bit j of byte l: element 8l+j is negative).
#define LBSIGN \
	VMOVD        DX, X7      \
	VPBROADCASTD X7, Y7      \
	VPSHUFB      Y14, Y7, Y7 \
	VPAND        Y13, Y7, Y7 \
	VPCMPEQB     Y13, Y7, Y7 \
	VPXOR        Y7, Y6, Y6  \
	VPSUBB       Y7, Y6, Y6  \
	VPADDB       Y12, Y6, Y6

// LBDOT: Y6 the chunk's u, Y8 its scales (int16 lanes 0-7 the first 16
// elements', 8-15 the second's).
#define LBDOT(XOFF, COFF) \
	VPMADDUBSW XOFF(R11), Y6, Y6 \
	VPMADDWD   Y8, Y6, Y6        \
	VPADDD     Y6, Y5, Y5        \
	VPMADDWD   COFF(R13), Y8, Y7 \
	VPADDD     Y7, Y4, Y4

// SC32: Y8 = the odd scale 2·CX+1 in every lane.
#define SC32 \
	LEAL         1(CX)(CX*1), CX \
	VMOVD        CX, X8          \
	VPBROADCASTW X8, Y8

// SC16: Y8 = 2·BX+1 in lanes 0-7, 2·CX+1 in lanes 8-15.
#define SC16 \
	LEAL         1(BX)(BX*1), BX \
	LEAL         1(CX)(CX*1), CX \
	VMOVD        BX, X8          \
	VPBROADCASTW X8, X8          \
	VMOVD        CX, X7          \
	VPBROADCASTW X7, X7          \
	VINSERTI128  $1, X7, Y8, Y8

// KSIGNS: DX = the four ksigns bytes of the 7-bit fields of CX.
#define KSIGNS \
	MOVL    CX, BX           \
	ANDL    $127, BX         \
	MOVBLZX (R14)(BX*1), DX  \
	MOVL    CX, BX           \
	SHRL    $7, BX           \
	ANDL    $127, BX         \
	MOVBLZX (R14)(BX*1), BX  \
	SHLL    $8, BX           \
	ORL     BX, DX           \
	MOVL    CX, BX           \
	SHRL    $14, BX          \
	ANDL    $127, BX         \
	MOVBLZX (R14)(BX*1), BX  \
	SHLL    $16, BX          \
	ORL     BX, DX           \
	MOVL    CX, BX           \
	SHRL    $21, BX          \
	ANDL    $127, BX         \
	MOVBLZX (R14)(BX*1), BX  \
	SHLL    $24, BX          \
	ORL     BX, DX

// LBFIN: acc X11 += (D·dx)·float32(ΣY5 − 64·ΣY4), D's binary16 in DX.
#define LBFIN \
	VPSLLD     $6, Y4, Y4    \
	VPSUBD     Y4, Y5, Y5    \
	HSUMD(Y5, X5, X9, AX)    \
	VMOVD      DX, X9        \
	VCVTPH2PS  X9, X9        \
	VMULSS     (R11), X9, X9 \
	VCVTSI2SSL AX, X10, X10  \
	VMULSS     X10, X9, X9   \
	VADDSS     X9, X11, X11

// func lbIQ3_XXSAVX2(a *lbArg)
TEXT ·lbIQ3_XXSAVX2(SB), NOSPLIT, $0-8
	MOVQ         a+0(FP), DI
	MOVQ         0(DI), SI
	MOVQ         16(DI), R8
	MOVQ         40(DI), R9
	MOVQ         56(DI), R15
	MOVQ         64(DI), R14
	VPBROADCASTB lbK<>+5(SB), Y12
	VMOVDQU      lbBits<>(SB), Y13
	VMOVDQU      lbSpread<>(SB), Y14
	VPBROADCASTB lbK<>+2(SB), Y15

IQ3_XXSrow:
	TESTQ  R8, R8
	JEQ    IQ3_XXSdone
	MOVQ   SI, R10
	MOVQ   24(DI), R11
	MOVQ   48(DI), R13
	MOVQ   32(DI), R12
	VXORPS X11, X11, X11

IQ3_XXSsb:
	VPXOR Y5, Y5, Y5
	VPXOR Y4, Y4, Y4
	// chunk 0
	VPMOVZXBD  2(R10), Y9
	GATHERD
	MOVL       66(R10), CX
	KSIGNS
	LBSIGN
	SHRL       $28, CX
	SC32
	LBDOT(4, 0)
	// chunk 1
	VPMOVZXBD  10(R10), Y9
	GATHERD
	MOVL       70(R10), CX
	KSIGNS
	LBSIGN
	SHRL       $28, CX
	SC32
	LBDOT(36, 32)
	// chunk 2
	VPMOVZXBD  18(R10), Y9
	GATHERD
	MOVL       74(R10), CX
	KSIGNS
	LBSIGN
	SHRL       $28, CX
	SC32
	LBDOT(68, 64)
	// chunk 3
	VPMOVZXBD  26(R10), Y9
	GATHERD
	MOVL       78(R10), CX
	KSIGNS
	LBSIGN
	SHRL       $28, CX
	SC32
	LBDOT(100, 96)
	// chunk 4
	VPMOVZXBD  34(R10), Y9
	GATHERD
	MOVL       82(R10), CX
	KSIGNS
	LBSIGN
	SHRL       $28, CX
	SC32
	LBDOT(132, 128)
	// chunk 5
	VPMOVZXBD  42(R10), Y9
	GATHERD
	MOVL       86(R10), CX
	KSIGNS
	LBSIGN
	SHRL       $28, CX
	SC32
	LBDOT(164, 160)
	// chunk 6
	VPMOVZXBD  50(R10), Y9
	GATHERD
	MOVL       90(R10), CX
	KSIGNS
	LBSIGN
	SHRL       $28, CX
	SC32
	LBDOT(196, 192)
	// chunk 7
	VPMOVZXBD  58(R10), Y9
	GATHERD
	MOVL       94(R10), CX
	KSIGNS
	LBSIGN
	SHRL       $28, CX
	SC32
	LBDOT(228, 224)
	MOVWLZX 0(R10), DX
	LBFIN

	ADDQ $98, R10
	ADDQ $292, R11
	ADDQ $256, R13
	DECQ R12
	JNZ  IQ3_XXSsb
	VMULSS lbD<>+140(SB), X11, X11
	VMOVSS X11, (R9)
	ADDQ   $4, R9
	ADDQ   8(DI), SI
	DECQ   R8
	JMP    IQ3_XXSrow

IQ3_XXSdone:
	VZEROUPPER
	RET

// func lbIQ2_XXSAVX2(a *lbArg)
TEXT ·lbIQ2_XXSAVX2(SB), NOSPLIT, $0-8
	MOVQ         a+0(FP), DI
	MOVQ         0(DI), SI
	MOVQ         16(DI), R8
	MOVQ         40(DI), R9
	MOVQ         56(DI), R15
	MOVQ         64(DI), R14
	VPBROADCASTB lbK<>+5(SB), Y12
	VMOVDQU      lbBits<>(SB), Y13
	VMOVDQU      lbSpread<>(SB), Y14
	VPBROADCASTB lbK<>+2(SB), Y15

IQ2_XXSrow:
	TESTQ  R8, R8
	JEQ    IQ2_XXSdone
	MOVQ   SI, R10
	MOVQ   24(DI), R11
	MOVQ   48(DI), R13
	MOVQ   32(DI), R12
	VXORPS X11, X11, X11

IQ2_XXSsb:
	VPXOR Y5, Y5, Y5
	VPXOR Y4, Y4, Y4
	// chunk 0
	VPMOVZXBD  2(R10), X9
	GATHERQ
	MOVL       6(R10), CX
	KSIGNS
	LBSIGN
	SHRL       $28, CX
	SC32
	LBDOT(4, 0)
	// chunk 1
	VPMOVZXBD  10(R10), X9
	GATHERQ
	MOVL       14(R10), CX
	KSIGNS
	LBSIGN
	SHRL       $28, CX
	SC32
	LBDOT(36, 32)
	// chunk 2
	VPMOVZXBD  18(R10), X9
	GATHERQ
	MOVL       22(R10), CX
	KSIGNS
	LBSIGN
	SHRL       $28, CX
	SC32
	LBDOT(68, 64)
	// chunk 3
	VPMOVZXBD  26(R10), X9
	GATHERQ
	MOVL       30(R10), CX
	KSIGNS
	LBSIGN
	SHRL       $28, CX
	SC32
	LBDOT(100, 96)
	// chunk 4
	VPMOVZXBD  34(R10), X9
	GATHERQ
	MOVL       38(R10), CX
	KSIGNS
	LBSIGN
	SHRL       $28, CX
	SC32
	LBDOT(132, 128)
	// chunk 5
	VPMOVZXBD  42(R10), X9
	GATHERQ
	MOVL       46(R10), CX
	KSIGNS
	LBSIGN
	SHRL       $28, CX
	SC32
	LBDOT(164, 160)
	// chunk 6
	VPMOVZXBD  50(R10), X9
	GATHERQ
	MOVL       54(R10), CX
	KSIGNS
	LBSIGN
	SHRL       $28, CX
	SC32
	LBDOT(196, 192)
	// chunk 7
	VPMOVZXBD  58(R10), X9
	GATHERQ
	MOVL       62(R10), CX
	KSIGNS
	LBSIGN
	SHRL       $28, CX
	SC32
	LBDOT(228, 224)
	MOVWLZX 0(R10), DX
	LBFIN

	ADDQ $66, R10
	ADDQ $292, R11
	ADDQ $256, R13
	DECQ R12
	JNZ  IQ2_XXSsb
	VMULSS lbD<>+136(SB), X11, X11
	VMOVSS X11, (R9)
	ADDQ   $4, R9
	ADDQ   8(DI), SI
	DECQ   R8
	JMP    IQ2_XXSrow

IQ2_XXSdone:
	VZEROUPPER
	RET

// func lbIQ2_XSAVX2(a *lbArg)
TEXT ·lbIQ2_XSAVX2(SB), NOSPLIT, $0-8
	MOVQ         a+0(FP), DI
	MOVQ         0(DI), SI
	MOVQ         16(DI), R8
	MOVQ         40(DI), R9
	MOVQ         56(DI), R15
	MOVQ         64(DI), R14
	VPBROADCASTB lbK<>+5(SB), Y12
	VMOVDQU      lbBits<>(SB), Y13
	VMOVDQU      lbSpread<>(SB), Y14
	VPBROADCASTB lbK<>+2(SB), Y15

IQ2_XSrow:
	TESTQ  R8, R8
	JEQ    IQ2_XSdone
	MOVQ   SI, R10
	MOVQ   24(DI), R11
	MOVQ   48(DI), R13
	MOVQ   32(DI), R12
	VXORPS X11, X11, X11

IQ2_XSsb:
	VPXOR Y5, Y5, Y5
	VPXOR Y4, Y4, Y4
	// chunk 0
	VPMOVZXWD    2(R10), X9
	VPBROADCASTD lbD<>+132(SB), X7
	VPAND        X7, X9, X9
	GATHERQ
	MOVWLZX 2(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	MOVL    BX, DX
	MOVWLZX 4(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	SHLL    $8, BX
	ORL     BX, DX
	MOVWLZX 6(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	SHLL    $16, BX
	ORL     BX, DX
	MOVWLZX 8(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	SHLL    $24, BX
	ORL     BX, DX
	LBSIGN
	MOVBLZX 66(R10), CX
	MOVL    CX, BX
	ANDL    $15, BX
	SHRL    $4, CX
	SC16
	LBDOT(4, 0)
	// chunk 1
	VPMOVZXWD    10(R10), X9
	VPBROADCASTD lbD<>+132(SB), X7
	VPAND        X7, X9, X9
	GATHERQ
	MOVWLZX 10(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	MOVL    BX, DX
	MOVWLZX 12(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	SHLL    $8, BX
	ORL     BX, DX
	MOVWLZX 14(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	SHLL    $16, BX
	ORL     BX, DX
	MOVWLZX 16(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	SHLL    $24, BX
	ORL     BX, DX
	LBSIGN
	MOVBLZX 67(R10), CX
	MOVL    CX, BX
	ANDL    $15, BX
	SHRL    $4, CX
	SC16
	LBDOT(36, 32)
	// chunk 2
	VPMOVZXWD    18(R10), X9
	VPBROADCASTD lbD<>+132(SB), X7
	VPAND        X7, X9, X9
	GATHERQ
	MOVWLZX 18(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	MOVL    BX, DX
	MOVWLZX 20(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	SHLL    $8, BX
	ORL     BX, DX
	MOVWLZX 22(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	SHLL    $16, BX
	ORL     BX, DX
	MOVWLZX 24(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	SHLL    $24, BX
	ORL     BX, DX
	LBSIGN
	MOVBLZX 68(R10), CX
	MOVL    CX, BX
	ANDL    $15, BX
	SHRL    $4, CX
	SC16
	LBDOT(68, 64)
	// chunk 3
	VPMOVZXWD    26(R10), X9
	VPBROADCASTD lbD<>+132(SB), X7
	VPAND        X7, X9, X9
	GATHERQ
	MOVWLZX 26(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	MOVL    BX, DX
	MOVWLZX 28(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	SHLL    $8, BX
	ORL     BX, DX
	MOVWLZX 30(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	SHLL    $16, BX
	ORL     BX, DX
	MOVWLZX 32(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	SHLL    $24, BX
	ORL     BX, DX
	LBSIGN
	MOVBLZX 69(R10), CX
	MOVL    CX, BX
	ANDL    $15, BX
	SHRL    $4, CX
	SC16
	LBDOT(100, 96)
	// chunk 4
	VPMOVZXWD    34(R10), X9
	VPBROADCASTD lbD<>+132(SB), X7
	VPAND        X7, X9, X9
	GATHERQ
	MOVWLZX 34(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	MOVL    BX, DX
	MOVWLZX 36(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	SHLL    $8, BX
	ORL     BX, DX
	MOVWLZX 38(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	SHLL    $16, BX
	ORL     BX, DX
	MOVWLZX 40(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	SHLL    $24, BX
	ORL     BX, DX
	LBSIGN
	MOVBLZX 70(R10), CX
	MOVL    CX, BX
	ANDL    $15, BX
	SHRL    $4, CX
	SC16
	LBDOT(132, 128)
	// chunk 5
	VPMOVZXWD    42(R10), X9
	VPBROADCASTD lbD<>+132(SB), X7
	VPAND        X7, X9, X9
	GATHERQ
	MOVWLZX 42(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	MOVL    BX, DX
	MOVWLZX 44(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	SHLL    $8, BX
	ORL     BX, DX
	MOVWLZX 46(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	SHLL    $16, BX
	ORL     BX, DX
	MOVWLZX 48(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	SHLL    $24, BX
	ORL     BX, DX
	LBSIGN
	MOVBLZX 71(R10), CX
	MOVL    CX, BX
	ANDL    $15, BX
	SHRL    $4, CX
	SC16
	LBDOT(164, 160)
	// chunk 6
	VPMOVZXWD    50(R10), X9
	VPBROADCASTD lbD<>+132(SB), X7
	VPAND        X7, X9, X9
	GATHERQ
	MOVWLZX 50(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	MOVL    BX, DX
	MOVWLZX 52(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	SHLL    $8, BX
	ORL     BX, DX
	MOVWLZX 54(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	SHLL    $16, BX
	ORL     BX, DX
	MOVWLZX 56(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	SHLL    $24, BX
	ORL     BX, DX
	LBSIGN
	MOVBLZX 72(R10), CX
	MOVL    CX, BX
	ANDL    $15, BX
	SHRL    $4, CX
	SC16
	LBDOT(196, 192)
	// chunk 7
	VPMOVZXWD    58(R10), X9
	VPBROADCASTD lbD<>+132(SB), X7
	VPAND        X7, X9, X9
	GATHERQ
	MOVWLZX 58(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	MOVL    BX, DX
	MOVWLZX 60(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	SHLL    $8, BX
	ORL     BX, DX
	MOVWLZX 62(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	SHLL    $16, BX
	ORL     BX, DX
	MOVWLZX 64(R10), BX
	SHRL    $9, BX
	MOVBLZX (R14)(BX*1), BX
	SHLL    $24, BX
	ORL     BX, DX
	LBSIGN
	MOVBLZX 73(R10), CX
	MOVL    CX, BX
	ANDL    $15, BX
	SHRL    $4, CX
	SC16
	LBDOT(228, 224)
	MOVWLZX 0(R10), DX
	LBFIN

	ADDQ $74, R10
	ADDQ $292, R11
	ADDQ $256, R13
	DECQ R12
	JNZ  IQ2_XSsb
	VMULSS lbD<>+136(SB), X11, X11
	VMOVSS X11, (R9)
	ADDQ   $4, R9
	ADDQ   8(DI), SI
	DECQ   R8
	JMP    IQ2_XSrow

IQ2_XSdone:
	VZEROUPPER
	RET

// func lbIQ2_SAVX2(a *lbArg)
TEXT ·lbIQ2_SAVX2(SB), NOSPLIT, $0-8
	MOVQ         a+0(FP), DI
	MOVQ         0(DI), SI
	MOVQ         16(DI), R8
	MOVQ         40(DI), R9
	MOVQ         56(DI), R15
	MOVQ         64(DI), R14
	VPBROADCASTB lbK<>+5(SB), Y12
	VMOVDQU      lbBits<>(SB), Y13
	VMOVDQU      lbSpread<>(SB), Y14
	VPBROADCASTB lbK<>+2(SB), Y15

IQ2_Srow:
	TESTQ  R8, R8
	JEQ    IQ2_Sdone
	MOVQ   SI, R10
	MOVQ   24(DI), R11
	MOVQ   48(DI), R13
	MOVQ   32(DI), R12
	VXORPS X11, X11, X11

IQ2_Ssb:
	VPXOR Y5, Y5, Y5
	VPXOR Y4, Y4, Y4
	// chunk 0
	VPMOVZXBD    2(R10), X9
	MOVBLZX      66(R10), BX
	VMOVD        BX, X7
	VPBROADCASTD X7, X7
	VPSLLVD      lbD<>+32(SB), X7, X7
	VPAND        lbD<>+80(SB), X7, X7
	VPOR         X7, X9, X9
	GATHERQ
	MOVL         34(R10), DX
	LBSIGN
	MOVBLZX      74(R10), CX
	MOVL         CX, BX
	ANDL         $15, BX
	SHRL         $4, CX
	SC16
	LBDOT(4, 0)
	// chunk 1
	VPMOVZXBD    6(R10), X9
	MOVBLZX      67(R10), BX
	VMOVD        BX, X7
	VPBROADCASTD X7, X7
	VPSLLVD      lbD<>+32(SB), X7, X7
	VPAND        lbD<>+80(SB), X7, X7
	VPOR         X7, X9, X9
	GATHERQ
	MOVL         38(R10), DX
	LBSIGN
	MOVBLZX      75(R10), CX
	MOVL         CX, BX
	ANDL         $15, BX
	SHRL         $4, CX
	SC16
	LBDOT(36, 32)
	// chunk 2
	VPMOVZXBD    10(R10), X9
	MOVBLZX      68(R10), BX
	VMOVD        BX, X7
	VPBROADCASTD X7, X7
	VPSLLVD      lbD<>+32(SB), X7, X7
	VPAND        lbD<>+80(SB), X7, X7
	VPOR         X7, X9, X9
	GATHERQ
	MOVL         42(R10), DX
	LBSIGN
	MOVBLZX      76(R10), CX
	MOVL         CX, BX
	ANDL         $15, BX
	SHRL         $4, CX
	SC16
	LBDOT(68, 64)
	// chunk 3
	VPMOVZXBD    14(R10), X9
	MOVBLZX      69(R10), BX
	VMOVD        BX, X7
	VPBROADCASTD X7, X7
	VPSLLVD      lbD<>+32(SB), X7, X7
	VPAND        lbD<>+80(SB), X7, X7
	VPOR         X7, X9, X9
	GATHERQ
	MOVL         46(R10), DX
	LBSIGN
	MOVBLZX      77(R10), CX
	MOVL         CX, BX
	ANDL         $15, BX
	SHRL         $4, CX
	SC16
	LBDOT(100, 96)
	// chunk 4
	VPMOVZXBD    18(R10), X9
	MOVBLZX      70(R10), BX
	VMOVD        BX, X7
	VPBROADCASTD X7, X7
	VPSLLVD      lbD<>+32(SB), X7, X7
	VPAND        lbD<>+80(SB), X7, X7
	VPOR         X7, X9, X9
	GATHERQ
	MOVL         50(R10), DX
	LBSIGN
	MOVBLZX      78(R10), CX
	MOVL         CX, BX
	ANDL         $15, BX
	SHRL         $4, CX
	SC16
	LBDOT(132, 128)
	// chunk 5
	VPMOVZXBD    22(R10), X9
	MOVBLZX      71(R10), BX
	VMOVD        BX, X7
	VPBROADCASTD X7, X7
	VPSLLVD      lbD<>+32(SB), X7, X7
	VPAND        lbD<>+80(SB), X7, X7
	VPOR         X7, X9, X9
	GATHERQ
	MOVL         54(R10), DX
	LBSIGN
	MOVBLZX      79(R10), CX
	MOVL         CX, BX
	ANDL         $15, BX
	SHRL         $4, CX
	SC16
	LBDOT(164, 160)
	// chunk 6
	VPMOVZXBD    26(R10), X9
	MOVBLZX      72(R10), BX
	VMOVD        BX, X7
	VPBROADCASTD X7, X7
	VPSLLVD      lbD<>+32(SB), X7, X7
	VPAND        lbD<>+80(SB), X7, X7
	VPOR         X7, X9, X9
	GATHERQ
	MOVL         58(R10), DX
	LBSIGN
	MOVBLZX      80(R10), CX
	MOVL         CX, BX
	ANDL         $15, BX
	SHRL         $4, CX
	SC16
	LBDOT(196, 192)
	// chunk 7
	VPMOVZXBD    30(R10), X9
	MOVBLZX      73(R10), BX
	VMOVD        BX, X7
	VPBROADCASTD X7, X7
	VPSLLVD      lbD<>+32(SB), X7, X7
	VPAND        lbD<>+80(SB), X7, X7
	VPOR         X7, X9, X9
	GATHERQ
	MOVL         62(R10), DX
	LBSIGN
	MOVBLZX      81(R10), CX
	MOVL         CX, BX
	ANDL         $15, BX
	SHRL         $4, CX
	SC16
	LBDOT(228, 224)
	MOVWLZX 0(R10), DX
	LBFIN

	ADDQ $82, R10
	ADDQ $292, R11
	ADDQ $256, R13
	DECQ R12
	JNZ  IQ2_Ssb
	VMULSS lbD<>+136(SB), X11, X11
	VMOVSS X11, (R9)
	ADDQ   $4, R9
	ADDQ   8(DI), SI
	DECQ   R8
	JMP    IQ2_Srow

IQ2_Sdone:
	VZEROUPPER
	RET

// func lbIQ3_SAVX2(a *lbArg)
TEXT ·lbIQ3_SAVX2(SB), NOSPLIT, $0-8
	MOVQ         a+0(FP), DI
	MOVQ         0(DI), SI
	MOVQ         16(DI), R8
	MOVQ         40(DI), R9
	MOVQ         56(DI), R15
	MOVQ         64(DI), R14
	VPBROADCASTB lbK<>+5(SB), Y12
	VMOVDQU      lbBits<>(SB), Y13
	VMOVDQU      lbSpread<>(SB), Y14
	VPBROADCASTB lbK<>+2(SB), Y15

IQ3_Srow:
	TESTQ  R8, R8
	JEQ    IQ3_Sdone
	MOVQ   SI, R10
	MOVQ   24(DI), R11
	MOVQ   48(DI), R13
	MOVQ   32(DI), R12
	VXORPS X11, X11, X11

IQ3_Ssb:
	VPXOR Y5, Y5, Y5
	VPXOR Y4, Y4, Y4
	// chunk 0
	VPMOVZXBD    2(R10), Y9
	MOVBLZX      66(R10), BX
	VMOVD        BX, X7
	VPBROADCASTD X7, Y7
	VPSLLVD      lbD<>+0(SB), Y7, Y7
	VPBROADCASTD lbD<>+128(SB), Y8
	VPAND        Y8, Y7, Y7
	VPOR         Y7, Y9, Y9
	GATHERD
	MOVL         74(R10), DX
	LBSIGN
	MOVBLZX      106(R10), CX
	SHRL         $0, CX
	ANDL         $15, CX
	SC32
	LBDOT(4, 0)
	// chunk 1
	VPMOVZXBD    10(R10), Y9
	MOVBLZX      67(R10), BX
	VMOVD        BX, X7
	VPBROADCASTD X7, Y7
	VPSLLVD      lbD<>+0(SB), Y7, Y7
	VPBROADCASTD lbD<>+128(SB), Y8
	VPAND        Y8, Y7, Y7
	VPOR         Y7, Y9, Y9
	GATHERD
	MOVL         78(R10), DX
	LBSIGN
	MOVBLZX      106(R10), CX
	SHRL         $4, CX
	ANDL         $15, CX
	SC32
	LBDOT(36, 32)
	// chunk 2
	VPMOVZXBD    18(R10), Y9
	MOVBLZX      68(R10), BX
	VMOVD        BX, X7
	VPBROADCASTD X7, Y7
	VPSLLVD      lbD<>+0(SB), Y7, Y7
	VPBROADCASTD lbD<>+128(SB), Y8
	VPAND        Y8, Y7, Y7
	VPOR         Y7, Y9, Y9
	GATHERD
	MOVL         82(R10), DX
	LBSIGN
	MOVBLZX      107(R10), CX
	SHRL         $0, CX
	ANDL         $15, CX
	SC32
	LBDOT(68, 64)
	// chunk 3
	VPMOVZXBD    26(R10), Y9
	MOVBLZX      69(R10), BX
	VMOVD        BX, X7
	VPBROADCASTD X7, Y7
	VPSLLVD      lbD<>+0(SB), Y7, Y7
	VPBROADCASTD lbD<>+128(SB), Y8
	VPAND        Y8, Y7, Y7
	VPOR         Y7, Y9, Y9
	GATHERD
	MOVL         86(R10), DX
	LBSIGN
	MOVBLZX      107(R10), CX
	SHRL         $4, CX
	ANDL         $15, CX
	SC32
	LBDOT(100, 96)
	// chunk 4
	VPMOVZXBD    34(R10), Y9
	MOVBLZX      70(R10), BX
	VMOVD        BX, X7
	VPBROADCASTD X7, Y7
	VPSLLVD      lbD<>+0(SB), Y7, Y7
	VPBROADCASTD lbD<>+128(SB), Y8
	VPAND        Y8, Y7, Y7
	VPOR         Y7, Y9, Y9
	GATHERD
	MOVL         90(R10), DX
	LBSIGN
	MOVBLZX      108(R10), CX
	SHRL         $0, CX
	ANDL         $15, CX
	SC32
	LBDOT(132, 128)
	// chunk 5
	VPMOVZXBD    42(R10), Y9
	MOVBLZX      71(R10), BX
	VMOVD        BX, X7
	VPBROADCASTD X7, Y7
	VPSLLVD      lbD<>+0(SB), Y7, Y7
	VPBROADCASTD lbD<>+128(SB), Y8
	VPAND        Y8, Y7, Y7
	VPOR         Y7, Y9, Y9
	GATHERD
	MOVL         94(R10), DX
	LBSIGN
	MOVBLZX      108(R10), CX
	SHRL         $4, CX
	ANDL         $15, CX
	SC32
	LBDOT(164, 160)
	// chunk 6
	VPMOVZXBD    50(R10), Y9
	MOVBLZX      72(R10), BX
	VMOVD        BX, X7
	VPBROADCASTD X7, Y7
	VPSLLVD      lbD<>+0(SB), Y7, Y7
	VPBROADCASTD lbD<>+128(SB), Y8
	VPAND        Y8, Y7, Y7
	VPOR         Y7, Y9, Y9
	GATHERD
	MOVL         98(R10), DX
	LBSIGN
	MOVBLZX      109(R10), CX
	SHRL         $0, CX
	ANDL         $15, CX
	SC32
	LBDOT(196, 192)
	// chunk 7
	VPMOVZXBD    58(R10), Y9
	MOVBLZX      73(R10), BX
	VMOVD        BX, X7
	VPBROADCASTD X7, Y7
	VPSLLVD      lbD<>+0(SB), Y7, Y7
	VPBROADCASTD lbD<>+128(SB), Y8
	VPAND        Y8, Y7, Y7
	VPOR         Y7, Y9, Y9
	GATHERD
	MOVL         102(R10), DX
	LBSIGN
	MOVBLZX      109(R10), CX
	SHRL         $4, CX
	ANDL         $15, CX
	SC32
	LBDOT(228, 224)
	MOVWLZX 0(R10), DX
	LBFIN

	ADDQ $110, R10
	ADDQ $292, R11
	ADDQ $256, R13
	DECQ R12
	JNZ  IQ3_Ssb
	VMOVSS X11, (R9)
	ADDQ   $4, R9
	ADDQ   8(DI), SI
	DECQ   R8
	JMP    IQ3_Srow

IQ3_Sdone:
	VZEROUPPER
	RET

// func lbIQ1_SAVX2(a *lbArg)
TEXT ·lbIQ1_SAVX2(SB), NOSPLIT, $0-8
	MOVQ         a+0(FP), DI
	MOVQ         0(DI), SI
	MOVQ         16(DI), R8
	MOVQ         40(DI), R9
	MOVQ         56(DI), R15
	MOVQ         64(DI), R14
	VPBROADCASTB lbK<>+5(SB), Y12
	VMOVDQU      lbBits<>(SB), Y13
	VMOVDQU      lbSpread<>(SB), Y14
	VPBROADCASTB lbK<>+2(SB), Y15

IQ1_Srow:
	TESTQ  R8, R8
	JEQ    IQ1_Sdone
	MOVQ   SI, R10
	MOVQ   24(DI), R11
	MOVQ   48(DI), R13
	MOVQ   32(DI), R12
	VXORPS X11, X11, X11

IQ1_Ssb:
	VPXOR Y5, Y5, Y5
	VPXOR Y4, Y4, Y4
	// chunk 0
	VPMOVZXBD    2(R10), X9
	MOVWLZX      34(R10), CX
	VMOVD        CX, X7
	VPBROADCASTD X7, X7
	VPSRLVD      lbD<>+48(SB), X7, X7
	VPAND        lbD<>+96(SB), X7, X7
	VPSLLD       $8, X7, X7
	VPOR         X7, X9, X9
	GATHERQ
	MOVL         CX, BX
	SHRL         $15, BX
	NEGL         BX
	VMOVD        BX, X7
	VPBROADCASTB X7, Y7
	VPADDB       Y15, Y6, Y6
	VPADDB       Y7, Y6, Y6
	VPADDB       Y7, Y6, Y6
	SHRL         $12, CX
	ANDL         $7, CX
	SC32
	LBDOT(4, 0)
	// chunk 1
	VPMOVZXBD    6(R10), X9
	MOVWLZX      36(R10), CX
	VMOVD        CX, X7
	VPBROADCASTD X7, X7
	VPSRLVD      lbD<>+48(SB), X7, X7
	VPAND        lbD<>+96(SB), X7, X7
	VPSLLD       $8, X7, X7
	VPOR         X7, X9, X9
	GATHERQ
	MOVL         CX, BX
	SHRL         $15, BX
	NEGL         BX
	VMOVD        BX, X7
	VPBROADCASTB X7, Y7
	VPADDB       Y15, Y6, Y6
	VPADDB       Y7, Y6, Y6
	VPADDB       Y7, Y6, Y6
	SHRL         $12, CX
	ANDL         $7, CX
	SC32
	LBDOT(36, 32)
	// chunk 2
	VPMOVZXBD    10(R10), X9
	MOVWLZX      38(R10), CX
	VMOVD        CX, X7
	VPBROADCASTD X7, X7
	VPSRLVD      lbD<>+48(SB), X7, X7
	VPAND        lbD<>+96(SB), X7, X7
	VPSLLD       $8, X7, X7
	VPOR         X7, X9, X9
	GATHERQ
	MOVL         CX, BX
	SHRL         $15, BX
	NEGL         BX
	VMOVD        BX, X7
	VPBROADCASTB X7, Y7
	VPADDB       Y15, Y6, Y6
	VPADDB       Y7, Y6, Y6
	VPADDB       Y7, Y6, Y6
	SHRL         $12, CX
	ANDL         $7, CX
	SC32
	LBDOT(68, 64)
	// chunk 3
	VPMOVZXBD    14(R10), X9
	MOVWLZX      40(R10), CX
	VMOVD        CX, X7
	VPBROADCASTD X7, X7
	VPSRLVD      lbD<>+48(SB), X7, X7
	VPAND        lbD<>+96(SB), X7, X7
	VPSLLD       $8, X7, X7
	VPOR         X7, X9, X9
	GATHERQ
	MOVL         CX, BX
	SHRL         $15, BX
	NEGL         BX
	VMOVD        BX, X7
	VPBROADCASTB X7, Y7
	VPADDB       Y15, Y6, Y6
	VPADDB       Y7, Y6, Y6
	VPADDB       Y7, Y6, Y6
	SHRL         $12, CX
	ANDL         $7, CX
	SC32
	LBDOT(100, 96)
	// chunk 4
	VPMOVZXBD    18(R10), X9
	MOVWLZX      42(R10), CX
	VMOVD        CX, X7
	VPBROADCASTD X7, X7
	VPSRLVD      lbD<>+48(SB), X7, X7
	VPAND        lbD<>+96(SB), X7, X7
	VPSLLD       $8, X7, X7
	VPOR         X7, X9, X9
	GATHERQ
	MOVL         CX, BX
	SHRL         $15, BX
	NEGL         BX
	VMOVD        BX, X7
	VPBROADCASTB X7, Y7
	VPADDB       Y15, Y6, Y6
	VPADDB       Y7, Y6, Y6
	VPADDB       Y7, Y6, Y6
	SHRL         $12, CX
	ANDL         $7, CX
	SC32
	LBDOT(132, 128)
	// chunk 5
	VPMOVZXBD    22(R10), X9
	MOVWLZX      44(R10), CX
	VMOVD        CX, X7
	VPBROADCASTD X7, X7
	VPSRLVD      lbD<>+48(SB), X7, X7
	VPAND        lbD<>+96(SB), X7, X7
	VPSLLD       $8, X7, X7
	VPOR         X7, X9, X9
	GATHERQ
	MOVL         CX, BX
	SHRL         $15, BX
	NEGL         BX
	VMOVD        BX, X7
	VPBROADCASTB X7, Y7
	VPADDB       Y15, Y6, Y6
	VPADDB       Y7, Y6, Y6
	VPADDB       Y7, Y6, Y6
	SHRL         $12, CX
	ANDL         $7, CX
	SC32
	LBDOT(164, 160)
	// chunk 6
	VPMOVZXBD    26(R10), X9
	MOVWLZX      46(R10), CX
	VMOVD        CX, X7
	VPBROADCASTD X7, X7
	VPSRLVD      lbD<>+48(SB), X7, X7
	VPAND        lbD<>+96(SB), X7, X7
	VPSLLD       $8, X7, X7
	VPOR         X7, X9, X9
	GATHERQ
	MOVL         CX, BX
	SHRL         $15, BX
	NEGL         BX
	VMOVD        BX, X7
	VPBROADCASTB X7, Y7
	VPADDB       Y15, Y6, Y6
	VPADDB       Y7, Y6, Y6
	VPADDB       Y7, Y6, Y6
	SHRL         $12, CX
	ANDL         $7, CX
	SC32
	LBDOT(196, 192)
	// chunk 7
	VPMOVZXBD    30(R10), X9
	MOVWLZX      48(R10), CX
	VMOVD        CX, X7
	VPBROADCASTD X7, X7
	VPSRLVD      lbD<>+48(SB), X7, X7
	VPAND        lbD<>+96(SB), X7, X7
	VPSLLD       $8, X7, X7
	VPOR         X7, X9, X9
	GATHERQ
	MOVL         CX, BX
	SHRL         $15, BX
	NEGL         BX
	VMOVD        BX, X7
	VPBROADCASTB X7, Y7
	VPADDB       Y15, Y6, Y6
	VPADDB       Y7, Y6, Y6
	VPADDB       Y7, Y6, Y6
	SHRL         $12, CX
	ANDL         $7, CX
	SC32
	LBDOT(228, 224)
	MOVWLZX 0(R10), DX
	LBFIN

	ADDQ $50, R10
	ADDQ $292, R11
	ADDQ $256, R13
	DECQ R12
	JNZ  IQ1_Ssb
	VMULSS lbD<>+136(SB), X11, X11
	VMOVSS X11, (R9)
	ADDQ   $4, R9
	ADDQ   8(DI), SI
	DECQ   R8
	JMP    IQ1_Srow

IQ1_Sdone:
	VZEROUPPER
	RET

// func lbIQ1_MAVX2(a *lbArg)
TEXT ·lbIQ1_MAVX2(SB), NOSPLIT, $0-8
	MOVQ         a+0(FP), DI
	MOVQ         0(DI), SI
	MOVQ         16(DI), R8
	MOVQ         40(DI), R9
	MOVQ         56(DI), R15
	MOVQ         64(DI), R14
	VPBROADCASTB lbK<>+5(SB), Y12
	VMOVDQU      lbBits<>(SB), Y13
	VMOVDQU      lbSpread<>(SB), Y14
	VPBROADCASTB lbK<>+2(SB), Y15

IQ1_Mrow:
	TESTQ  R8, R8
	JEQ    IQ1_Mdone
	MOVQ   SI, R10
	MOVQ   24(DI), R11
	MOVQ   48(DI), R13
	MOVQ   32(DI), R12
	VXORPS X11, X11, X11

IQ1_Msb:
	VPXOR Y5, Y5, Y5
	VPXOR Y4, Y4, Y4
	// chunk 0
	VPMOVZXBD    0(R10), X9
	MOVWLZX      32(R10), CX
	VMOVD        CX, X7
	VPBROADCASTD X7, X7
	VPSRLVD      lbD<>+64(SB), X7, X7
	VPAND        lbD<>+96(SB), X7, X8
	VPSLLD       $8, X8, X8
	VPOR         X8, X9, X9
	VPAND        lbD<>+112(SB), X7, X3
	VPCMPEQD     lbD<>+112(SB), X3, X3
	VPMOVSXDQ    X3, Y3
	GATHERQ
	VPADDB       Y15, Y6, Y6
	VPADDB       Y3, Y6, Y6
	VPADDB       Y3, Y6, Y6
	MOVWLZX      48(R10), CX
	SHRL         $0, CX
	MOVL         CX, BX
	ANDL         $7, BX
	SHRL         $3, CX
	ANDL         $7, CX
	SC16
	LBDOT(4, 0)
	// chunk 1
	VPMOVZXBD    4(R10), X9
	MOVWLZX      34(R10), CX
	VMOVD        CX, X7
	VPBROADCASTD X7, X7
	VPSRLVD      lbD<>+64(SB), X7, X7
	VPAND        lbD<>+96(SB), X7, X8
	VPSLLD       $8, X8, X8
	VPOR         X8, X9, X9
	VPAND        lbD<>+112(SB), X7, X3
	VPCMPEQD     lbD<>+112(SB), X3, X3
	VPMOVSXDQ    X3, Y3
	GATHERQ
	VPADDB       Y15, Y6, Y6
	VPADDB       Y3, Y6, Y6
	VPADDB       Y3, Y6, Y6
	MOVWLZX      48(R10), CX
	SHRL         $6, CX
	MOVL         CX, BX
	ANDL         $7, BX
	SHRL         $3, CX
	ANDL         $7, CX
	SC16
	LBDOT(36, 32)
	// chunk 2
	VPMOVZXBD    8(R10), X9
	MOVWLZX      36(R10), CX
	VMOVD        CX, X7
	VPBROADCASTD X7, X7
	VPSRLVD      lbD<>+64(SB), X7, X7
	VPAND        lbD<>+96(SB), X7, X8
	VPSLLD       $8, X8, X8
	VPOR         X8, X9, X9
	VPAND        lbD<>+112(SB), X7, X3
	VPCMPEQD     lbD<>+112(SB), X3, X3
	VPMOVSXDQ    X3, Y3
	GATHERQ
	VPADDB       Y15, Y6, Y6
	VPADDB       Y3, Y6, Y6
	VPADDB       Y3, Y6, Y6
	MOVWLZX      50(R10), CX
	SHRL         $0, CX
	MOVL         CX, BX
	ANDL         $7, BX
	SHRL         $3, CX
	ANDL         $7, CX
	SC16
	LBDOT(68, 64)
	// chunk 3
	VPMOVZXBD    12(R10), X9
	MOVWLZX      38(R10), CX
	VMOVD        CX, X7
	VPBROADCASTD X7, X7
	VPSRLVD      lbD<>+64(SB), X7, X7
	VPAND        lbD<>+96(SB), X7, X8
	VPSLLD       $8, X8, X8
	VPOR         X8, X9, X9
	VPAND        lbD<>+112(SB), X7, X3
	VPCMPEQD     lbD<>+112(SB), X3, X3
	VPMOVSXDQ    X3, Y3
	GATHERQ
	VPADDB       Y15, Y6, Y6
	VPADDB       Y3, Y6, Y6
	VPADDB       Y3, Y6, Y6
	MOVWLZX      50(R10), CX
	SHRL         $6, CX
	MOVL         CX, BX
	ANDL         $7, BX
	SHRL         $3, CX
	ANDL         $7, CX
	SC16
	LBDOT(100, 96)
	// chunk 4
	VPMOVZXBD    16(R10), X9
	MOVWLZX      40(R10), CX
	VMOVD        CX, X7
	VPBROADCASTD X7, X7
	VPSRLVD      lbD<>+64(SB), X7, X7
	VPAND        lbD<>+96(SB), X7, X8
	VPSLLD       $8, X8, X8
	VPOR         X8, X9, X9
	VPAND        lbD<>+112(SB), X7, X3
	VPCMPEQD     lbD<>+112(SB), X3, X3
	VPMOVSXDQ    X3, Y3
	GATHERQ
	VPADDB       Y15, Y6, Y6
	VPADDB       Y3, Y6, Y6
	VPADDB       Y3, Y6, Y6
	MOVWLZX      52(R10), CX
	SHRL         $0, CX
	MOVL         CX, BX
	ANDL         $7, BX
	SHRL         $3, CX
	ANDL         $7, CX
	SC16
	LBDOT(132, 128)
	// chunk 5
	VPMOVZXBD    20(R10), X9
	MOVWLZX      42(R10), CX
	VMOVD        CX, X7
	VPBROADCASTD X7, X7
	VPSRLVD      lbD<>+64(SB), X7, X7
	VPAND        lbD<>+96(SB), X7, X8
	VPSLLD       $8, X8, X8
	VPOR         X8, X9, X9
	VPAND        lbD<>+112(SB), X7, X3
	VPCMPEQD     lbD<>+112(SB), X3, X3
	VPMOVSXDQ    X3, Y3
	GATHERQ
	VPADDB       Y15, Y6, Y6
	VPADDB       Y3, Y6, Y6
	VPADDB       Y3, Y6, Y6
	MOVWLZX      52(R10), CX
	SHRL         $6, CX
	MOVL         CX, BX
	ANDL         $7, BX
	SHRL         $3, CX
	ANDL         $7, CX
	SC16
	LBDOT(164, 160)
	// chunk 6
	VPMOVZXBD    24(R10), X9
	MOVWLZX      44(R10), CX
	VMOVD        CX, X7
	VPBROADCASTD X7, X7
	VPSRLVD      lbD<>+64(SB), X7, X7
	VPAND        lbD<>+96(SB), X7, X8
	VPSLLD       $8, X8, X8
	VPOR         X8, X9, X9
	VPAND        lbD<>+112(SB), X7, X3
	VPCMPEQD     lbD<>+112(SB), X3, X3
	VPMOVSXDQ    X3, Y3
	GATHERQ
	VPADDB       Y15, Y6, Y6
	VPADDB       Y3, Y6, Y6
	VPADDB       Y3, Y6, Y6
	MOVWLZX      54(R10), CX
	SHRL         $0, CX
	MOVL         CX, BX
	ANDL         $7, BX
	SHRL         $3, CX
	ANDL         $7, CX
	SC16
	LBDOT(196, 192)
	// chunk 7
	VPMOVZXBD    28(R10), X9
	MOVWLZX      46(R10), CX
	VMOVD        CX, X7
	VPBROADCASTD X7, X7
	VPSRLVD      lbD<>+64(SB), X7, X7
	VPAND        lbD<>+96(SB), X7, X8
	VPSLLD       $8, X8, X8
	VPOR         X8, X9, X9
	VPAND        lbD<>+112(SB), X7, X3
	VPCMPEQD     lbD<>+112(SB), X3, X3
	VPMOVSXDQ    X3, Y3
	GATHERQ
	VPADDB       Y15, Y6, Y6
	VPADDB       Y3, Y6, Y6
	VPADDB       Y3, Y6, Y6
	MOVWLZX      54(R10), CX
	SHRL         $6, CX
	MOVL         CX, BX
	ANDL         $7, BX
	SHRL         $3, CX
	ANDL         $7, CX
	SC16
	LBDOT(228, 224)
	MOVWLZX 48(R10), DX
	SHRL    $12, DX
	MOVWLZX 50(R10), BX
	SHRL    $8, BX
	ANDL    $0xf0, BX
	ORL     BX, DX
	MOVWLZX 52(R10), BX
	SHRL    $4, BX
	ANDL    $0xf00, BX
	ORL     BX, DX
	MOVWLZX 54(R10), BX
	ANDL    $0xf000, BX
	ORL     BX, DX
	LBFIN

	ADDQ $56, R10
	ADDQ $292, R11
	ADDQ $256, R13
	DECQ R12
	JNZ  IQ1_Msb
	VMULSS lbD<>+136(SB), X11, X11
	VMOVSS X11, (R9)
	ADDQ   $4, R9
	ADDQ   8(DI), SI
	DECQ   R8
	JMP    IQ1_Mrow

IQ1_Mdone:
	VZEROUPPER
	RET

