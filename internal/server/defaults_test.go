package server

import (
	"net/http"
	"testing"
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
