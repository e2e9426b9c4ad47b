package server

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/synth"
	"github.com/kvserve/kvserve/models"
)

// writeTestLora writes synth.TestLoraAdapter for the embedded model.
func writeTestLora(t *testing.T) string {
	t.Helper()
	src, err := gguf.Parse(models.Default())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "adapter.gguf")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := synth.TestLoraAdapter(src, out); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoraAdapters(t *testing.T) {
	adapter := writeTestLora(t)
	body := map[string]any{"prompt": "Once upon a time", "n_predict": 16, "temperature": 0}
	_, base := newTestServer(t, Options{})
	plain := postOK(t, base.URL+"/completion", body)["content"]

	// A fresh engine: adapters change the model they are attached to.
	e, err := engine.Load("", 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	s := New(Options{Engine: e, Ctx: 1024, Logger: quietLog, Lora: []LoraAdapter{{Path: adapter, Scale: 1}}})
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	ts := newHTTPTest(t, s)
	st, b := get(t, ts.URL+"/lora-adapters")
	if st != 200 || !strings.Contains(string(b), `"id":0`) || !strings.Contains(string(b), `"scale":1`) || !strings.Contains(string(b), "adapter.gguf") {
		t.Fatalf("GET /lora-adapters: %d %s", st, b)
	}
	with := postOK(t, ts.URL+"/completion", body)["content"]
	if with == plain {
		t.Fatalf("the adapter changed nothing: %q", with)
	}
	// Scale 0 (by leaving the adapter out): the base model's text, with
	// nothing reused from the cache filled under the old scale.
	postOK(t, ts.URL+"/lora-adapters", []any{})
	r := postOK(t, ts.URL+"/completion", body)
	if r["content"] != plain || cacheN(r) != 0 {
		t.Errorf("scale 0: %q (cached %v), want %q", r["content"], r["tokens_cached"], plain)
	}
	postOK(t, ts.URL+"/lora-adapters", []any{map[string]any{"id": 0, "scale": 1}})
	if got := postOK(t, ts.URL+"/completion", body)["content"]; got != with {
		t.Errorf("scale 1 again: %q, want %q", got, with)
	}
	for _, bad := range []any{[]any{map[string]any{"id": 1, "scale": 1}}, []any{map[string]any{"id": 0}}, map[string]any{"x": 1}, "s"} {
		st, b := post(t, ts.URL+"/lora-adapters", bad)
		wantError(t, "bad lora-adapters body", st, b, http.StatusBadRequest, TypeInvalidRequest)
	}
	// The per-request field: bad lists are refused.
	for _, bad := range []any{[]any{map[string]any{"id": 1, "scale": 1}}, []any{map[string]any{"id": 0}}, map[string]any{"id": 0}, "s"} {
		st, b = post(t, ts.URL+"/completion", map[string]any{"prompt": "x", "lora": bad})
		wantError(t, "bad per-request lora", st, b, http.StatusBadRequest, TypeInvalidRequest)
	}

	// A file that is not an adapter fails the load, naming it.
	model := filepath.Join(t.TempDir(), "model.gguf")
	os.WriteFile(model, models.Default(), 0o644)
	e2, err := engine.Load("", 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e2.Close)
	s2 := New(Options{Engine: e2, Ctx: 256, Logger: quietLog, Lora: []LoraAdapter{{Path: model, Scale: 1}}})
	if err := s2.Load(); err == nil || !strings.Contains(err.Error(), "not a LoRA adapter") {
		t.Errorf("loading a model as an adapter: %v", err)
	}
	s2.Close()
}

// The per-request "lora" field: the request runs with its own scales
// (adapters it leaves out off), whatever the server's; requests with
// different scales share batches and each gets what it would alone; a
// cached prefix computed under other scales is not reused.
func TestRequestLora(t *testing.T) {
	adapter := writeTestLora(t)
	body := func(lora any) map[string]any {
		b := map[string]any{"prompt": "Once upon a time", "n_predict": 16, "temperature": 0}
		if lora != nil {
			b["lora"] = lora
		}
		return b
	}
	_, base := newTestServer(t, Options{})
	plain := postOK(t, base.URL+"/completion", body(nil))["content"]
	if st, b := post(t, base.URL+"/completion", body([]any{map[string]any{"id": 0, "scale": 1}})); st != 400 {
		t.Errorf("lora with no adapter loaded: %d %s", st, b)
	}
	postOK(t, base.URL+"/completion", body([]any{})) // nothing to turn off
	if r := postOK(t, base.URL+"/completion", body([]any{})); cacheN(r) == 0 {
		t.Errorf(`"lora": [] with no adapter loaded: the cached prompt was not reused`)
	}

	e, err := engine.Load("", 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	s := New(Options{Engine: e, Ctx: 2048, Slots: 2, Logger: quietLog, Lora: []LoraAdapter{{Path: adapter, Scale: 1}}})
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	ts := newHTTPTest(t, s)
	with := postOK(t, ts.URL+"/completion", body(nil))["content"]
	if with == plain {
		t.Fatalf("the adapter changed nothing: %q", with)
	}
	off := []any{map[string]any{"id": 0, "scale": 0}}
	for _, c := range []struct {
		name string
		lora any
		want any
	}{
		{"scale 0", off, plain},
		{"left out", []any{}, plain},
		{"scale 1", []any{map[string]any{"id": 0, "scale": 1}}, with},
		{"server's", nil, with},
		{"scale 0 again", off, plain},
	} {
		r := postOK(t, ts.URL+"/completion", map[string]any{"prompt": "Once upon a time", "n_predict": 16, "temperature": 0, "lora": c.lora, "id_slot": 0})
		if r["content"] != c.want {
			t.Errorf("%s: %q, want %q", c.name, r["content"], c.want)
		}
		if c.name == "scale 0" || c.name == "scale 1" || c.name == "server's" {
			if cacheN(r) != 0 { // the slot's cache was computed under other scales
				t.Errorf("%s: %v prompt tokens reused from a cache under other scales", c.name, cacheN(r))
			}
		}
		if c.lora != nil {
			gs := r["generation_settings"].(map[string]any)["lora"].([]any)
			if len(gs) != 1 || num(gs[0].(map[string]any)["scale"]) != map[bool]float64{true: 0, false: 1}[c.want == plain] {
				t.Errorf("%s: generation_settings.lora %v", c.name, gs)
			}
		}
	}
	// Both at once, in one batch: each its own text.
	type res struct {
		i       int
		content any
	}
	out := make(chan res, 4)
	for i := range 4 {
		go func() {
			var lora any = off
			if i%2 == 1 {
				lora = nil
			}
			_, b := post(t, ts.URL+"/completion", map[string]any{"prompt": "Once upon a time", "n_predict": 16, "temperature": 0, "lora": lora, "cache_prompt": false})
			out <- res{i, obj(t, b)["content"]}
		}()
	}
	for range 4 {
		r := <-out
		want := plain
		if r.i%2 == 1 {
			want = with
		}
		if r.content != want {
			t.Errorf("concurrent request %d: %q, want %q", r.i, r.content, want)
		}
	}
}
