package kernels

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"

	"github.com/kvserve/kvserve/internal/cpu"
)

// TestAccumKernelVariants calls every (heads, vectors) variant of the
// AccumRows kernels directly — full, partial and single-lane last vectors —
// on a column block that starts 8 columns into the rows (so the AVX2
// kernel's last vector may reach back), checks it against the model, that
// the columns outside the block are untouched, and that the first shape
// past each cap is refused without writing: the Go caps and the generated
// variants agree.
func TestAccumKernelVariants(t *testing.T) {
	forLevels(t, func(t *testing.T, lv cpu.Level) {
		if lv == cpu.Generic {
			t.Skip("assembly only")
		}
		r := rand.New(rand.NewPCG(23, uint64(lv)))
		L, caps := 16, &accumMaxVec512
		if lv == cpu.AVX2 {
			L, caps = 8, &accumMaxVec256
		}
		for _, at := range accumTypes {
			t.Run(strings.ToLower(at.name), func(t *testing.T) {
				typ := map[string]wtype{"F32": wF32, "F16": wF16, "BF16": wBF16}[at.name]
				for G := 1; G <= 8; G++ {
					for b := 1; b <= caps[G]+1; b++ {
						for _, cols := range []int{L * b, L*b - 1, L*(b-1) + 1} {
							const c0, n = 8, 5
							dim := c0 + cols + 3
							stride := dim + 1
							v := randVec(r, (n-1)*stride+dim)
							wf, _ := at.make(v)
							var rows unsafe.Pointer
							switch typ {
							case wF32:
								rows = unsafe.Pointer(&wf[0])
							case wF16:
								h, _ := toF16(v)
								rows = unsafe.Pointer(&h[0])
							default:
								h, _ := toBF16(v)
								rows = unsafe.Pointer(&h[0])
							}
							lda := n + 2
							a := randVec(r, (G-1)*lda+n)
							y0 := randVec(r, G*dim)
							y := append([]float32(nil), y0...)
							ok := accumKernel(lv, typ, &y[c0], dim, &a[0], lda, unsafe.Add(rows, c0*typ.size()), stride, n, G, cols)
							if b > caps[G] {
								if ok {
									t.Fatalf("%s G=%d b=%d beyond the cap %d: kernel accepted it", at.name, G, b, caps[G])
								}
								for i := range y {
									if math.Float32bits(y[i]) != math.Float32bits(y0[i]) {
										t.Fatalf("%s G=%d b=%d refused but wrote y[%d]", at.name, G, b, i)
									}
								}
								continue
							}
							if !ok {
								t.Fatalf("%s G=%d b=%d cols=%d: no variant", at.name, G, b, cols)
							}
							for g := 0; g < G; g++ {
								model, _, _ := accumModel(lv, y0[g*dim:(g+1)*dim], a[g*lda:g*lda+n], wf, stride)
								for d := 0; d < dim; d++ {
									want := y0[g*dim+d]
									if d >= c0 && d < c0+cols {
										want = model[d]
									}
									if got := y[g*dim+d]; math.Float32bits(got) != math.Float32bits(want) {
										t.Fatalf("%s G=%d b=%d cols=%d head %d d=%d: got %g want %g", at.name, G, b, cols, g, d, got, want)
									}
								}
							}
						}
					}
				}
			})
		}
	})
}
