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

// The disk tier and prefix sharing are keyed by the adapters: a prompt's
// cache spilled under an adapter is not loaded by a server without it (or
// at another scale) — that server evaluates the prompt and answers as the
// base model — and is loaded again under the same adapter and scale.
func TestLoraKeysDiskTier(t *testing.T) {
	adapter := writeTestLora(t)
	dir := t.TempDir()
	co := engine.DefaultCacheOptions()
	co.PageTokens = 16
	a := strings.Repeat("The first conversation is about the sea. ", 4)
	body := map[string]any{"prompt": a, "n_predict": 8, "temperature": 0, "ignore_eos": true}
	other := map[string]any{"prompt": strings.Repeat("Another one, about mountains. ", 4), "n_predict": 8, "temperature": 0, "ignore_eos": true}
	serve := func(lora []LoraAdapter) string {
		e, err := engine.Load("", 2)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
		s := New(Options{Engine: e, Slots: 1, Ctx: 1024, Cache: co, CacheDisk: dir, Logger: quietLog, Lora: lora})
		if err := s.Load(); err != nil {
			t.Fatal(err)
		}
		return newHTTPTest(t, s).URL
	}
	// Reference answers, evaluated afresh.
	_, plainTS := newTestServer(t, Options{Slots: 1, Cache: co})
	plain := postOK(t, plainTS.URL+"/completion", body)["content"]

	withURL := serve([]LoraAdapter{{Path: adapter, Scale: 1}})
	with := postOK(t, withURL+"/completion", body)["content"]
	if with == plain {
		t.Fatalf("the adapter changed nothing: %q", with)
	}
	postOK(t, withURL+"/completion", other) // spills the first prompt's cache
	// Scale 0.5 live, then back to 1: the entry is loaded only at scale 1.
	postOK(t, withURL+"/lora-adapters", []any{map[string]any{"id": 0, "scale": 0.5}})
	if r := postOK(t, withURL+"/completion", body); cacheN(r) != 0 || r["content"] == with {
		t.Errorf("scale 0.5: %q (cached %v): the scale-1 entry was served", r["content"], cacheN(r))
	}
	postOK(t, withURL+"/lora-adapters", []any{map[string]any{"id": 0, "scale": 1}})
	postOK(t, withURL+"/completion", other)
	if r := postOK(t, withURL+"/completion", body); cacheN(r) < 32 || r["content"] != with {
		t.Errorf("scale 1 again: %q (cached %v), want %q loaded from disk", r["content"], cacheN(r), with)
	}

	// A restarted server without the adapter: nothing loaded, the base answer.
	baseURL := serve(nil)
	if r := postOK(t, baseURL+"/completion", body); cacheN(r) != 0 || r["content"] != plain {
		t.Errorf("without the adapter: %q (cached %v), want %q evaluated afresh", r["content"], cacheN(r), plain)
	}
	// With it again: loaded, the adapter's answer.
	againURL := serve([]LoraAdapter{{Path: adapter, Scale: 1}})
	if r := postOK(t, againURL+"/completion", body); cacheN(r) < 32 || r["content"] != with {
		t.Errorf("with the adapter after a restart: %q (cached %v), want %q loaded from disk", r["content"], cacheN(r), with)
	}
}

// The per-request "lora" field: the request runs with its own scales
// (adapters it leaves out off), whatever the server's; requests with
// different scales share batches and each gets what it would alone; a
// cached prefix computed under other scales is not reused, one computed
// under the same scales (the request's own or the server's) is.
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
		if c.name == "scale 0" || c.name == "scale 1" {
			if cacheN(r) != 0 { // the slot's cache was computed under other scales
				t.Errorf("%s: %v prompt tokens reused from a cache under other scales", c.name, cacheN(r))
			}
		}
		if c.name == "server's" && cacheN(r) == 0 { // the server's scale is the previous request's own, 1
			t.Errorf("%s: the cache computed at the request's own scale 1 was not reused at the server's 1", c.name)
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
