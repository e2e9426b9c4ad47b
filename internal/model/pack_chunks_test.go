package model

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/kvserve/kvserve/internal/ops"
	"github.com/kvserve/kvserve/internal/tensor"
)

// Packing a matrix in chunks of rows (so that the file pages of each chunk
// can be released as soon as it is packed) gives the same bytes as packing
// it whole, for every weight type this machine packs, with a ragged last
// group of rows, and reports every byte of the rows as read by the end.
func TestPackChunksEqualsPack(t *testing.T) {
	const m, k = 16*5 + 3, 512
	rng := rand.New(rand.NewPCG(3, 4))
	tested := 0
	for _, ty := range tensor.TypesFor(tensor.Weight) {
		if !ops.CanPack(ty, k) {
			continue
		}
		ldw := ty.RowSize(k)
		w := make([]byte, m*ldw)
		for i := range w {
			w[i] = byte(rng.IntN(256))
		}
		if ty.Family() == tensor.FloatKernels { // finite values: no NaN payloads
			for i := range w {
				w[i] &= 0x3f
			}
		}
		want := make([]byte, ops.PackedSize(ty, m, k))
		ops.Pack(ty, want, w, ldw, m, k)
		for _, chunk := range []int{1, 20 * ldw, 40 * ldw, 1 << 30} {
			got := make([]byte, len(want))
			last := 0
			packChunks(ty, got, w, ldw, m, k, chunk, func(end int) {
				if end <= last {
					t.Errorf("%s chunk %d: done(%d) after done(%d)", ty, chunk, end, last)
				}
				last = end
			})
			if !bytes.Equal(got, want) {
				t.Errorf("%s: packed in chunks of %d bytes differs from packed whole", ty, chunk)
			}
			if last != len(w) {
				t.Errorf("%s chunk %d: done up to %d of %d bytes", ty, chunk, last, len(w))
			}
		}
		tested++
	}
	t.Logf("%d packable weight types", tested)
	if tested == 0 {
		t.Skip("no weight type is packed on this machine")
	}
}
