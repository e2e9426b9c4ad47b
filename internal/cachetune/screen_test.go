package cachetune

import (
	"os"
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/testassets"
)

// A session on the embedded model at a tiny context: the f16 setting
// measured against its own base has (almost) no divergence, the screen
// has every layer's K and V with a real damage each, and a measurement
// asking more chunks than the base holds is refused.
func TestSession(t *testing.T) {
	text, err := os.ReadFile(testassets.Path(t, "eval/dev.txt"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.LoadWith("", 1, engine.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	co := engine.DefaultCacheOptions()
	co.KeyChannels, co.KeyEncode = "centre", "query"
	s, err := NewSession(e, string(text[:20000]), Options{Ctx: 64, Chunks: 1, BaseChunks: 2, Cache: co})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RunBase(); err != nil {
		t.Fatal(err)
	}
	if s.BaseChunks != 2 || s.BasePPL <= 1 {
		t.Fatalf("base: %d chunks, PPL %v", s.BaseChunks, s.BasePPL)
	}
	res, err := s.Measure(engine.DefaultCacheOptions(), 2)
	if err != nil || res.KL.MeanKLD > 1e-6 || res.KL.SameTop != 1 {
		t.Fatalf("f16 against its own base: %+v, %v", res.KL, err)
	}
	items, err := s.Screen()
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2*e.Model.NLayer {
		t.Fatalf("%d screen items", len(items))
	}
	for i, it := range items {
		side := "K"
		if i >= e.Model.NLayer {
			side = "V"
		}
		if it.Side != side || it.Layer != i%e.Model.NLayer || it.KLD <= 1e-6 || it.Weight != float64(e.Model.NHeadKV*e.Model.HeadDim) {
			t.Errorf("item %d: %+v", i, it)
		}
	}
	if _, err := s.Measure(co, 3); err == nil {
		t.Error("3 chunks measured against a base of 2")
	}
	path := s.BasePath()
	s.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("base file left behind: %v", err)
	}
	if _, err := NewSession(e, "too short", Options{Ctx: 64, Chunks: 1}); err == nil {
		t.Error("a text shorter than a chunk accepted")
	}
}
