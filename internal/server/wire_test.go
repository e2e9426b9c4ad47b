package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// Details of llama-server's wire format.
func TestWireFormat(t *testing.T) {
	_, ts := newTestServer(t, Options{Metrics: true})
	// response_fields keeps the given paths, keyed by path.
	r := postOK(t, ts.URL+"/completion", map[string]any{"prompt": "Hello", "n_predict": 2, "temperature": 0,
		"response_fields": []string{"content", "generation_settings/n_predict", "timings/predicted_n", "nope/x"}})
	if len(r) != 3 || num(r["generation_settings/n_predict"]) != 2 || num(r["timings/predicted_n"]) != 2 {
		t.Errorf("response_fields: %v", r)
	}
	// The context overflow error: llama-server's message, n_prompt_tokens, n_ctx.
	st, b := post(t, ts.URL+"/completion", map[string]any{"prompt": strings.Repeat("word ", 1100)})
	var e struct{ Error map[string]any }
	json.Unmarshal(b, &e)
	if st != 400 || e.Error["type"] != TypeExceedContext || num(e.Error["n_ctx"]) != 1024 || num(e.Error["n_prompt_tokens"]) < 1024 ||
		!strings.Contains(e.Error["message"].(string), "exceeds the available context size") {
		t.Errorf("overflow: %d %s", st, b)
	}
	// The first streamed chat chunk: role, content null.
	ev := stream(t, ts.URL+"/v1/chat/completions", map[string]any{"messages": []map[string]any{{"role": "user", "content": "Hi"}},
		"max_tokens": 2, "stream": true})
	var first struct {
		Choices []struct{ Delta map[string]any }
	}
	json.Unmarshal([]byte(ev[0]), &first)
	if c, ok := first.Choices[0].Delta["content"]; !ok || c != nil || first.Choices[0].Delta["role"] != "assistant" {
		t.Errorf("first chunk %s", ev[0])
	}
	// Streamed /completion chunks name their slot.
	for _, e := range stream(t, ts.URL+"/completion", map[string]any{"prompt": "Hello", "n_predict": 2, "stream": true}) {
		var m map[string]any
		json.Unmarshal([]byte(e), &m)
		if num(m["id_slot"]) != 0 {
			t.Errorf("chunk id_slot: %s", e)
		}
	}
	// A preflight answers 200; fail_on_no_slot takes true.
	if st, _, _ := do(t, http.MethodOptions, ts.URL+"/completion", nil); st != http.StatusOK {
		t.Errorf("OPTIONS: %d", st)
	}
	if st, b := get(t, ts.URL+"/slots?fail_on_no_slot=true"); st != http.StatusOK {
		t.Errorf("fail_on_no_slot=true with an idle slot: %d %s", st, b)
	}
	// /props: llama-server's fields.
	_, pb := get(t, ts.URL+"/props")
	p := obj(t, pb)
	for _, k := range []string{"endpoint_slots", "endpoint_props", "endpoint_metrics", "webui", "bos_token", "eos_token", "chat_template", "build_info", "total_slots", "model_path", "modalities"} {
		if _, ok := p[k]; !ok {
			t.Errorf("/props has no %q", k)
		}
	}
	if p["endpoint_metrics"] != true || p["endpoint_slots"] != true {
		t.Errorf("/props endpoints %v %v", p["endpoint_metrics"], p["endpoint_slots"])
	}
}
