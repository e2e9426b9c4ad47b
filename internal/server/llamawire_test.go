package server

import (
	"strings"
	"testing"
)

// timings_per_token: every streamed chunk of /completion and of the
// OpenAI routes carries the timings so far (predicted_n counting up), as
// llama-server; without it only the last chunk has them.
func TestTimingsPerToken(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 1})
	for _, c := range []struct {
		url  string
		body map[string]any
	}{
		{"/completion", map[string]any{"prompt": "Once upon a time", "n_predict": 5, "ignore_eos": true}},
		{"/v1/completions", map[string]any{"prompt": "Once upon a time", "max_tokens": 5, "ignore_eos": true}},
		{"/v1/chat/completions", map[string]any{"messages": userMsg("Tell me a story."), "max_tokens": 5, "ignore_eos": true}},
	} {
		for _, per := range []bool{true, false} {
			c.body["timings_per_token"] = per
			c.body["stream"] = true
			chunks := streamChat(t, ts.URL+c.url, c.body)
			last := -1.0
			with := 0
			for i, ch := range chunks {
				tm, ok := ch["timings"].(map[string]any)
				final := i == len(chunks)-1
				if !ok {
					if per && i > 0 && !final {
						t.Errorf("%s: chunk %d has no timings: %v", c.url, i, ch)
					}
					continue
				}
				with++
				if n := num(tm["predicted_n"]); n < last || num(tm["prompt_n"]) <= 0 {
					t.Errorf("%s: chunk %d timings %v after predicted_n %v", c.url, i, tm, last)
				} else {
					last = n
				}
			}
			if per && (with < 5 || last != 5) {
				t.Errorf("%s timings_per_token: %d chunks with timings, last predicted_n %v", c.url, with, last)
			}
			if !per && with != 1 {
				t.Errorf("%s without timings_per_token: %d chunks with timings, want only the last", c.url, with)
			}
		}
	}
}

// llama-server's Ollama-style routes: GET /api/tags (the model list, with
// its "models" list beside OpenAI's "data"; public like /v1/models),
// POST /api/show (template, context), POST /api/chat (chat completions).
func TestOllamaRoutes(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 1, APIKeys: []string{"k"}})
	for _, path := range []string{"/api/tags", "/v1/models"} {
		st, b := get(t, ts.URL+path)
		if st != 200 {
			t.Fatalf("%s without a key: %d %s", path, st, b)
		}
		m := obj(t, b)
		models, data := m["models"].([]any), m["data"].([]any)
		if len(models) != 1 || len(data) != 1 || models[0].(map[string]any)["name"] != data[0].(map[string]any)["id"] {
			t.Errorf("%s: %s", path, b)
		}
	}
	st, b := post(t, ts.URL+"/api/show", map[string]any{"model": "x"}, "Authorization", "Bearer k")
	if st != 200 || !strings.Contains(obj(t, b)["template"].(string), "im_start") {
		t.Errorf("/api/show: %d %s", st, b)
	}
	st, b = post(t, ts.URL+"/api/chat", map[string]any{"messages": userMsg("Hi"), "max_tokens": 3}, "Authorization", "Bearer k")
	if st != 200 || obj(t, b)["object"] != "chat.completion" {
		t.Errorf("/api/chat: %d %s", st, b)
	}
	if st, _ := post(t, ts.URL+"/api/chat", map[string]any{"messages": userMsg("Hi")}); st != 401 {
		t.Errorf("/api/chat without a key: %d", st)
	}
}

// n_indent (code completion): generation ends at a generated line indented
// by fewer spaces than asked (an empty line too, as llama-server), the
// line cut after its indentation, streamed
// or not; t_max_predict_ms ends it once a newline came and the time passed.
// (A grammar fixes the text the model writes.)
func TestIndentAndTimeLimits(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 1})
	code := `root ::= "def f():\n    x = 1\n    return x\ny = 2\n"`
	want := "def f():\n    x = 1\n    return x\n"
	for _, stream := range []bool{false, true} {
		body := map[string]any{"prompt": "Python:", "grammar": code, "n_indent": 4, "temperature": 0, "n_predict": 100, "stream": stream}
		var content, stop string
		if stream {
			for _, c := range streamChat(t, ts.URL+"/completion", body) {
				content += c["content"].(string)
				if s, ok := c["stop_type"].(string); ok {
					stop = s
				}
			}
		} else {
			r := postOK(t, ts.URL+"/completion", body)
			content, stop = r["content"].(string), r["stop_type"].(string)
		}
		if content != want || stop != "limit" {
			t.Errorf("n_indent 4 (stream %v): %q stop %q, want %q limit", stream, content, stop, want)
		}
	}
	r := postOK(t, ts.URL+"/completion", map[string]any{"prompt": "Python:", "grammar": code, "n_indent": 0, "temperature": 0, "n_predict": 100})
	if r["content"] != "def f():\n    x = 1\n    return x\ny = 2\n" {
		t.Errorf("without n_indent: %q", r["content"])
	}
	long := `root ::= "a\n" "x"{300}`
	r = postOK(t, ts.URL+"/completion", map[string]any{"prompt": "Letters:", "grammar": long, "t_max_predict_ms": 1, "temperature": 0, "n_predict": 400})
	if c := r["content"].(string); !strings.HasPrefix(c, "a\n") || len(c) >= 302 || r["stop_type"] != "limit" {
		t.Errorf("t_max_predict_ms 1: %d bytes %q, stop %v", len(c), c[:min(len(c), 20)], r["stop_type"])
	}
	gs := r["generation_settings"].(map[string]any)
	if num(gs["t_max_predict_ms"]) != 1 || num(gs["n_indent"]) != 0 {
		t.Errorf("generation_settings %v %v", gs["t_max_predict_ms"], gs["n_indent"])
	}
}

// As llama-server, a chat stream's timings are on its last chunk: the
// usage chunk with stream_options.include_usage, else the finish chunk.
func TestStreamTimingsOnLastChunk(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 1})
	for _, usage := range []bool{false, true} {
		body := map[string]any{"messages": userMsg("Hi"), "max_tokens": 4, "stream": true}
		if usage {
			body["stream_options"] = map[string]any{"include_usage": true}
		}
		chunks := streamChat(t, ts.URL+"/v1/chat/completions", body)
		for i, c := range chunks {
			_, has := c["timings"]
			if last := i == len(chunks)-1; has != last {
				t.Errorf("include_usage %v: chunk %d of %d has timings %v: %v", usage, i, len(chunks), has, c)
			}
		}
		if last := chunks[len(chunks)-1]; usage && last["usage"] == nil {
			t.Errorf("include_usage: the last chunk %v has no usage", last)
		}
	}
}
