package qkernels

// Q5_K in the row-lane layout (lanes.go): Q4_K's record with the 32 qh
// bytes as a plane of their own, per group of 16 rows and super-block s a
// record of 2880 bytes (16·180: the file's 16·176 and 64 bytes for the
// unpacked 6-bit scales and mins) at s·2880:
//
//	quants: offset 512p + 64j + 4r + i (p, j < 4, 8) = row r's qs[32p+4j+i]
//	        (low nibble: sub-block 2p, high nibble: sub-block 2p+1)
//	qh:     offset 2048 + 64j + 4r + i = row r's qh[4j+i] (bit 2p: the
//	        fifth bit of the low nibble of qs[32p+4j+i], bit 2p+1: of the
//	        high nibble)
//	scales: offset 2560 + 16k + r, mins: offset 2688 + 16k + r (6 bits)
//	d:      offset 2816 + 2r, dmin: offset 2848 + 2r (binary16)
//
// The prepared activations are Q4_K's (296 bytes per super-block), and the
// kernels run tensor.VecDot's steps as the Q4_K ones do.

const laneRecQ5_K = 2880

func packLaneQ5_K(rec []byte, r int, blk []byte) {
	scatterDwords(rec[4*r:], blk[48:176], 32, 64, 0)
	scatterDwords(rec[2048+4*r:], blk[16:48], 8, 64, 0)
	for k := 0; k < 8; k++ {
		sc, mn := scaleMinK4(k, blk[4:16])
		rec[2560+16*k+r], rec[2688+16*k+r] = sc, mn
	}
	copy(rec[2816+2*r:2816+2*r+2], blk[0:2])
	copy(rec[2848+2*r:2848+2*r+2], blk[2:4])
}

func unpackLaneQ5_K(rec []byte, r int, blk []byte) {
	gatherDwords(blk[48:176], rec[4*r:], 32, 64, 0)
	gatherDwords(blk[16:48], rec[2048+4*r:], 8, 64, 0)
	var ls, lm [8]uint8
	for k := 0; k < 8; k++ {
		ls[k], lm[k] = rec[2560+16*k+r], rec[2688+16*k+r]
	}
	putScalesK4(blk[4:16], &ls, &lm)
	copy(blk[0:2], rec[2816+2*r:])
	copy(blk[2:4], rec[2848+2*r:])
}

// putScalesK4 writes the 8 6-bit scales and mins in ggml's 12-byte packing
// (scaleMinK4's inverse).
func putScalesK4(s []byte, ls, lm *[8]uint8) {
	clear(s[:12])
	for j := 0; j < 8; j++ {
		if j < 4 {
			s[j] = ls[j]
			s[j+4] = lm[j]
		} else {
			s[j+4] = ls[j]&0x0f | (lm[j]&0x0f)<<4
			s[j-4] |= (ls[j] >> 4) << 6
			s[j] |= (lm[j] >> 4) << 6
		}
	}
}
