package server

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/engine"
)

// /health answers 503 while the model loads (every other route too), 200
// once loaded; a failed load answers 500 with the reason.
func TestHealthWhileLoading(t *testing.T) {
	release := make(chan struct{})
	s := New(Options{Slots: 1, Ctx: 512, Logger: quietLog, load: func() (*engine.Engine, error) {
		<-release
		return engine.Load("", 2)
	}})
	ts := httptest.NewServer(s)
	defer func() { ts.Close(); s.Close() }()
	loaded := make(chan error, 1)
	go func() { loaded <- s.Load() }()

	st, b := get(t, ts.URL+"/health")
	if msg := wantError(t, "health while loading", st, b, 503, TypeUnavailable); msg != "Loading model" {
		t.Errorf("message %q", msg)
	}
	st, b = get(t, ts.URL+"/props")
	wantError(t, "props while loading", st, b, 503, TypeUnavailable)
	st, b = post(t, ts.URL+"/completion", `{"prompt":"x"}`)
	wantError(t, "completion while loading", st, b, 503, TypeUnavailable)

	close(release)
	if err := <-loaded; err != nil {
		t.Fatal(err)
	}
	st, b = get(t, ts.URL+"/health")
	if st != 200 || obj(t, b)["status"] != "ok" {
		t.Errorf("health after load: %d %s", st, b)
	}
	st, _ = get(t, ts.URL+"/v1/health")
	if st != 200 {
		t.Errorf("/v1/health: %d", st)
	}

	// A failed load.
	f := New(Options{Logger: quietLog, load: func() (*engine.Engine, error) { return nil, errors.New("no such file") }})
	fts := httptest.NewServer(f)
	defer func() { fts.Close(); f.Close() }()
	if f.Load() == nil {
		t.Fatal("load did not fail")
	}
	st, b = get(t, fts.URL+"/health")
	if msg := wantError(t, "health after failed load", st, b, 500, TypeServer); !strings.Contains(msg, "no such file") {
		t.Errorf("message %q", msg)
	}
}

func TestPropsAndModels(t *testing.T) {
	s, ts := newTestServer(t, Options{Slots: 2, Ctx: 512})
	st, b := get(t, ts.URL+"/props")
	if st != 200 {
		t.Fatalf("props: %d %s", st, b)
	}
	p := obj(t, b)
	dgs := p["default_generation_settings"].(map[string]any)
	if num(p["total_slots"]) != 2 || num(dgs["n_ctx"]) != 256 || num(p["n_ctx"]) != 512 || num(p["n_ctx_slot"]) != 256 {
		t.Errorf("slots/context: total_slots %v n_ctx %v n_ctx_slot %v default n_ctx %v", p["total_slots"], p["n_ctx"], p["n_ctx_slot"], dgs["n_ctx"])
	}
	if p["model_path"] != s.eng.Path || p["cache_type_k"] != "f16" || p["cache_type_v"] != "f16" {
		t.Errorf("model_path %v cache types %v/%v", p["model_path"], p["cache_type_k"], p["cache_type_v"])
	}
	if !strings.Contains(p["chat_template"].(string), "<|im_start|>") || !strings.HasPrefix(p["build_info"].(string), "kvserve ") {
		t.Errorf("chat_template %q build_info %q", p["chat_template"], p["build_info"])
	}
	params := dgs["params"].(map[string]any)
	if num(params["temperature"]) != 0.8 || num(params["top_k"]) != 40 {
		t.Errorf("default params %v", params)
	}

	// Per-layer types: "mixed" and the per-layer lists.
	_, ts2 := newTestServer(t, Options{Slots: 1, Ctx: 256, Cache: engine.CacheOptions{TypeK: "f16", TypeV: "q8_0", LayersK: "0-1:q8_0"}})
	p = obj(t, func() []byte { _, b := get(t, ts2.URL+"/props"); return b }())
	ct := p["cache_types"].(map[string]any)
	if ct["key_encode"] != "mse" {
		t.Errorf("cache_types.key_encode %v, want mse", ct["key_encode"])
	}
	k := ct["k"].([]any)
	if p["cache_type_k"] != "mixed" || p["cache_type_v"] != "q8_0" || len(k) != 8 || k[0] != "q8_0" || k[2] != "f16" {
		t.Errorf("mixed types: cache_type_k %v cache_type_v %v k %v", p["cache_type_k"], p["cache_type_v"], k)
	}

	st, b = get(t, ts.URL+"/v1/models")
	m := obj(t, b)
	data := m["data"].([]any)
	d0 := data[0].(map[string]any)
	if st != 200 || m["object"] != "list" || len(data) != 1 || d0["id"] != filepath.Base(strings.TrimPrefix(s.eng.Path, "embedded:")) || !strings.HasSuffix(s.modelName, ".gguf") || d0["object"] != "model" {
		t.Errorf("/v1/models: %d %s", st, b)
	}
	if meta := d0["meta"].(map[string]any); num(meta["n_vocab"]) != 8192 || num(meta["n_ctx_train"]) != 4096 || num(meta["n_params"]) <= 0 {
		t.Errorf("meta %v", meta)
	}
}

func TestRoutesMethodsAndExtension(t *testing.T) {
	s, ts := newTestServer(t, Options{Slots: 1, APIKeys: []string{"k"}})
	auth := []string{"Authorization", "Bearer k"}
	st, b, h := do(t, http.MethodGet, ts.URL+"/completion", nil, auth...)
	wantError(t, "GET /completion", st, b, 405, TypeInvalidRequest)
	if h.Get("Allow") != "POST" {
		t.Errorf("Allow %q", h.Get("Allow"))
	}
	st, b, _ = do(t, http.MethodGet, ts.URL+"/no/such/route", nil, auth...)
	wantError(t, "unknown route", st, b, 404, TypeNotFound)
	st, b, _ = do(t, http.MethodDelete, ts.URL+"/props", nil, auth...)
	wantError(t, "DELETE /props", st, b, 405, TypeInvalidRequest)

	// An extension route gets the middleware (API key, JSON errors).
	s.HandleFunc("POST /cache/test", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			X int `json:"x"`
		}
		if !ReadJSON(w, r, &req) {
			return
		}
		WriteJSON(w, 200, map[string]any{"slots": len(s.Scheduler().Slots()), "x": req.X})
	})
	st, b, _ = do(t, http.MethodPost, ts.URL+"/cache/test", `{"x":3}`)
	wantError(t, "extension without key", st, b, 401, TypeAuthentication)
	st, b, _ = do(t, http.MethodPost, ts.URL+"/cache/test", `{"x":3}`, auth...)
	if st != 200 || num(obj(t, b)["x"]) != 3 || num(obj(t, b)["slots"]) != 1 {
		t.Errorf("extension: %d %s", st, b)
	}
	st, b, _ = do(t, http.MethodGet, ts.URL+"/cache/test", nil, auth...)
	wantError(t, "GET extension", st, b, 405, TypeInvalidRequest)
	st, b, _ = do(t, http.MethodPost, ts.URL+"/cache/test", `{"x":"three"}`, auth...)
	wantError(t, "extension with a bad body", st, b, 400, TypeInvalidRequest)
	st, b, _ = do(t, http.MethodPost, ts.URL+"/cache/test", `{"x":`, auth...)
	wantError(t, "extension with malformed JSON", st, b, 400, TypeInvalidRequest)

	// A panicking handler answers 500 JSON; the server keeps serving.
	s.HandleFunc("GET /cache/panic", func(w http.ResponseWriter, r *http.Request) { panic("boom") })
	st, b, _ = do(t, http.MethodGet, ts.URL+"/cache/panic", nil, auth...)
	wantError(t, "panic", st, b, 500, TypeServer)
	st, _, _ = do(t, http.MethodGet, ts.URL+"/health", nil)
	if st != 200 {
		t.Errorf("health after panic: %d", st)
	}
}

// With --api-key every route but /health and /models needs the key
// (Bearer or X-Api-Key), as llama-server; /metrics needs it too.
func TestAPIKey(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 1, APIKeys: []string{"sekrit"}, Metrics: true})
	for _, path := range []string{"/health", "/v1/health", "/models", "/v1/models"} {
		if st, b := get(t, ts.URL+path); st != 200 {
			t.Errorf("public %s: %d %s", path, st, b)
		}
	}
	body := `{"prompt":"Hello","n_predict":1}`
	for _, c := range []struct {
		name string
		hdr  []string
		want int
	}{
		{"no key", nil, 401},
		{"wrong key", []string{"Authorization", "Bearer nope"}, 401},
		{"empty bearer", []string{"Authorization", "Bearer "}, 401},
		{"bearer", []string{"Authorization", "Bearer sekrit"}, 200},
		{"lowercase bearer", []string{"Authorization", "bearer sekrit"}, 200},
		{"x-api-key", []string{"X-Api-Key", "sekrit"}, 200},
	} {
		st, b, _ := do(t, http.MethodPost, ts.URL+"/completion", body, c.hdr...)
		if c.want == 401 {
			if msg := wantError(t, c.name, st, b, 401, TypeAuthentication); msg != "Invalid API Key" {
				t.Errorf("%s: message %q", c.name, msg)
			}
		} else if st != c.want {
			t.Errorf("%s: %d %s", c.name, st, b)
		}
	}
	for _, path := range []string{"/props", "/slots", "/metrics"} {
		st, b := get(t, ts.URL+path)
		wantError(t, path+" without key", st, b, 401, TypeAuthentication)
		if st, b := get(t, ts.URL+path, "Authorization", "Bearer sekrit"); st != 200 {
			t.Errorf("%s with key: %d %s", path, st, b)
		}
	}
}

func TestBodyLimit(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 1, MaxBodyBytes: 1024})
	big := `{"prompt":"` + strings.Repeat("a", 2000) + `"}`
	st, b := post(t, ts.URL+"/completion", big)
	wantError(t, "oversized body", st, b, 413, TypeInvalidRequest)
	// Without a Content-Length (chunked), the limit applies while reading.
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/tokenize", struct{ *strings.Reader }{strings.NewReader(big)})
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked oversized body: %d", resp.StatusCode)
	}
	st, b = post(t, ts.URL+"/tokenize", `{"content":"small"}`)
	if st != 200 {
		t.Errorf("small body: %d %s", st, b)
	}
}

// Malformed bodies and bad field values answer 400 with a JSON error,
// never a panic or a 500.
func TestBadRequests(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 2})
	cases := []struct {
		path, body string
		want       int
		typ        string
	}{
		{"/completion", ``, 400, TypeInvalidRequest},
		{"/completion", `{`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x"`, 400, TypeInvalidRequest},
		{"/completion", `[]`, 400, TypeInvalidRequest},
		{"/completion", `null`, 400, TypeInvalidRequest},
		{"/completion", `123`, 400, TypeInvalidRequest},
		{"/completion", `"prompt"`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x"} {}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x",}`, 400, TypeInvalidRequest},
		{"/completion", "{\"prompt\":\"\xff\xfe\"", 400, TypeInvalidRequest},
		{"/completion", `{}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":null}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":1.5}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":true}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":[]}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":[1.5]}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":[999999]}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":[-1]}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":[[1],[[2]]]}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":[[1],[1e9]]}`, 400, TypeInvalidRequest},
		{"/v1/completions", `{"prompt":[[1],[true]]}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":[null]}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","n_predict":"5"}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","n_predict":1.5}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","n_predict":-3}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","n_predict":1e999}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","temperature":"hot"}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","temperature":1e99}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","top_p":2}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","min_p":-0.5}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","repeat_penalty":0}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","repeat_last_n":-2}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","top_k":"40"}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","n_probs":-1}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","n_probs":100000}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","stream":"yes"}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","stop":[1]}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","stop":{"a":1}}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","seed":-5}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","seed":"1"}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","id_slot":2}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","id_slot":-2}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","cache_prompt":1}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","grammar":"root ::= a"}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","json_schema":{"type":"object","not":{}}}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","tools":[{"type":"function","function":{"name":"f"}}]}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","logit_bias":[[1e9,-1]]}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","logit_bias":[[1,true]]}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","logit_bias":5}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","mirostat":3}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","samplers":["top_k","bogus"]}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","samplers":"kq"}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"x","dry_penalty_last_n":-2}`, 400, TypeInvalidRequest},
		{"/completion", `{"prompt":"` + strings.Repeat("word ", 1100) + `"}`, 400, TypeExceedContext},
		{"/completion", strings.Repeat("[", 100000), 400, TypeInvalidRequest},
		{"/completion", `{"prompt":` + strings.Repeat("[", 20000) + `}`, 400, TypeInvalidRequest},
		{"/v1/completions", `{"prompt":"x","n":0}`, 400, TypeInvalidRequest},
		{"/v1/completions", `{"prompt":"x","n":"1"}`, 400, TypeInvalidRequest},
		{"/v1/completions", `{"prompt":"x","best_of":3}`, 400, TypeInvalidRequest},
		{"/v1/completions", `{"prompt":"x","echo":true}`, 400, TypeInvalidRequest},
		{"/v1/completions", `{"prompt":"x","logprobs":true}`, 400, TypeInvalidRequest},
		{"/v1/completions", `{"prompt":"x","logprobs":21}`, 400, TypeInvalidRequest},
		{"/v1/completions", `{"prompt":"x","max_tokens":-7}`, 400, TypeInvalidRequest},
		{"/v1/completions", `{"prompt":"x","stream_options":true}`, 400, TypeInvalidRequest},
		{"/v1/chat/completions", `{}`, 400, TypeInvalidRequest},
		{"/v1/chat/completions", `{"messages":[]}`, 400, TypeInvalidRequest},
		{"/v1/chat/completions", `{"messages":"hi"}`, 400, TypeInvalidRequest},
		{"/v1/chat/completions", `{"messages":["hi"]}`, 400, TypeInvalidRequest},
		{"/v1/chat/completions", `{"messages":[{"content":"hi"}]}`, 400, TypeInvalidRequest},
		{"/v1/chat/completions", `{"messages":[{"role":5,"content":"hi"}]}`, 400, TypeInvalidRequest},
		{"/v1/chat/completions", `{"messages":[{"role":"user"}]}`, 400, TypeInvalidRequest},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":5}]}`, 400, TypeInvalidRequest},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, 400, TypeInvalidRequest},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":[{"type":"text","text":7}]}]}`, 400, TypeInvalidRequest},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"n":17,"stream":true}`, 400, TypeInvalidRequest},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"logprobs":"yes"}`, 400, TypeInvalidRequest},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"top_logprobs":3}`, 400, TypeInvalidRequest},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"logprobs":true,"top_logprobs":50}`, 400, TypeInvalidRequest},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f g"}}]}`, 400, TypeInvalidRequest},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"xml"}}`, 400, TypeInvalidRequest},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"chat_template_kwargs":[1]}`, 400, TypeInvalidRequest},
		{"/tokenize", `{}`, 400, TypeInvalidRequest},
		{"/tokenize", `{"content":5}`, 400, TypeInvalidRequest},
		{"/tokenize", `{"content":"x","with_pieces":"no"}`, 400, TypeInvalidRequest},
		{"/detokenize", `{}`, 400, TypeInvalidRequest},
		{"/detokenize", `{"tokens":"1 2"}`, 400, TypeInvalidRequest},
		{"/detokenize", `{"tokens":[1,"2"]}`, 400, TypeInvalidRequest},
		{"/detokenize", `{"tokens":[8192]}`, 400, TypeInvalidRequest},
		{"/apply-template", `{"messages":{}}`, 400, TypeInvalidRequest},
		{"/slots/0?action=save", `{"filename":"a"}`, 501, TypeNotSupported},
		{"/slots/0?action=explode", `{}`, 400, TypeInvalidRequest},
		{"/slots/0", `{}`, 400, TypeInvalidRequest},
		{"/slots/x?action=erase", `{}`, 400, TypeInvalidRequest},
		{"/slots/9?action=erase", `{}`, 404, TypeNotFound},
		{"/slots/-1?action=erase", `{}`, 404, TypeNotFound},
	}
	for _, c := range cases {
		st, b := post(t, ts.URL+c.path, c.body)
		name := c.path + " " + c.body
		if len(name) > 120 {
			name = name[:120] + "..."
		}
		wantError(t, name, st, b, c.want, c.typ)
	}
	// The server still works.
	if st, b := post(t, ts.URL+"/completion", `{"prompt":"x","n_predict":1}`); st != 200 {
		t.Fatalf("after bad requests: %d %s", st, b)
	}
}

// Fuzz-ish: every prefix of valid bodies, and random structural byte
// replacements, answer 200 or a 4xx JSON error — never a 5xx, a panic or
// a non-JSON body.
func TestMalformedBodiesNeverFail(t *testing.T) {
	// A small context bounds mutants that lose their length limit.
	_, ts := newTestServer(t, Options{Slots: 2, Ctx: 2 * 48})
	bodies := map[string]string{
		"/completion":          `{"prompt":["Hi",12,"there"],"n_predict":1,"temperature":0,"stop":["\n"],"n_probs":2,"stream":false}`,
		"/v1/completions":      `{"prompt":"Hi","max_tokens":1,"logprobs":1,"stop":"x"}`,
		"/v1/chat/completions": `{"messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}],"max_tokens":1,"logprobs":true,"top_logprobs":1}`,
		"/tokenize":            `{"content":"Hi <|endoftext|>","with_pieces":true,"add_special":true}`,
		"/detokenize":          `{"tokens":[1,2,3]}`,
		"/apply-template":      `{"messages":[{"role":"user","content":"Hi"}]}`,
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const structural = "{}[]\",: \x00\xffatn" // no digits or "-": a valid mutant must stay a short request
	check := func(path, body string) {
		st, b := post(t, ts.URL+path, body)
		if st >= 500 || (st != 200 && st/100 != 4) {
			t.Errorf("%s %q: status %d: %s", path, body, st, b)
			return
		}
		if st != 200 {
			wantError(t, fmt.Sprintf("%s %q", path, body), st, b, st, "")
		}
	}
	for path, body := range bodies {
		check(path, body)
		for i := 0; i < len(body); i += 4 {
			check(path, body[:i])
		}
		for i := 0; i < 30; i++ {
			b := []byte(body)
			for k := 0; k < 1+rng.IntN(3); k++ {
				b[rng.IntN(len(b))] = structural[rng.IntN(len(structural))]
			}
			check(path, string(b))
		}
	}
}

func TestMetrics(t *testing.T) {
	_, off := newTestServer(t, Options{Slots: 1})
	st, b := get(t, off.URL+"/metrics")
	wantError(t, "metrics disabled", st, b, 501, TypeNotSupported)

	s, ts := newTestServer(t, Options{Slots: 2, Metrics: true, Cache: engine.CacheOptions{TypeK: "q8_0", TypeV: "f16"}})
	// The lead's extension point: more collectors on the registry.
	extra := prometheus.NewCounter(prometheus.CounterOpts{Name: MetricsPrefix + "test_extra_total", Help: "test"})
	s.Registry().MustRegister(extra)
	extra.Add(3)
	postOK(t, ts.URL+"/completion", map[string]any{"prompt": "Once upon a time", "n_predict": 4, "temperature": 0, "ignore_eos": true})
	np := len(s.eng.Tok.Encode("Once upon a time", true, true))
	st, b = get(t, ts.URL+"/metrics")
	if st != 200 {
		t.Fatalf("metrics: %d %s", st, b)
	}
	text := string(b)
	for _, want := range []string{
		fmt.Sprintf("kvserve:prompt_tokens_total %d\n", np), "kvserve:tokens_predicted_total 4\n", "kvserve:prompt_seconds_total ",
		"kvserve:tokens_predicted_seconds_total ", "kvserve:prompt_tokens_seconds ", "kvserve:predicted_tokens_seconds ",
		"kvserve:requests_processing 0", "kvserve:requests_deferred 0", "kvserve:requests_waiting 0", "kvserve:n_decode_total ",
		fmt.Sprintf("kvserve:n_tokens_max %d\n", np+4), `kvserve:kv_cache_bytes{type="q8_0"} `, `kvserve:kv_cache_bytes{type="f16"} `,
		`kvserve:kv_cache_capacity_bytes{type="q8_0"} `, "kvserve:kv_cache_usage_ratio ", fmt.Sprintf("kvserve:kv_cache_tokens %d\n", np+3),
		"kvserve:test_extra_total 3", "kvserve:cache_requantize_total 0", "kvserve:cache_requantize_seconds_total 0",
		`kvserve:cache_policy_conversions_total{reason="age"} 0`, `kvserve:cache_policy_conversions_total{reason="budget"} 0`,
		"kvserve:cache_policy_bytes_freed_total 0", "kvserve:cache_budget_rejections_total 0", "# TYPE kvserve:prompt_tokens_total counter", "# TYPE kvserve:kv_cache_bytes gauge",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}

// A request waiting for a slot is refused with 503 after the queue
// timeout (or at once with a negative one).
func TestBusySlots(t *testing.T) {
	for _, qt := range []time.Duration{-1, 300 * time.Millisecond} {
		s, ts := newTestServer(t, Options{Slots: 1, QueueTimeout: qt})
		_, cancel, _ := startStream(t, ts.URL+"/completion", map[string]any{"prompt": "Once", "n_predict": 2000, "ignore_eos": true, "stream": true})
		t0 := time.Now()
		st, b := post(t, ts.URL+"/completion", `{"prompt":"x","n_predict":1}`)
		wantError(t, fmt.Sprintf("queue timeout %v", qt), st, b, 503, TypeUnavailable)
		if qt > 0 && time.Since(t0) < qt {
			t.Errorf("refused after %v, before the queue timeout %v", time.Since(t0), qt)
		}
		cancel()
		waitIdle(t, s)
		if st, b := post(t, ts.URL+"/completion", `{"prompt":"x","n_predict":1}`); st != 200 {
			t.Errorf("after the slot freed: %d %s", st, b)
		}
	}
}

// A cache policy reaches the scheduler: a request that cannot fit the
// memory budget even at the lowest types is refused with a 503 and
// Retry-After (as the docs say), before anything runs.
func TestPolicyBudget(t *testing.T) {
	pol := &cachepolicy.Policy{Budget: 64 << 10}
	pol.LadderK, pol.LadderV = cachepolicy.DefaultLadders()
	_, ts := newTestServer(t, Options{Slots: 1, Policy: pol, Metrics: true})
	st, b, h := do(t, http.MethodPost, ts.URL+"/completion", map[string]any{"prompt": strings.Repeat("word ", 300), "n_predict": 4})
	if msg := wantError(t, "over budget", st, b, 503, TypeUnavailable); !strings.Contains(msg, "budget") {
		t.Errorf("message %q", msg)
	}
	if h.Get("Retry-After") == "" {
		t.Error("no Retry-After on the 503")
	}
	_, b = get(t, ts.URL+"/metrics")
	if !strings.Contains(string(b), "kvserve:cache_budget_rejections_total 1\n") {
		t.Errorf("budget rejection not counted")
	}
}

// A slot context beyond the model's training context is served with a
// warning, as llama.cpp warns: logged at load and listed in /props beside
// n_ctx_train (issue 17: accepted silently).
func TestContextBeyondTrainingWarns(t *testing.T) {
	train := testEngine(t).Model.NCtxTrain
	var log bytes.Buffer
	_, ts := newTestServer(t, Options{Slots: 1, Ctx: 2 * train, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	p := obj(t, must(get(t, ts.URL+"/props")))
	w, _ := p["warnings"].([]any)
	if num(p["n_ctx_train"]) != float64(train) || len(w) != 1 || !strings.Contains(w[0].(string), "training context") {
		t.Errorf("/props n_ctx_train %v warnings %v", p["n_ctx_train"], p["warnings"])
	}
	if !strings.Contains(log.String(), "level=WARN") || !strings.Contains(log.String(), "training context") {
		t.Errorf("no warning logged:\n%s", log.String())
	}
	_, ts = newTestServer(t, Options{Slots: 2, Ctx: 2 * train})
	if w := obj(t, must(get(t, ts.URL+"/props")))["warnings"].([]any); len(w) != 0 {
		t.Errorf("warnings with each slot inside the training context: %v", w)
	}
}
