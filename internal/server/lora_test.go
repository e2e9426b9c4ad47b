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
	if r["content"] != plain || num(r["tokens_cached"]) != 0 {
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
	// The per-request field stays refused.
	st, b = post(t, ts.URL+"/completion", map[string]any{"prompt": "x", "lora": []any{map[string]any{"id": 0, "scale": 0.5}}})
	wantError(t, "per-request lora", st, b, http.StatusBadRequest, TypeInvalidRequest)

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
