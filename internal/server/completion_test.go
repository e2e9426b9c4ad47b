package server

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
)

// The greedy continuation of "Once upon a time" with the embedded model
// (its first tokens; the engine tests pin the same text for the f16 model).
const onceUpon = ", the world is a great way"

func greedyBody(extra map[string]any) map[string]any {
	m := map[string]any{"prompt": "Once upon a time", "n_predict": 12, "temperature": 0}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func TestCompletionNative(t *testing.T) {
	s, ts := newTestServer(t, Options{Slots: 2})
	r := postOK(t, ts.URL+"/completion", greedyBody(map[string]any{"return_tokens": true}))
	content := r["content"].(string)
	if !strings.HasPrefix(content, onceUpon) {
		t.Errorf("content %q", content)
	}
	toks := r["tokens"].([]any)
	if len(toks) != 12 || num(r["tokens_predicted"]) != 12 || num(r["tokens_evaluated"]) != 5 {
		t.Errorf("tokens %d predicted %v evaluated %v", len(toks), r["tokens_predicted"], r["tokens_evaluated"])
	}
	if r["stop"] != true || r["stop_type"] != "limit" || r["stopping_word"] != "" || r["truncated"] != false || r["model"] != s.modelName {
		t.Errorf("stop fields: %v %v %q %v %v", r["stop"], r["stop_type"], r["stopping_word"], r["truncated"], r["model"])
	}
	ids := make([]int, len(toks))
	for i, v := range toks {
		ids[i] = int(num(v))
	}
	if got := s.eng.Tok.Decode(ids, false); got != content {
		t.Errorf("tokens decode to %q, content %q", got, content)
	}
	tm := r["timings"].(map[string]any)
	for _, k := range []string{"prompt_n", "prompt_ms", "prompt_per_token_ms", "prompt_per_second", "predicted_n", "predicted_ms", "predicted_per_token_ms", "predicted_per_second", "cache_n"} {
		if _, ok := tm[k]; !ok {
			t.Errorf("timings lack %s", k)
		}
	}
	if num(tm["predicted_n"]) != 12 || num(tm["predicted_ms"]) <= 0 {
		t.Errorf("timings %v", tm)
	}
	if gs := r["generation_settings"].(map[string]any); num(gs["n_predict"]) != 12 || num(gs["temperature"]) != 0 {
		t.Errorf("generation_settings %v", gs)
	}

	// cache_prompt (default true) reuses the slot's prefix: the same
	// prompt again evaluates one token; with cache_prompt false, all.
	r2 := postOK(t, ts.URL+"/completion", greedyBody(nil))
	if cacheN(r2) != 4 || r2["content"] != content || num(r2["timings"].(map[string]any)["prompt_n"]) != 1 {
		t.Errorf("cached: cache_n %v prompt_n %v content %q", cacheN(r2), r2["timings"].(map[string]any)["prompt_n"], r2["content"])
	}
	// tokens_cached: what the slot caches at the end (prompt and the
	// generated tokens fed back; the last sampled one is not).
	if num(r2["tokens_cached"]) != num(r2["tokens_evaluated"])+num(r2["tokens_predicted"])-1 {
		t.Errorf("tokens_cached %v, evaluated %v, predicted %v", r2["tokens_cached"], r2["tokens_evaluated"], r2["tokens_predicted"])
	}
	r3 := postOK(t, ts.URL+"/completion", greedyBody(map[string]any{"cache_prompt": false}))
	if cacheN(r3) != 0 || r3["content"] != content {
		t.Errorf("cache_prompt false: cache_n %v content %q", cacheN(r3), r3["content"])
	}
	if _, ok := r2["tokens"].([]any); !ok || len(r2["tokens"].([]any)) != 0 {
		t.Errorf("tokens without return_tokens: %v", r2["tokens"])
	}

	// Stop strings.
	r = postOK(t, ts.URL+"/completion", greedyBody(map[string]any{"stop": []string{"great way"}}))
	if r["content"] != ", the world is a " || r["stop_type"] != "word" || r["stopping_word"] != "great way" {
		t.Errorf("stop word: %q %v %q", r["content"], r["stop_type"], r["stopping_word"])
	}
	r = postOK(t, ts.URL+"/completion", greedyBody(map[string]any{"stop": "world"}))
	if r["content"] != ", the " || r["stop_type"] != "word" {
		t.Errorf("stop string: %q %v", r["content"], r["stop_type"])
	}

	// Prompts as token ids and as a mixed array give the same output.
	ptoks := s.eng.Tok.Encode("Once upon a time", true, true)
	r = postOK(t, ts.URL+"/completion", greedyBody(map[string]any{"prompt": ptoks}))
	if r["content"] != content {
		t.Errorf("token prompt: %q", r["content"])
	}
	mixed := []any{ptoks[0], ptoks[1], " upon a time"}
	r = postOK(t, ts.URL+"/completion", greedyBody(map[string]any{"prompt": mixed}))
	if r["content"] != content || num(r["tokens_evaluated"]) != 5 {
		t.Errorf("mixed prompt: %q (%v tokens)", r["content"], r["tokens_evaluated"])
	}
	r = postOK(t, ts.URL+"/completion", greedyBody(map[string]any{"prompt": []string{"Once upon a time"}}))
	if r["content"] != content {
		t.Errorf("one-string array prompt: %q", r["content"])
	}

	// n_predict 0 evaluates the prompt only.
	r = postOK(t, ts.URL+"/completion", greedyBody(map[string]any{"n_predict": 0}))
	if r["content"] != "" || num(r["tokens_predicted"]) != 0 || r["stop_type"] != "limit" {
		t.Errorf("n_predict 0: %q %v %v", r["content"], r["tokens_predicted"], r["stop_type"])
	}

	// id_slot pins the slot.
	for _, id := range []int{0, 1} {
		r = postOK(t, ts.URL+"/completion", greedyBody(map[string]any{"id_slot": id, "n_predict": 1}))
		if int(num(r["id_slot"])) != id {
			t.Errorf("id_slot %d ran in %v", id, r["id_slot"])
		}
	}

	// Seeded sampling is reproducible.
	samp := greedyBody(map[string]any{"temperature": 1.0, "seed": 42, "cache_prompt": false, "n_predict": 16})
	a := postOK(t, ts.URL+"/completion", samp)["content"]
	b := postOK(t, ts.URL+"/completion", samp)["content"]
	if a != b {
		t.Errorf("seed 42 gave %q then %q", a, b)
	}
}

// completion_probabilities: llama-server's shape (id, token, logprob,
// bytes, top_logprobs of n_probs entries, most probable first).
func TestCompletionProbabilities(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 1})
	r := postOK(t, ts.URL+"/completion", greedyBody(map[string]any{"n_probs": 3, "n_predict": 6}))
	probs, ok := r["completion_probabilities"].([]any)
	if !ok || len(probs) != 6 {
		t.Fatalf("completion_probabilities: %v", r["completion_probabilities"])
	}
	text := ""
	for i, p := range probs {
		e := p.(map[string]any)
		top := e["top_logprobs"].([]any)
		if len(top) != 3 {
			t.Fatalf("entry %d: %d top_logprobs", i, len(top))
		}
		lp := num(e["logprob"])
		if lp > 0 || math.IsNaN(lp) {
			t.Errorf("entry %d: logprob %v", i, lp)
		}
		first := top[0].(map[string]any)
		if num(first["id"]) != num(e["id"]) || num(first["logprob"]) != lp {
			t.Errorf("entry %d: greedy token %v is not the most probable %v", i, e["id"], first["id"])
		}
		prev := 0.0
		for j, tp := range top {
			m := tp.(map[string]any)
			if j > 0 && num(m["logprob"]) > prev {
				t.Errorf("entry %d: top_logprobs not sorted", i)
			}
			prev = num(m["logprob"])
			checkBytes(t, m)
		}
		checkBytes(t, e)
		text += e["token"].(string)
	}
	if text != r["content"] {
		t.Errorf("tokens %q != content %q", text, r["content"])
	}
}

func checkBytes(t *testing.T, m map[string]any) {
	t.Helper()
	bs := m["bytes"].([]any)
	b := make([]byte, len(bs))
	for i, v := range bs {
		b[i] = byte(num(v))
	}
	if string(b) != m["token"] {
		t.Errorf("bytes %v do not spell token %q", bs, m["token"])
	}
}

// Streaming /completion: one SSE event per token, the last with
// stop=true and the final fields; no [DONE]; the text equals the
// non-streamed completion.
func TestCompletionStream(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 1})
	want := postOK(t, ts.URL+"/completion", greedyBody(nil))["content"].(string)
	evs := stream(t, ts.URL+"/completion", greedyBody(map[string]any{"stream": true, "n_probs": 1}))
	if len(evs) != 13 {
		t.Fatalf("%d events, want 12 tokens + final", len(evs))
	}
	text := ""
	for i, e := range evs {
		if e == "[DONE]" {
			t.Fatal("native stream sent [DONE]")
		}
		m := obj(t, []byte(e))
		text += m["content"].(string)
		last := i == len(evs)-1
		if m["stop"] != last {
			t.Errorf("event %d: stop %v", i, m["stop"])
		}
		if !last {
			if len(m["tokens"].([]any)) != 1 || num(m["tokens_predicted"]) != float64(i+1) || len(m["completion_probabilities"].([]any)) != 1 {
				t.Errorf("event %d: %s", i, e)
			}
		} else if m["stop_type"] != "limit" || num(m["tokens_predicted"]) != 12 || m["timings"] == nil {
			t.Errorf("final event: %s", e)
		}
	}
	if text != want {
		t.Errorf("streamed %q, non-streamed %q", text, want)
	}
	// A stop string is never streamed, not even in part.
	evs = stream(t, ts.URL+"/completion", greedyBody(map[string]any{"stream": true, "stop": []string{"great way"}}))
	text = ""
	for _, e := range evs {
		text += obj(t, []byte(e))["content"].(string)
	}
	if text != ", the world is a " {
		t.Errorf("streamed with stop: %q", text)
	}
}

func TestOAICompletions(t *testing.T) {
	s, ts := newTestServer(t, Options{Slots: 1})
	want := postOK(t, ts.URL+"/completion", greedyBody(nil))["content"].(string)
	body := map[string]any{"model": "whatever", "prompt": "Once upon a time", "max_tokens": 12, "temperature": 0, "logprobs": 2}
	r := postOK(t, ts.URL+"/v1/completions", body)
	if r["object"] != "text_completion" || !strings.HasPrefix(r["id"].(string), "cmpl-") || r["model"] != s.modelName || num(r["created"]) == 0 {
		t.Errorf("envelope: %v", r)
	}
	ch := r["choices"].([]any)[0].(map[string]any)
	if ch["text"] != want || ch["finish_reason"] != "length" || num(ch["index"]) != 0 {
		t.Errorf("choice: %v", ch)
	}
	u := r["usage"].(map[string]any)
	if num(u["prompt_tokens"]) != 5 || num(u["completion_tokens"]) != 12 || num(u["total_tokens"]) != 17 || u["prompt_tokens_details"] == nil {
		t.Errorf("usage %v", u)
	}
	if r["timings"] == nil {
		t.Error("no timings")
	}
	lp := ch["logprobs"].(map[string]any)
	tokens, tlp, top, off := lp["tokens"].([]any), lp["token_logprobs"].([]any), lp["top_logprobs"].([]any), lp["text_offset"].([]any)
	if len(tokens) != 12 || len(tlp) != 12 || len(top) != 12 || len(off) != 12 || len(top[0].(map[string]any)) != 2 {
		t.Errorf("legacy logprobs: %v", lp)
	}
	joined := ""
	for i, tk := range tokens {
		if int(num(off[i])) != len(joined) {
			t.Errorf("text_offset[%d] = %v, want %d", i, off[i], len(joined))
		}
		joined += tk.(string)
	}
	if joined != want {
		t.Errorf("logprob tokens %q", joined)
	}
	// finish_reason "stop" on a stop string.
	body["stop"] = "world"
	ch = postOK(t, ts.URL+"/v1/completions", body)["choices"].([]any)[0].(map[string]any)
	if ch["finish_reason"] != "stop" || ch["text"] != ", the " {
		t.Errorf("stop: %v", ch)
	}

	// Streaming: text chunks, a final chunk with finish_reason, the usage
	// chunk, [DONE].
	delete(body, "stop")
	body["stream"] = true
	body["stream_options"] = map[string]any{"include_usage": true}
	evs := stream(t, ts.URL+"/v1/completions", body)
	if evs[len(evs)-1] != "[DONE]" {
		t.Fatalf("last event %q", evs[len(evs)-1])
	}
	text, finish := "", ""
	nlp := 0
	for i, e := range evs[:len(evs)-1] {
		m := obj(t, []byte(e))
		if m["object"] != "text_completion" {
			t.Errorf("event %d object %v", i, m["object"])
		}
		chs := m["choices"].([]any)
		if i == len(evs)-2 {
			if len(chs) != 0 || num(m["usage"].(map[string]any)["completion_tokens"]) != 12 {
				t.Errorf("usage chunk: %s", e)
			}
			continue
		}
		c := chs[0].(map[string]any)
		text += c["text"].(string)
		if f, ok := c["finish_reason"].(string); ok {
			finish = f
		}
		if l, ok := c["logprobs"].(map[string]any); ok {
			nlp += len(l["tokens"].([]any))
		}
	}
	if text != want || finish != "length" || nlp != 12 {
		t.Errorf("stream: text %q finish %q logprob tokens %d", text, finish, nlp)
	}
}

func TestChatCompletions(t *testing.T) {
	s, ts := newTestServer(t, Options{Slots: 1})
	msgs := []map[string]any{
		{"role": "system", "content": "You are terse."},
		{"role": "user", "content": []map[string]any{{"type": "text", "text": "Say hello."}}},
	}
	prompt := postOK(t, ts.URL+"/apply-template", map[string]any{"messages": msgs})["prompt"].(string)
	if prompt != "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nSay hello.<|im_end|>\n<|im_start|>assistant\n" {
		t.Errorf("apply-template: %q", prompt)
	}
	// The chat completion is the completion of the rendered prompt.
	want := postOK(t, ts.URL+"/completion", map[string]any{"prompt": prompt, "n_predict": 10, "temperature": 0})["content"].(string)
	body := map[string]any{"model": "gpt-4o", "messages": msgs, "max_completion_tokens": 10, "temperature": 0, "logprobs": true, "top_logprobs": 2}
	r := postOK(t, ts.URL+"/v1/chat/completions", body)
	if r["object"] != "chat.completion" || !strings.HasPrefix(r["id"].(string), "chatcmpl-") || r["system_fingerprint"] == nil {
		t.Errorf("envelope %v", r)
	}
	ch := r["choices"].([]any)[0].(map[string]any)
	msg := ch["message"].(map[string]any)
	if msg["role"] != "assistant" || msg["content"] != want || ch["finish_reason"] != "length" {
		t.Errorf("choice %v (want content %q)", ch, want)
	}
	content := ch["logprobs"].(map[string]any)["content"].([]any)
	if len(content) != 10 {
		t.Fatalf("%d logprobs entries", len(content))
	}
	for _, c := range content {
		e := c.(map[string]any)
		if _, ok := e["logprob"].(float64); !ok || len(e["top_logprobs"].([]any)) != 2 {
			t.Errorf("logprobs entry %v", e)
		}
		checkBytes(t, e)
	}
	// logprobs without top_logprobs: the chosen tokens' log-probabilities
	// are still computed (the engine computes them only when asked), the
	// same values.
	lpBody := map[string]any{"messages": msgs, "max_completion_tokens": 10, "temperature": 0, "logprobs": true}
	lpCh := postOK(t, ts.URL+"/v1/chat/completions", lpBody)["choices"].([]any)[0].(map[string]any)
	lpContent := lpCh["logprobs"].(map[string]any)["content"].([]any)
	if len(lpContent) != len(content) {
		t.Fatalf("logprobs without top_logprobs: %d entries, want %d", len(lpContent), len(content))
	}
	for i := range content {
		a, b := content[i].(map[string]any), lpContent[i].(map[string]any)
		if lp := num(b["logprob"]); lp != num(a["logprob"]) || !(lp < 0) || len(b["top_logprobs"].([]any)) != 0 {
			t.Errorf("entry %d without top_logprobs: %v, with: %v", i, b, a["logprob"])
		}
	}
	u := r["usage"].(map[string]any)
	if num(u["prompt_tokens"]) != float64(len(s.eng.Tok.Encode(prompt, true, true))) || num(u["completion_tokens"]) != 10 {
		t.Errorf("usage %v", u)
	}
	// max_tokens works too, and logprobs off gives null.
	delete(body, "max_completion_tokens")
	delete(body, "top_logprobs")
	body["max_tokens"] = 3
	body["logprobs"] = false
	ch = postOK(t, ts.URL+"/v1/chat/completions", body)["choices"].([]any)[0].(map[string]any)
	if ch["logprobs"] != nil || !strings.HasPrefix(want, ch["message"].(map[string]any)["content"].(string)) {
		t.Errorf("max_tokens 3: %v", ch)
	}

	// Streaming: the first delta has the role, [DONE] ends it, usage on
	// request, logprobs per chunk.
	body = map[string]any{"messages": msgs, "max_tokens": 10, "temperature": 0, "stream": true,
		"stream_options": map[string]any{"include_usage": true}, "logprobs": true, "top_logprobs": 1}
	evs := stream(t, ts.URL+"/v1/chat/completions", body)
	if evs[len(evs)-1] != "[DONE]" {
		t.Fatalf("last event %q", evs[len(evs)-1])
	}
	text, finish, nlp := "", "", 0
	var id string
	for i, e := range evs[:len(evs)-1] {
		m := obj(t, []byte(e))
		if m["object"] != "chat.completion.chunk" {
			t.Errorf("event %d: object %v", i, m["object"])
		}
		if id == "" {
			id = m["id"].(string)
		} else if m["id"] != id {
			t.Errorf("event %d: id %v != %v", i, m["id"], id)
		}
		chs := m["choices"].([]any)
		if i == len(evs)-2 {
			// The usage chunk is the last: it has the timings (as llama-server).
			if len(chs) != 0 || num(m["usage"].(map[string]any)["completion_tokens"]) != 10 || m["timings"] == nil {
				t.Errorf("usage chunk %s", e)
			}
			continue
		}
		c := chs[0].(map[string]any)
		d := c["delta"].(map[string]any)
		if i == 0 && d["role"] != "assistant" {
			t.Errorf("first delta %v", d)
		}
		if i > 0 && d["role"] != nil {
			t.Errorf("delta %d repeats the role", i)
		}
		if s, ok := d["content"].(string); ok {
			text += s
		}
		if f, ok := c["finish_reason"].(string); ok {
			finish = f
			if i != len(evs)-3 || m["timings"] != nil {
				t.Errorf("finish_reason on chunk %d of %d, timings %v", i, len(evs), m["timings"])
			}
		}
		if l, ok := c["logprobs"].(map[string]any); ok {
			nlp += len(l["content"].([]any))
		}
	}
	if text != want || finish != "length" || nlp != 10 {
		t.Errorf("stream: %q (want %q) finish %q logprobs %d", text, want, finish, nlp)
	}
	// Without include_usage no usage chunk.
	delete(body, "stream_options")
	evs = stream(t, ts.URL+"/v1/chat/completions", body)
	for _, e := range evs[:len(evs)-1] {
		if strings.Contains(e, `"usage"`) {
			t.Errorf("usage without include_usage: %s", e)
		}
	}
}

func TestTokenize(t *testing.T) {
	s, ts := newTestServer(t, Options{Slots: 1})
	r := postOK(t, ts.URL+"/tokenize", map[string]any{"content": "Hello world"})
	toks := r["tokens"].([]any)
	want := s.eng.Tok.Encode("Hello world", false, true)
	if fmt.Sprint(toks) != fmt.Sprint(anySlice(want)) {
		t.Errorf("tokenize: %v, want %v", toks, want)
	}
	r = postOK(t, ts.URL+"/tokenize", map[string]any{"content": "Hello world", "add_special": true})
	if num(r["tokens"].([]any)[0]) != float64(s.eng.Tok.BOS()) {
		t.Errorf("add_special: %v", r["tokens"])
	}
	// parse_special: "<|endoftext|>" is one token, or text.
	sp := postOK(t, ts.URL+"/tokenize", map[string]any{"content": "<|endoftext|>"})["tokens"].([]any)
	nsp := postOK(t, ts.URL+"/tokenize", map[string]any{"content": "<|endoftext|>", "parse_special": false})["tokens"].([]any)
	if len(sp) != 1 || len(nsp) < 2 {
		t.Errorf("parse_special: %v vs %v", sp, nsp)
	}
	r = postOK(t, ts.URL+"/tokenize", map[string]any{"content": "Hello world", "with_pieces": true})
	pieces := ""
	for _, p := range r["tokens"].([]any) {
		m := p.(map[string]any)
		pieces += m["piece"].(string)
		if _, ok := m["id"].(float64); !ok {
			t.Errorf("piece without id: %v", m)
		}
	}
	if pieces != "Hello world" {
		t.Errorf("pieces %q", pieces)
	}
	// A piece that is not valid UTF-8 is given as bytes.
	r = postOK(t, ts.URL+"/tokenize", map[string]any{"content": "日本", "with_pieces": true})
	raw, _ := json.Marshal(r)
	var assembled []byte
	for _, p := range r["tokens"].([]any) {
		switch v := p.(map[string]any)["piece"].(type) {
		case string:
			assembled = append(assembled, v...)
		case []any:
			for _, b := range v {
				assembled = append(assembled, byte(num(b)))
			}
		}
	}
	if string(assembled) != "日本" {
		t.Errorf("pieces of 日本: %s", raw)
	}
	r = postOK(t, ts.URL+"/tokenize", map[string]any{"content": ""})
	if toks, ok := r["tokens"].([]any); !ok || len(toks) != 0 {
		t.Errorf("empty content: %v", r)
	}
	// detokenize inverts tokenize.
	r = postOK(t, ts.URL+"/detokenize", map[string]any{"tokens": want})
	if r["content"] != "Hello world" {
		t.Errorf("detokenize: %v", r)
	}
	r = postOK(t, ts.URL+"/detokenize", map[string]any{"tokens": []int{}})
	if r["content"] != "" {
		t.Errorf("detokenize []: %v", r)
	}
}

func anySlice(x []int) []any {
	out := make([]any, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}
