//go:build amd64

package qkernels

import (
	"testing"
	"unsafe"

	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/tensor"
)

// TestAccumMultiCaps checks that the kernels have a variant for every
// (heads, blocks) pair accumMulti may ask for, and report the first pairs
// beyond the Go caps as missing (so the caps equal gen/main.go's).
func TestAccumMultiCaps(t *testing.T) {
	kern := map[cpu.Level]map[tensor.Type]func(*karg){
		cpu.AVX512: {tensor.Q8_0: accumMultiQ8_0AVX512, tensor.Q4_0: accumMultiQ4_0AVX512, tensor.Q4_1: accumMultiQ4_1AVX512,
			tensor.Q5_0: accumMultiQ5_0AVX512, tensor.Q5_1: accumMultiQ5_1AVX512, tensor.IQ4_NL: accumMultiIQ4_NLAVX512},
		cpu.AVX2: {tensor.Q8_0: accumMultiQ8_0AVX2, tensor.Q4_0: accumMultiQ4_0AVX2, tensor.Q4_1: accumMultiQ4_1AVX2,
			tensor.Q5_0: accumMultiQ5_0AVX2, tensor.Q5_1: accumMultiQ5_1AVX2, tensor.IQ4_NL: accumMultiIQ4_NLAVX2},
	}
	rows := make([]byte, 34*8)
	a := make([]float32, 8)
	y := make([]float32, 8*256)
	for _, lv := range cpu.Block.Levels()[1:] {
		t.Run(lv.String(), func(t *testing.T) {
			for _, ty := range legacyTypes {
				t.Run(ty.String(), func(t *testing.T) {
					for G := 1; G <= 8; G++ {
						// try runs one row through variant (G, code) and reports
						// whether it exists.
						try := func(code int) bool {
							ka := karg{w: ptr(rows), rows: 1, nb: code, n2: G, x: unsafe.Pointer(&a[0]),
								ts: 4, y: unsafe.Pointer(&y[0]), ustride: 4 * 256}
							kern[lv][ty](&ka)
							return ka.rows >= 0
						}
						var have, missing []int
						switch {
						case lv == cpu.AVX512:
							for B := 1; B <= accumMultiCaps512[G]; B++ {
								have = append(have, B)
							}
							missing = []int{accumMultiCaps512[G] + 1}
						case G > accumMultiHeads256:
							missing = []int{1, 8}
						case accumMultiCaps256[G] == 0:
							have, missing = []int{8, 9}, []int{1}
						default:
							for B := 1; B <= accumMultiCaps256[G]; B++ {
								have = append(have, B)
							}
							missing = []int{accumMultiCaps256[G] + 1, 8}
						}
						for _, c := range have {
							if !try(c) {
								t.Errorf("%v %s: no kernel for %d heads, code %d", lv, ty, G, c)
							}
						}
						for _, c := range missing {
							if try(c) {
								t.Errorf("%v %s: a kernel for %d heads, code %d, beyond the Go caps", lv, ty, G, c)
							}
						}
					}
				})
			}
		})
	}
}
