package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/grammar"
)

// Command-line defaults (llama-server's --temp, -n, --keep, ...) are what
// requests get when they do not say, and what /props reports; a request's
// own fields win. --no-slots turns GET /slots off; --chat-template
// replaces the model's template; a final assistant message is continued.
func TestCommandLineDefaults(t *testing.T) {
	d := DefaultDefaults()
	d.Sample.Temperature = 0
	d.Sample.TopK = 7
	d.NPredict = 3
	d.CachePrompt = false
	src := `{%- for m in messages -%}{{- '[' + m.role + ']' + m.content -}}{%- endfor -%}{%- if add_generation_prompt -%}{{- '[assistant]' -}}{%- endif -%}{{- kw | default('') -}}`
	_, ts := newTestServer(t, Options{Defaults: &d, NoSlots: true, ChatTemplate: src, ChatTemplateKwargs: map[string]any{"kw": "!"}})
	r := postOK(t, ts.URL+"/completion", map[string]any{"prompt": "Once upon a time"})
	if num(r["tokens_predicted"]) != 3 {
		t.Errorf("tokens_predicted %v, want the -n default 3", r["tokens_predicted"])
	}
	gs := r["generation_settings"].(map[string]any)
	if num(gs["top_k"]) != 7 || num(gs["temperature"]) != 0 || gs["cache_prompt"] != false {
		t.Errorf("generation_settings %v", gs)
	}
	r = postOK(t, ts.URL+"/completion", map[string]any{"prompt": "Once upon a time", "n_predict": 2, "top_k": 3})
	if gs := r["generation_settings"].(map[string]any); num(r["tokens_predicted"]) != 2 || num(gs["top_k"]) != 3 {
		t.Errorf("request fields did not win: %v", r)
	}
	props := obj(t, func() []byte { _, b := get(t, ts.URL+"/props"); return b }())
	params := props["default_generation_settings"].(map[string]any)["params"].(map[string]any)
	if num(params["n_predict"]) != 3 || num(params["top_k"]) != 7 {
		t.Errorf("/props params %v", params)
	}
	if st, _ := get(t, ts.URL+"/slots"); st != http.StatusNotFound {
		t.Errorf("GET /slots with NoSlots: %d", st)
	}
	// The template and its variables; a final assistant message is
	// continued, not closed.
	r = postOK(t, ts.URL+"/apply-template", map[string]any{"messages": []map[string]any{
		{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello, I"}}})
	if r["prompt"] != "[user]Hi[assistant]!Hello, I" {
		t.Errorf("apply-template prompt %q", r["prompt"])
	}
	if props["chat_template"] != src {
		t.Errorf("/props chat_template %q", props["chat_template"])
	}
}

// --no-prefill-assistant renders a final assistant message as a whole turn.
func TestNoPrefillAssistant(t *testing.T) {
	src := `{%- for m in messages -%}{{- '[' + m.role + ']' + m.content -}}{%- endfor -%}{%- if add_generation_prompt -%}{{- '[assistant]' -}}{%- endif -%}`
	_, ts := newTestServer(t, Options{ChatTemplate: src, NoPrefillAssistant: true})
	r := postOK(t, ts.URL+"/apply-template", map[string]any{"messages": []map[string]any{
		{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}}})
	if r["prompt"] != "[user]Hi[assistant]Hello[assistant]" {
		t.Errorf("prompt %q", r["prompt"])
	}
}

// --cache-reuse / n_cache_reuse: a prompt that drops a middle span of the
// previous one reuses the cached chunk after it (shifted down), and
// greedy output matches a fresh evaluation.
func TestCacheReuse(t *testing.T) {
	_, ts := newTestServer(t, Options{})
	a := strings.Repeat("The cat sat on the mat. ", 8)
	b := strings.Repeat("A dog ran in the park today. ", 6)
	c := strings.Repeat("Birds sing songs in the morning light. ", 8)
	postOK(t, ts.URL+"/completion", map[string]any{"prompt": a + b + c, "n_predict": 1, "temperature": 0})
	r := postOK(t, ts.URL+"/completion", map[string]any{"prompt": a + c, "n_predict": 8, "temperature": 0, "n_cache_reuse": 16})
	fresh := postOK(t, ts.URL+"/completion", map[string]any{"prompt": a + c, "n_predict": 8, "temperature": 0, "cache_prompt": false})
	cached, evaluated := cacheN(r), num(r["tokens_evaluated"])
	t.Logf("reuse: cached %v of %v; %q", cached, evaluated, r["content"])
	if cached < evaluated*0.8 {
		t.Errorf("tokens_cached %v of %v: the chunk after the removed span was not reused", cached, evaluated)
	}
	if r["content"] != fresh["content"] {
		t.Errorf("reused cache gave %q, a fresh evaluation %q", r["content"], fresh["content"])
	}
	// Without reuse only the common prefix is cached.
	postOK(t, ts.URL+"/completion", map[string]any{"prompt": a + b + c, "n_predict": 1, "temperature": 0})
	r = postOK(t, ts.URL+"/completion", map[string]any{"prompt": a + c, "n_predict": 1, "temperature": 0})
	if cacheN(r) >= evaluated*0.8 {
		t.Errorf("without n_cache_reuse, cache_n %v", cacheN(r))
	}
}

// The server's default grammar (--grammar, --json-schema) constrains the
// requests that give no constraint of their own; a request's "grammar"
// (even "", no grammar, as llama-server), "json_schema" or
// "response_format" replaces it; a forced tool call uses its own.
func TestDefaultGrammar(t *testing.T) {
	g, err := grammar.Parse(`root ::= " " ("yes" | "no") "."`, grammar.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	d := DefaultDefaults()
	d.Grammar = g
	_, ts := newTestServer(t, Options{Slots: 1, Defaults: &d})
	r := postOK(t, ts.URL+"/completion", map[string]any{"prompt": "Is the sky blue? Answer:", "temperature": 0, "n_predict": 20})
	if c := r["content"]; (c != " yes." && c != " no.") || r["stop_type"] != "eos" {
		t.Errorf("default grammar: content %q stop_type %v", c, r["stop_type"])
	}
	resp := postOK(t, ts.URL+"/v1/chat/completions", map[string]any{"messages": userMsg("Is the sky blue?"), "temperature": 0, "max_tokens": 20})
	if m, _ := message(t, resp); m["content"] != " yes." && m["content"] != " no." {
		t.Errorf("default grammar on chat: %q", m["content"])
	}
	r = postOK(t, ts.URL+"/completion", map[string]any{"prompt": "Is the sky blue? Answer:", "grammar": `root ::= " maybe"`, "temperature": 0, "n_predict": 20})
	if r["content"] != " maybe" {
		t.Errorf("the request's grammar: %q", r["content"])
	}
	r = postOK(t, ts.URL+"/completion", map[string]any{"prompt": "Is the sky blue? Answer:", "grammar": "", "temperature": 0, "n_predict": 8, "ignore_eos": true})
	if r["tokens_predicted"] != float64(8) {
		t.Errorf(`"grammar": "" (none): %v tokens %q`, r["tokens_predicted"], r["content"])
	}
	tools := []any{map[string]any{"type": "function", "function": map[string]any{"name": "get_weather",
		"parameters": map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []any{"city"}}}}}
	resp = postOK(t, ts.URL+"/v1/chat/completions", map[string]any{"messages": userMsg("Weather in Paris?"), "tools": tools,
		"tool_choice": "required", "temperature": 0, "max_tokens": 100})
	if m, _ := message(t, resp); len(toolCalls(t, m)) == 0 {
		t.Errorf("forced tool call under a default grammar: %v", m)
	}
}
