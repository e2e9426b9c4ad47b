package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/grammar"
	"github.com/kvserve/kvserve/internal/sample"
)

// A grammar constrains what the scheduler generates: the output matches
// it, generation stops once it is complete, max tokens cut it short
// ("limit"), and a grammar that hits a limit ends the request with
// ErrGrammar.
func TestSchedulerGrammar(t *testing.T) {
	e, err := engine.Load("", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s, err := e.NewScheduler(engine.SchedulerOptions{Slots: 2, SlotCtx: 512, Cache: engine.DefaultCacheOptions()})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Close()
	run := func(g *grammar.Grammar, n int, p sample.Params) (string, *engine.Result, error) {
		ch, err := s.Submit(context.Background(), &engine.Request{Prompt: e.Tok.Encode("Once upon a time", true, true), NPredict: n, Sample: p, SlotID: -1, Grammar: g})
		if err != nil {
			t.Fatal(err)
		}
		text := ""
		for ev := range ch {
			if ev.Err != nil {
				return text, ev.Done, ev.Err
			}
			text += ev.Text
			if ev.Done != nil {
				return text, ev.Done, nil
			}
		}
		t.Fatal("no result")
		return "", nil, nil
	}

	g := grammar.MustParse(`root ::= " there was a " [a-z]+ (" " [a-z]+){0,3} "."`)
	text, res, err := run(g, 64, greedy())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("greedy: %q", text)
	if !regexp.MustCompile(`^ there was a [a-z]+( [a-z]+){0,3}\.$`).MatchString(text) || res.StopType != "eos" || res.Text != text {
		t.Errorf("greedy: %q stop %q", text, res.StopType)
	}

	p := sample.DefaultParams()
	p.Temperature, p.Seed = 1.2, 7
	js, err := grammar.FromJSONSchema([]byte(`{"type":"object","properties":{"name":{"type":"string","maxLength":12},"n":{"type":"integer","minimum":1,"maximum":99},"ok":{"type":"boolean"}},"required":["name","n","ok"]}`), grammar.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for seed := range uint64(4) {
		p.Seed = seed
		text, res, err := run(js, 200, p)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("seed %d: %s", seed, text)
		var v struct {
			Name *string
			N    *int
			OK   *bool
		}
		if err := json.Unmarshal([]byte(text), &v); err != nil || v.Name == nil || v.N == nil || v.OK == nil || *v.N < 1 || *v.N > 99 || len([]rune(*v.Name)) > 12 {
			t.Errorf("seed %d: %q (%v) does not satisfy the schema", seed, text, err)
		}
		if res.StopType != "eos" {
			t.Errorf("seed %d: stop %q", seed, res.StopType)
		}
	}

	text, res, err = run(js, 3, greedy())
	if err != nil || res.StopType != "limit" || len(res.Tokens) != 3 {
		t.Errorf("cut short: %q stop %q err %v", text, res.StopType, err)
	}

	// Every path nests three deep before it can end: over a depth limit of 2.
	deep, err := grammar.Parse("root ::= \"(\" a \")\"\na ::= \"(\" b \")\"\nb ::= \"(\" c \")\"\nc ::= \"(\" c \")\" | \"x\"", grammar.Limits{MaxStackDepth: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = run(deep, 50, greedy())
	if !errors.Is(err, engine.ErrGrammar) || !errors.Is(err, grammar.ErrLimit) {
		t.Errorf("deep grammar: %v", err)
	}
	// The scheduler goes on serving.
	if _, res, err := run(g, 64, greedy()); err != nil || res.StopType != "eos" {
		t.Errorf("after the error: %v", err)
	}
}

// BenchmarkGrammarDecode compares the scheduler's decode time per token
// on the embedded model (or the model file $KVSERVE_BENCH_MODEL, e.g. a
// 128k-vocabulary `kvserve synth --preset llama-3.2-1b`) with and without
// a grammar (the mask is computed and applied each step; the vocabulary's
// trie is built by a warm-up request first):
//
//	go test -run '^$' -bench GrammarDecode ./internal/engine
func BenchmarkGrammarDecode(b *testing.B) {
	e, err := engine.Load(os.Getenv("KVSERVE_BENCH_MODEL"), 2)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	s, err := e.NewScheduler(engine.SchedulerOptions{Slots: 1, SlotCtx: 1024, Cache: engine.DefaultCacheOptions()})
	if err != nil {
		b.Fatal(err)
	}
	s.Start()
	defer s.Close()
	warm, err := s.Submit(context.Background(), &engine.Request{Prompt: e.Tok.Encode("{", true, true), NPredict: 2,
		Sample: sample.DefaultParams(), SlotID: -1, Grammar: grammar.MustParse(grammar.AnyJSONGBNF)})
	if err != nil {
		b.Fatal(err)
	}
	for range warm {
	}
	schema := `{"type":"object","properties":{"name":{"type":"string","maxLength":40},"age":{"type":"integer","minimum":0,"maximum":150},"tags":{"type":"array","items":{"type":"string","maxLength":20},"maxItems":8}},"required":["name","age","tags"]}`
	cases := []struct {
		name string
		g    *grammar.Grammar
	}{
		{"none", nil},
		{"free-json", grammar.MustParse(grammar.AnyJSONGBNF)},
		{"json-schema", func() *grammar.Grammar { g, _ := grammar.FromJSONSchema([]byte(schema), grammar.Limits{}); return g }()},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var tokens int
			var dur float64
			seed := uint64(0)
			for b.Loop() {
				p := sample.DefaultParams()
				p.Seed = seed
				seed++
				ch, err := s.Submit(context.Background(), &engine.Request{Prompt: e.Tok.Encode("{\"", true, true), NPredict: 128, Sample: p, SlotID: -1, Grammar: c.g})
				if err != nil {
					b.Fatal(err)
				}
				for ev := range ch {
					if ev.Err != nil {
						b.Fatal(ev.Err)
					}
					if ev.Done != nil {
						tokens += ev.Done.PredictedTokens
						dur += ev.Done.PredictTime.Seconds()
					}
				}
			}
			b.ReportMetric(1e3*dur/float64(tokens), "ms/token")
			b.ReportMetric(float64(tokens)/float64(b.N), "tokens/request")
		})
	}
}
