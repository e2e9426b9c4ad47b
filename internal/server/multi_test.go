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
	if st, _ := post(t, ts.URL+"/v1/chat/completions", map[string]any{"messages": msgs, "n": 17}); st != 400 {
		t.Errorf("n=17: %d", st)
	}
}

// n > 1 streamed: the chunks of every choice, interleaved, each with its
// index, its own role chunk (chat) and finish_reason; each choice's text
// is what the same choice gives without streaming (fixed seed); one usage
// chunk at the end counts the prompt once.
func TestChoicesNStreamed(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 2})
	msgs := userMsg("Tell me a story")
	body := map[string]any{"messages": msgs, "n": 3, "max_tokens": 6, "seed": 5, "temperature": 1}
	whole := postOK(t, ts.URL+"/v1/chat/completions", body)
	body["stream_options"] = map[string]any{"include_usage": true}
	chunks := streamChat(t, ts.URL+"/v1/chat/completions", body)
	text, roles, finish := map[int]string{}, map[int]int{}, map[int]string{}
	var u map[string]any
	for _, c := range chunks {
		chs := c["choices"].([]any)
		if len(chs) == 0 {
			u = c["usage"].(map[string]any)
			continue
		}
		ch := chs[0].(map[string]any)
		i := int(num(ch["index"]))
		d := ch["delta"].(map[string]any)
		if d["role"] == "assistant" {
			roles[i]++
		}
		if s, ok := d["content"].(string); ok {
			text[i] += s
		}
		if f, ok := ch["finish_reason"].(string); ok {
			finish[i] = f
		}
	}
	for i, c := range whole["choices"].([]any) {
		m := c.(map[string]any)
		if roles[i] != 1 || finish[i] != m["finish_reason"] || text[i] != m["message"].(map[string]any)["content"] {
			t.Errorf("choice %d streamed: %d role chunks, finish %q, text %q; whole: %v", i, roles[i], finish[i], text[i], m)
		}
	}
	wu := whole["usage"].(map[string]any)
	if u == nil || num(u["prompt_tokens"]) != num(wu["prompt_tokens"]) || num(u["completion_tokens"]) != num(wu["completion_tokens"]) {
		t.Errorf("streamed usage %v, whole %v", u, wu)
	}
}

// /v1/completions with several prompts: one choice per prompt (times n),
// choice p·n+j; each the same as the prompt alone gives; usage counts
// every prompt once; streamed, the same texts by index.
func TestCompletionsSeveralPrompts(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 2})
	prompts := []any{"Once upon a time", "The cat", []int{1, 2, 3}}
	body := map[string]any{"prompt": prompts, "max_tokens": 5, "temperature": 0, "n": 2}
	r := postOK(t, ts.URL+"/v1/completions", body)
	ch := r["choices"].([]any)
	if len(ch) != 6 || r["object"] != "text_completion" {
		t.Fatalf("%d choices, object %v: %v", len(ch), r["object"], r)
	}
	prompt := 0.0
	for p, pr := range prompts {
		one := postOK(t, ts.URL+"/v1/completions", map[string]any{"prompt": pr, "max_tokens": 5, "temperature": 0})
		prompt += num(one["usage"].(map[string]any)["prompt_tokens"])
		want := one["choices"].([]any)[0].(map[string]any)["text"]
		for j := range 2 {
			c := ch[p*2+j].(map[string]any)
			if num(c["index"]) != float64(p*2+j) || c["text"] != want {
				t.Errorf("prompt %d sample %d: index %v text %q, alone %q", p, j, c["index"], c["text"], want)
			}
		}
	}
	if u := r["usage"].(map[string]any); num(u["prompt_tokens"]) != prompt || num(u["completion_tokens"]) != 30 {
		t.Errorf("usage %v: want %v prompt tokens, 30 completion tokens", u, prompt)
	}
	body["stream"] = true
	text := map[int]string{}
	for _, c := range streamChat(t, ts.URL+"/v1/completions", body) {
		if chs := c["choices"].([]any); len(chs) > 0 {
			x := chs[0].(map[string]any)
			text[int(num(x["index"]))] += x["text"].(string)
		}
	}
	for i, c := range ch {
		if text[i] != c.(map[string]any)["text"] {
			t.Errorf("streamed choice %d: %q, want %q", i, text[i], c.(map[string]any)["text"])
		}
	}
	// Too many choices, and a bad prompt among several.
	many := make([]any, 20)
	for i := range many {
		many[i] = "x"
	}
	if st, b := post(t, ts.URL+"/v1/completions", map[string]any{"prompt": many, "n": 4}); st != 400 {
		t.Errorf("80 choices: %d %s", st, b)
	}
	if st, b := post(t, ts.URL+"/v1/completions", map[string]any{"prompt": []any{"a", []any{true}}}); st != 400 {
		t.Errorf("bad prompt: %d %s", st, b)
	}
}
