package server

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/synth"
)

// hybridServer serves the tiny-qwen3next preset (random weights, the
// embedded model's vocabulary).
func hybridServer(t *testing.T, o Options) *Server {
	t.Helper()
	p, err := synth.Lookup("tiny-qwen3next")
	if err != nil {
		t.Fatal(err)
	}
	ft, err := synth.ParseFileType("f16")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "hybrid.gguf")
	if err := synth.WriteFile(path, &synth.Options{Preset: p, Type: ft, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	e, err := engine.Load(path, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	o.Engine, o.Logger = e, quietLog
	if o.Ctx == 0 {
		o.Ctx = 1024
	}
	s := New(o)
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	return s
}

// A hybrid model's recurrent state is reported apart from the attention
// pages (/cache/usage, /props, /metrics), requantize converts only the
// attention pages and says the state stays f32, and a saved slot carries
// the state: restored into an emptied slot, the conversation continues
// from the cache with the same greedy tokens.
func TestHybridCacheEndpoints(t *testing.T) {
	dir := t.TempDir()
	ts := newHTTPTest(t, hybridServer(t, Options{Slots: 1, SlotSavePath: dir, Metrics: true, Cache: engine.DefaultCacheOptions()}))
	prompt := strings.Repeat("The history of the city begins with a small village on the river. ", 8)
	req := map[string]any{"prompt": prompt, "n_predict": 8, "temperature": 0, "id_slot": 0, "cache_prompt": true}
	postOK(t, ts.URL+"/completion", req)

	u := obj(t, must(get(t, ts.URL+"/cache/usage")))
	rs, ok := u["recurrent_state"].(map[string]any)
	if !ok {
		t.Fatalf("no recurrent_state in /cache/usage: %v", u)
	}
	if rs["type"] != "f32" || num(rs["bytes_per_slot"]) != num(rs["conv_bytes_per_slot"])+num(rs["ssm_bytes_per_slot"]) || num(rs["bytes_per_slot"]) <= 0 {
		t.Errorf("recurrent_state %v", rs)
	}
	layers := u["slots"].([]any)[0].(map[string]any)["layers"].([]any)
	if l0 := layers[0].(map[string]any); l0["kind"] != "recurrent" || num(l0["pages"]) != 0 {
		t.Errorf("layer 0: %v", l0)
	}
	if l3 := layers[3].(map[string]any); l3["kind"] != "full" || num(l3["pages"]) == 0 {
		t.Errorf("layer 3: %v", l3)
	}
	if p := obj(t, must(get(t, ts.URL+"/props"))); p["recurrent_state"] == nil {
		t.Error("no recurrent_state in /props")
	}
	if _, m := get(t, ts.URL+"/metrics"); !strings.Contains(string(m), `kv_cache_state_bytes{kind="live"}`) || !strings.Contains(string(m), `kv_cache_state_bytes_per_slot{kind="ssm"}`) {
		t.Error("no state bytes in /metrics")
	}
	rq := postOK(t, ts.URL+"/cache/requantize", map[string]any{"type_k": "q8_0", "type_v": "q8_0"})
	if r, ok := rq["recurrent_state"].(map[string]any); !ok || r["type"] != "f32" || !strings.Contains(r["note"].(string), "stays f32") {
		t.Errorf("requantize response: %v", rq)
	}
	for _, l := range rq["layers"].([]any) {
		if n := num(l.(map[string]any)["layer"]); int(n+1)%4 != 0 {
			t.Errorf("requantize converted recurrent layer %v", n)
		}
	}

	if st, _, b := slotAction(t, ts.URL, 0, "save", "h.bin"); st != 200 {
		t.Fatalf("save: %d %s", st, b)
	}
	req["n_predict"] = 6
	wantR := postOK(t, ts.URL+"/completion", req)
	want := wantR["content"]
	if n := num(wantR["timings"].(map[string]any)["cache_n"]); n == 0 {
		t.Error("the prompt sent again was evaluated again (no checkpoint before its last token)")
	}
	if st, _, b := slotAction(t, ts.URL, 0, "erase", ""); st != 200 {
		t.Fatalf("erase: %d %s", st, b)
	}
	if st, _, b := slotAction(t, ts.URL, 0, "restore", "h.bin"); st != 200 {
		t.Fatalf("restore: %d %s", st, b)
	}
	got := postOK(t, ts.URL+"/completion", req)
	if got["content"] != want {
		t.Errorf("after restore: %q, before: %q", got["content"], want)
	}
	if n := num(got["timings"].(map[string]any)["cache_n"]); n == 0 {
		t.Error("the restored slot's cache was not reused")
	}
}

// POST /cache/policy with eviction on a hybrid model is a 400 saying why,
// before any step runs with it; the live policy stays as it was, and the
// same policy without eviction is accepted.
func TestHybridPolicyEvictRefused(t *testing.T) {
	ts := newHTTPTest(t, hybridServer(t, Options{Slots: 1, Cache: engine.DefaultCacheOptions()}))
	body := map[string]any{"budget": "64MiB", "ladder_v": []string{"f16", "q8_0"}, "evict": "sinks:16,window:256"}
	st, b := post(t, ts.URL+"/cache/policy", body)
	msg := wantError(t, "policy", st, b, http.StatusBadRequest, "invalid_request_error")
	if !strings.Contains(msg, "eviction needs a cache without recurrent state: model qwen3next is hybrid") {
		t.Errorf("message %q", msg)
	}
	if p := obj(t, must(get(t, ts.URL+"/cache/policy"))); p["enabled"] != false {
		t.Errorf("the refused policy was set: %v", p)
	}
	delete(body, "evict")
	if p := postOK(t, ts.URL+"/cache/policy", body); p["enabled"] != true || p["evict"] != "" {
		t.Errorf("policy without eviction: %v", p)
	}
	// A completion still runs under it.
	postOK(t, ts.URL+"/completion", map[string]any{"prompt": "Hello there", "n_predict": 4, "temperature": 0})
}
