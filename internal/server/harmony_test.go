package server

import (
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/synth"
)

// gpt-oss's harmony template sees OpenAI's reasoning_effort (as
// llama-server passes it): "high" reaches the system header, the default
// is the template's ("medium"), and chat_template_kwargs wins over it.
func TestHarmonyReasoningEffort(t *testing.T) {
	p, err := synth.Lookup("tiny-gpt-oss")
	if err != nil {
		t.Fatal(err)
	}
	ft, _ := synth.ParseFileType("f16")
	path := filepath.Join(t.TempDir(), "gpt-oss.gguf")
	if err := synth.WriteFile(path, &synth.Options{Preset: p, Type: ft, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	e, err := engine.Load(path, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s := New(Options{Engine: e, Logger: quietLog, Ctx: 512})
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer func() { ts.Close(); s.Close() }()
	msgs := []map[string]any{{"role": "user", "content": "Hi"}}
	for _, c := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"messages": msgs, "reasoning_effort": "high"}, "Reasoning: high"},
		{map[string]any{"messages": msgs}, "Reasoning: medium"},
		{map[string]any{"messages": msgs, "reasoning_effort": "low", "chat_template_kwargs": map[string]any{"reasoning_effort": "high"}}, "Reasoning: high"},
	} {
		prompt := postOK(t, ts.URL+"/apply-template", c.body)["prompt"].(string)
		if !strings.Contains(prompt, c.want) || !strings.HasSuffix(prompt, "<|start|>user<|message|>Hi<|end|><|start|>assistant") {
			t.Errorf("%v: prompt %q, want %q in it", c.body, prompt, c.want)
		}
	}
	if code, body, _ := do(t, "POST", ts.URL+"/v1/chat/completions", map[string]any{"messages": msgs, "reasoning_effort": 3}); code != 400 {
		t.Errorf("numeric reasoning_effort: %d %s", code, body)
	}
}
