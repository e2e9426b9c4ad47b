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
