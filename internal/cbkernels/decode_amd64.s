//go:build amd64

#include "textflag.h"

// AVX2 (+F16C) decoders of the codebook types, bit-identical to
// tensor.DequantizeRow: per block the scale is converted exactly
// (VCVTPH2PS), the levels scaled by it with one float32 multiply each (as
// the reference computes d·L[k]), and each value looked up with VPERMPS
// (16 levels: two tables and a blend on the index's bit 3).

// func decodeCB4AVX2(dst *float32, src *byte, n int, levels *float32)
TEXT ·decodeCB4AVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ levels+24(FP), R8
	VMOVUPS (R8), Y14
	VMOVUPS 32(R8), Y15
	MOVL $15, AX
	VMOVD AX, X13
	VPBROADCASTD X13, Y13
	TESTQ CX, CX
	JEQ done4

loop4:
	MOVWLZX (SI), AX
	VMOVD AX, X0
	VCVTPH2PS X0, X0
	VBROADCASTSS X0, Y0
	VMULPS Y14, Y0, Y1
	VMULPS Y15, Y0, Y2

#define CB4CHUNK(off, out) \
	VPMOVZXBD off(SI), Y3 \
	VPAND Y13, Y3, Y4 \
	VPSRLD $4, Y3, Y5 \
	VPERMPS Y1, Y4, Y6 \
	VPERMPS Y2, Y4, Y7 \
	VPSLLD $28, Y4, Y8 \
	VBLENDVPS Y8, Y7, Y6, Y9 \
	VMOVUPS Y9, out(DI) \
	VPERMPS Y1, Y5, Y6 \
	VPERMPS Y2, Y5, Y7 \
	VPSLLD $28, Y5, Y8 \
	VBLENDVPS Y8, Y7, Y6, Y9 \
	VMOVUPS Y9, (out+128)(DI)

	CB4CHUNK(2, 0)
	CB4CHUNK(10, 32)
	CB4CHUNK(18, 64)
	CB4CHUNK(26, 96)

	ADDQ $34, SI
	ADDQ $256, DI
	DECQ CX
	JNZ loop4

done4:
	VZEROUPPER
	RET

// func decodeCB3AVX2(dst *float32, src *byte, n int, levels *float32)
TEXT ·decodeCB3AVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ levels+24(FP), R8
	VMOVUPS (R8), Y14
	MOVL $3, AX
	VMOVD AX, X13
	VPBROADCASTD X13, Y13
	MOVL $1, AX
	VMOVD AX, X12
	VPBROADCASTD X12, Y12
	TESTQ CX, CX
	JEQ done3

loop3:
	MOVWLZX (SI), AX
	VMOVD AX, X0
	VCVTPH2PS X0, X0
	VBROADCASTSS X0, Y0
	VMULPS Y14, Y0, Y1
	VPMOVZXBD 2(SI), Y2
	VPMOVZXBD 10(SI), Y3
	VPMOVZXBD 18(SI), Y4

// value 8m+t: low bits ql[8(m%2)+t] >> 2(m/2), high bit qh[t] >> m.
#define CB3CHUNK(ql, lsh, m, out) \
	VPSRLD $lsh, ql, Y5 \
	VPAND Y13, Y5, Y5 \
	VPSRLD $m, Y4, Y6 \
	VPAND Y12, Y6, Y6 \
	VPSLLD $2, Y6, Y6 \
	VPOR Y6, Y5, Y5 \
	VPERMPS Y1, Y5, Y7 \
	VMOVUPS Y7, out(DI)

	CB3CHUNK(Y2, 0, 0, 0)
	CB3CHUNK(Y3, 0, 1, 32)
	CB3CHUNK(Y2, 2, 2, 64)
	CB3CHUNK(Y3, 2, 3, 96)
	CB3CHUNK(Y2, 4, 4, 128)
	CB3CHUNK(Y3, 4, 5, 160)
	CB3CHUNK(Y2, 6, 6, 192)
	CB3CHUNK(Y3, 6, 7, 224)

	ADDQ $26, SI
	ADDQ $256, DI
	DECQ CX
	JNZ loop3

done3:
	VZEROUPPER
	RET

// func decodeCB2AVX2(dst *float32, src *byte, n int, levels *float32)
// levels: the 4 levels twice (VPERMPS reads 8).
TEXT ·decodeCB2AVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ levels+24(FP), R8
	VMOVUPS (R8), Y14
	MOVL $3, AX
	VMOVD AX, X13
	VPBROADCASTD X13, Y13
	TESTQ CX, CX
	JEQ done2

loop2:
	MOVWLZX (SI), AX
	VMOVD AX, X0
	VCVTPH2PS X0, X0
	VBROADCASTSS X0, Y0
	VMULPS Y14, Y0, Y1
	VPMOVZXBD 2(SI), Y2

#define CB2CHUNK(sh, out) \
	VPSRLD $sh, Y2, Y5 \
	VPAND Y13, Y5, Y5 \
	VPERMPS Y1, Y5, Y7 \
	VMOVUPS Y7, out(DI)

	CB2CHUNK(0, 0)
	CB2CHUNK(2, 32)
	CB2CHUNK(4, 64)
	CB2CHUNK(6, 96)

	ADDQ $10, SI
	ADDQ $128, DI
	DECQ CX
	JNZ loop2

done2:
	VZEROUPPER
	RET
