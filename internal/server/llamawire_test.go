package server

import (
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
