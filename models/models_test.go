package models_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/kvserve/kvserve/internal/quantize"
	"github.com/kvserve/kvserve/internal/testassets"
	"github.com/kvserve/kvserve/models"
)

// The embedded model is exactly what `kvserve quantize` makes of the f16
// test model (so it can be rebuilt, and is llama.cpp's Q8_0 byte for byte).
func TestEmbeddedModelIsReproducible(t *testing.T) {
	src := testassets.Path(t, "models/kvtest-27m-f16.gguf")
	out := filepath.Join(t.TempDir(), "q8.gguf")
	if err := quantize.Run(src, out, "Q8_0", 0, nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, models.Default()) {
		t.Fatalf("embedded %s differs from kvserve quantize output (%d vs %d bytes): regenerate it with\n  kvserve quantize ../shared/models/kvtest-27m-f16.gguf models/%s Q8_0",
			models.DefaultName, len(models.Default()), len(b), models.DefaultName)
	}
}
