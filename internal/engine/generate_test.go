package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/sample"
	"github.com/kvserve/kvserve/internal/tensor"
	"github.com/kvserve/kvserve/internal/testassets"
)

// Greedy generation (ignoring EOS, as the reference did) through the engine reproduces the reference
// continuation's tokens, and the streamed text is their exact detokenization.
func TestGenerateGreedyMatchesReference(t *testing.T) {
	ref := loadGreedy(t)
	e, err := engine.Load(testassets.Path(t, "models/kvtest-27m-f16.gguf"), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	p := sample.DefaultParams()
	p.Temperature = 0
	var sb strings.Builder
	st, err := e.Generate(context.Background(), engine.GenerateOptions{
		Prompt: "Once upon a time", NPredict: len(ref) - 5, Sample: p, IgnoreEOS: true, Cache: engine.DefaultCacheOptions(),
	}, func(s string) error { sb.WriteString(s); return nil })
	if err != nil {
		t.Fatal(err)
	}
	for i := range ref {
		if i >= len(st.Tokens) || st.Tokens[i] != ref[i] {
			t.Fatalf("tokens differ at %d:\n got %v\nwant %v", i, st.Tokens, ref)
		}
	}
	if want := e.Tok.Decode(ref[5:], false); sb.String() != want {
		t.Errorf("streamed text %q, want %q", sb.String(), want)
	}
	if st.Stop != "limit" || st.GenTokens != len(ref)-5 {
		t.Errorf("stop %q after %d tokens", st.Stop, st.GenTokens)
	}
}

// kvserve run -v reports the cache it ended with: every stored position
// (the prompt and all generated tokens but the last, which is sampled and
// never stored) and its bytes by type (issue 17: it always said 0).
func TestGenerateReportsCacheUsage(t *testing.T) {
	e, err := engine.Load("", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	p := sample.DefaultParams()
	p.Temperature = 0
	st, err := e.Generate(context.Background(), engine.GenerateOptions{
		Prompt: "Once upon a time", NPredict: 8, Ctx: 256, Sample: p, IgnoreEOS: true, Cache: engine.DefaultCacheOptions(),
	}, func(string) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if st.CacheTokens != st.PromptTokens+st.GenTokens-1 || st.GenTokens != 8 {
		t.Errorf("cache holds %d tokens after %d prompt + %d generated", st.CacheTokens, st.PromptTokens, st.GenTokens)
	}
	if st.CacheBytes <= 0 || st.CacheByType[tensor.F16] != st.CacheBytes {
		t.Errorf("cache bytes %d, by type %v", st.CacheBytes, st.CacheByType)
	}
}
