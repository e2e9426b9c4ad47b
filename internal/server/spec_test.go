package server

import (
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/testassets"
)

const specPrompt = "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n\ndef add(a, b):\n"

// A server with prompt lookup answers what a server without it answers
// (greedy), and reports llama-server's draft_n / draft_n_accepted timings;
// speculative.n_max 0 turns speculation off for a request.
func TestSpecLookupServer(t *testing.T) {
	_, plain := newTestServer(t, Options{})
	_, spec := newTestServer(t, Options{Spec: &engine.SpecOptions{Lookup: true}})
	body := map[string]any{"prompt": specPrompt, "n_predict": 32, "temperature": 0, "ignore_eos": true}
	want := postOK(t, plain.URL+"/completion", body)
	got := postOK(t, spec.URL+"/completion", body)
	if got["content"] != want["content"] {
		t.Errorf("with speculation %q, without %q", got["content"], want["content"])
	}
	tm := got["timings"].(map[string]any)
	if num(tm["draft_n"]) <= 0 || num(tm["draft_n_accepted"]) <= 0 || num(tm["draft_n_accepted"]) > num(tm["draft_n"]) {
		t.Errorf("timings %v", tm)
	}
	if _, ok := want["timings"].(map[string]any)["draft_n"]; ok {
		t.Errorf("draft_n reported without speculation")
	}
	body["speculative.n_max"] = 0
	off := postOK(t, spec.URL+"/completion", body)
	if _, ok := off["timings"].(map[string]any)["draft_n"]; ok || off["content"] != want["content"] {
		t.Errorf("speculative.n_max 0: %v", off)
	}
	props := obj(t, mustGet(t, spec.URL+"/props"))
	if sp, _ := props["speculative"].(map[string]any); sp["type"] != "ngram" {
		t.Errorf("props speculative: %v", props["speculative"])
	}
}

// A draft model's cache is a cache like the target's: /cache/usage reports
// it, /cache/requantize converts it, and the output does not change.
func TestSpecDraftServer(t *testing.T) {
	e := testEngine(t)
	path := "" // the embedded model drafts for itself
	if raceEnabled {
		// Its Q8_0 kernels are pure Go, slow under the race detector.
		path = testassets.Path(t, "models/kvtest-27m-f16.gguf")
	}
	d, err := engine.LoadDraft(path, e)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, plain := newTestServer(t, Options{})
	_, spec := newTestServer(t, Options{Spec: &engine.SpecOptions{Draft: d, DraftCache: engine.DefaultCacheOptions()}, Metrics: true})
	body := map[string]any{"prompt": "Once upon a time", "n_predict": 24, "temperature": 0, "ignore_eos": true}
	want := postOK(t, plain.URL+"/completion", body)
	got := postOK(t, spec.URL+"/completion", body)
	if got["content"] != want["content"] {
		t.Errorf("with a draft model %q, without %q", got["content"], want["content"])
	}
	if tm := got["timings"].(map[string]any); num(tm["draft_n"]) <= 0 {
		t.Errorf("timings %v", tm)
	}
	u := obj(t, mustGet(t, spec.URL+"/cache/usage"))
	dr, ok := u["draft"].(map[string]any)
	if !ok || num(dr["total_bytes"]) <= 0 || !strings.Contains(dr["model"].(string), "kvtest") {
		t.Fatalf("usage draft: %v", u["draft"])
	}
	before := num(dr["total_bytes"])
	rq := postOK(t, spec.URL+"/cache/requantize", map[string]any{"type_k": "q4_0", "type_v": "q4_0"})
	rd, ok := rq["draft"].(map[string]any)
	if !ok || num(rd["bytes_after"]) >= before || num(rd["pages_converted"]) <= 0 {
		t.Fatalf("requantize draft: %v", rq["draft"])
	}
	u = obj(t, mustGet(t, spec.URL+"/cache/usage"))
	dr = u["draft"].(map[string]any)
	if bt := dr["bytes_by_type"].(map[string]any); num(bt["q4_0"]) <= 0 || num(bt["f16"]) != 0 || num(dr["total_bytes"]) >= before {
		t.Errorf("draft cache after requantize: %v", dr["bytes_by_type"])
	}
	if m := string(mustGet(t, spec.URL+"/metrics")); !strings.Contains(m, "kvserve:draft_tokens_total") || !strings.Contains(m, "kvserve:kv_cache_draft_bytes") {
		t.Errorf("metrics without the draft counters")
	}
	// Generation goes on over the converted caches.
	if got := postOK(t, spec.URL+"/completion", body); got["content"] == "" {
		t.Errorf("no output after requantize")
	}
}

func mustGet(t *testing.T, url string) []byte {
	t.Helper()
	st, b := get(t, url)
	if st != 200 {
		t.Fatalf("GET %s: %d %s", url, st, b)
	}
	return b
}
