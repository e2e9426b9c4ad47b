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
