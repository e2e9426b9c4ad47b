package bench

import (
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
)

// TestRunParallel runs the tg test with several sequences decoding at once
// on the embedded model: one result per test, named and counted as such
// (no timing is checked).
func TestRunParallel(t *testing.T) {
	e, err := engine.LoadWith("", 2, engine.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	res, err := Run(e, Options{Gen: 3, Reps: 1, Parallel: 3, Cache: engine.CacheOptions{TypeK: "f16", TypeV: "f16"}}, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 {
		t.Fatalf("%d results, want 1", len(res))
	}
	r := res[0]
	if r.Test != "tg3×3" || r.Parallel != 3 || r.Tokens != 3 || len(r.Samples) != 1 || r.TPS <= 0 || r.BytesPerTok <= 0 {
		t.Errorf("result %+v", r)
	}
}

// TestRunVerifyPass runs the prompt test as a verification pass (logits at
// every token) at a depth: named pv, counted as such (no timing is checked).
func TestRunVerifyPass(t *testing.T) {
	e, err := engine.LoadWith("", 2, engine.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	res, err := Run(e, Options{Prompt: 5, Depths: []int{16}, Reps: 2, AllLogits: true, Cache: engine.CacheOptions{TypeK: "f16", TypeV: "f16"}}, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 {
		t.Fatalf("%d results, want 1", len(res))
	}
	if r := res[0]; r.Test != "pv5@d16" || r.Tokens != 5 || r.Depth != 16 || len(r.Samples) != 2 || r.TPS <= 0 {
		t.Errorf("result %+v", r)
	}
}
