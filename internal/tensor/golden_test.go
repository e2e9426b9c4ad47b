package tensor_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/tensor"
	"github.com/kvserve/kvserve/internal/testassets"
)

// llama.cpp's own quantizer (no importance matrix) turned kvtest-27m-f16
// into these files. Quantizing each f16 tensor ourselves, row by row through
// float32, must give exactly llama.cpp's bytes.
func TestGoldenLlamaCppQuantizer(t *testing.T) {
	src, err := gguf.Open(testassets.Path(t, "models/kvtest-27m-f16.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, ft := range []string{"Q8_0", "Q5_K_M", "Q4_K_M"} {
		t.Run(ft, func(t *testing.T) {
			q, err := gguf.Open(testassets.Path(t, "models/llamacpp-quantized/kvtest-27m-"+ft+".gguf"))
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			seen := map[tensor.Type]int{}
			for i := range q.Tensors {
				qt := &q.Tensors[i]
				if qt.Type == tensor.F32 {
					continue // norms are copied, not quantized
				}
				st, ok := src.Tensor(qt.Name)
				if !ok {
					t.Fatalf("%s missing from the f16 model", qt.Name)
				}
				if st.Type != tensor.F16 {
					t.Fatalf("%s: source type %s", qt.Name, st.Type)
				}
				if err := compareTensor(src.TensorData(st), q.TensorData(qt), qt.Type, int(qt.Dims[0]), int(qt.Rows())); err != nil {
					t.Errorf("%s (%s): %v", qt.Name, qt.Type, err)
				}
				seen[qt.Type]++
			}
			t.Logf("%s: tensors checked per type: %v", ft, seen)
		})
	}
}

func compareTensor(f16data, want []byte, typ tensor.Type, n, rows int) error {
	f32 := make([]float32, n)
	got := make([]byte, typ.RowSize(n))
	rs := typ.RowSize(n)
	bad := 0
	first := ""
	for r := 0; r < rows; r++ {
		if err := tensor.Dequantize(tensor.F16, f16data[r*2*n:(r+1)*2*n], f32); err != nil {
			return err
		}
		if err := tensor.Quantize(typ, f32, got); err != nil {
			return err
		}
		w := want[r*rs : (r+1)*rs]
		if !bytes.Equal(got, w) {
			if bad == 0 {
				bs := typ.TypeSize()
				for b := 0; b < rs/bs; b++ {
					if !bytes.Equal(got[b*bs:(b+1)*bs], w[b*bs:(b+1)*bs]) {
						first = fmt.Sprintf("row %d block %d:\n got %x\nwant %x", r, b, got[b*bs:(b+1)*bs], w[b*bs:(b+1)*bs])
						break
					}
				}
			}
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d rows differ; first: %s", bad, rows, first)
	}
	return nil
}
