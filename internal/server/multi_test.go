package server

import (
	"encoding/json"
	"net/http"
	"testing"
)

// Several prompts in one /completion request: an array of results with
// their index, each the same as the prompt alone gives; streamed, the
// chunks of all of them with their index, each ending with stop=true.
func TestMultiplePrompts(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 2})
	prompts := []any{"Once upon a time", []int{1, 2, 3}, "The cat", map[string]any{"prompt_string": "Hello"}}
	body := map[string]any{"prompt": prompts, "n_predict": 5, "temperature": 0}
	st, b := post(t, ts.URL+"/completion", body)
	if st != http.StatusOK {
		t.Fatalf("%d %s", st, b)
	}
	var arr []map[string]any
	if err := json.Unmarshal(b, &arr); err != nil || len(arr) != len(prompts) {
		t.Fatalf("want an array of %d results: %v %s", len(prompts), err, b)
	}
	for i, p := range prompts {
		one := postOK(t, ts.URL+"/completion", map[string]any{"prompt": p, "n_predict": 5, "temperature": 0})
		if num(arr[i]["index"]) != float64(i) || arr[i]["content"] != one["content"] {
			t.Errorf("prompt %d: index %v content %q, alone %q", i, arr[i]["index"], arr[i]["content"], one["content"])
		}
	}
	body["stream"] = true
	text := map[int]string{}
	stops := map[int]bool{}
	for _, e := range stream(t, ts.URL+"/completion", body) {
		var m map[string]any
		if err := json.Unmarshal([]byte(e), &m); err != nil {
			t.Fatalf("event %q: %v", e, err)
		}
		i := int(num(m["index"]))
		text[i] += m["content"].(string)
		if m["stop"] == true {
			stops[i] = true
		}
	}
	for i := range prompts {
		if !stops[i] || text[i] != arr[i]["content"] {
			t.Errorf("stream prompt %d: stop %v text %q, want %q", i, stops[i], text[i], arr[i]["content"])
		}
	}
}

// OpenAI's n: that many choices, each with its index; with a fixed seed,
// choice i samples with seed+i (so choice 0 is the n=1 answer).
func TestChoicesN(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 2})
	msgs := []map[string]any{{"role": "user", "content": "Tell me a story"}}
	r := postOK(t, ts.URL+"/v1/chat/completions", map[string]any{"messages": msgs, "n": 3, "max_tokens": 6, "seed": 11, "temperature": 1})
	ch := r["choices"].([]any)
	if len(ch) != 3 {
		t.Fatalf("%d choices", len(ch))
	}
	one := postOK(t, ts.URL+"/v1/chat/completions", map[string]any{"messages": msgs, "max_tokens": 6, "seed": 11, "temperature": 1})
	c0 := ch[0].(map[string]any)["message"].(map[string]any)["content"]
	if c0 != one["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"] {
		t.Errorf("choice 0 %q differs from the n=1 answer", c0)
	}
	u := r["usage"].(map[string]any)
	total := 0.0
	for i, c := range ch {
		if num(c.(map[string]any)["index"]) != float64(i) {
			t.Errorf("choice %d index %v", i, c.(map[string]any)["index"])
		}
	}
	total = num(u["prompt_tokens"]) + num(u["completion_tokens"])
	if num(u["total_tokens"]) != total || num(u["completion_tokens"]) < 3 {
		t.Errorf("usage %v", u)
	}
	r = postOK(t, ts.URL+"/v1/completions", map[string]any{"prompt": "Once", "n": 2, "max_tokens": 4})
	if len(r["choices"].([]any)) != 2 {
		t.Errorf("text completion choices %v", r["choices"])
	}
	if st, _ := post(t, ts.URL+"/v1/chat/completions", map[string]any{"messages": msgs, "n": 2, "stream": true}); st != 400 {
		t.Errorf("n=2 with stream: %d", st)
	}
	if st, _ := post(t, ts.URL+"/v1/chat/completions", map[string]any{"messages": msgs, "n": 17}); st != 400 {
		t.Errorf("n=17: %d", st)
	}
}
