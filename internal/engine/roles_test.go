package engine_test

import (
	"context"
	"testing"

	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/grammar"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/tensor"
)

// thinkGrammar makes the test model reason in a <think> block, then
// answer.
var thinkGrammar = grammar.MustParse(`root ::= "<think>" (" " [a-z]+){60,60} " </think>" (" " [a-z]+){40,40} "."`)

var think = &engine.ReasoningMarkers{Open: "<think>", Close: "</think>"}

func roleScheduler(t *testing.T, pol *cachepolicy.Policy) (*engine.Engine, *engine.Scheduler) {
	t.Helper()
	e, err := engine.Load("", 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	co := engine.DefaultCacheOptions()
	co.PageTokens = 16
	s, err := e.NewScheduler(engine.SchedulerOptions{Slots: 1, SlotCtx: 1024, Cache: co, Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Close)
	return e, s
}

// A reasoning chat under role rules: prompt pages at q8_0, generated at
// f16, reasoning written as generated while the model thinks and stepped
// down to q4_0 once the answer starts — watched between every step.
func TestReasoningStepsDownWhenAnswerStarts(t *testing.T) {
	q8, f16, q4 := tensor.Q8_0, tensor.F16, tensor.Q4_0
	pol := &cachepolicy.Policy{Roles: [3]cachepolicy.RoleRule{
		{K: q8, V: q8, HasK: true, HasV: true}, {K: f16, V: f16, HasK: true, HasV: true},
		{K: q4, V: q4, HasK: true, HasV: true, After: cachepolicy.AfterAnswer}}}
	pol.LadderK, pol.LadderV = cachepolicy.DefaultLadders()
	e, s := roleScheduler(t, pol)
	prompt := e.Tok.Encode("Question: what is the colour of the sky on a clear day? Think first, then answer.", true, true)

	// Watch the cache between steps: its bytes, and the types of the
	// pages holding only reasoning.
	type sample struct {
		bytes          int64
		reasoningPages int
		reasoningType  tensor.Type // of every reasoning-only page (0 when mixed or none)
		promptOK       bool        // every full prompt page at q8_0
	}
	var samples []sample
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			default:
			}
			s.Do(func(c *kvcache.Cache) error {
				sm := sample{bytes: c.Bytes(), promptOK: true}
				types := map[tensor.Type]bool{}
				for _, p := range c.Pages(0) {
					switch p.Roles.Label() {
					case "reasoning":
						sm.reasoningPages++
						types[p.Type] = true
					case "prompt":
						if p.Tokens == 16 && p.Type != q8 {
							sm.promptOK = false
						}
					}
				}
				if len(types) == 1 {
					for t := range types {
						sm.reasoningType = t
					}
				}
				samples = append(samples, sm)
				return nil
			})
		}
	}()
	ch, err := s.Submit(context.Background(), &engine.Request{Prompt: prompt, NPredict: 600, Sample: greedy(), SlotID: -1,
		Grammar: thinkGrammar, Reasoning: think})
	if err != nil {
		t.Fatal(err)
	}
	text, res := collect(t, ch)
	close(stop)
	<-watched
	t.Logf("%d tokens: %q", len(res.Tokens), text)
	// While the model thinks, its reasoning pages are at f16; once the
	// answer starts they are at q4_0.
	var before, after *sample
	for i := range samples {
		sm := &samples[i]
		if !sm.promptOK {
			t.Fatal("a full prompt page is not at q8_0")
		}
		switch {
		case sm.reasoningType == f16 && after == nil:
			before = sm
		case sm.reasoningType == q4 && after == nil:
			after = sm
		case after != nil && sm.reasoningType != q4 && sm.reasoningPages > 0:
			t.Fatalf("after the step-down, reasoning pages are %v", sm.reasoningType)
		}
	}
	if before == nil || after == nil || before.reasoningPages < 3 {
		t.Fatalf("never saw the reasoning at f16 (%v) then at q4_0 (%v)", before, after)
	}
	t.Logf("cache bytes: %d while thinking (%d reasoning pages at f16), %d once the answer started (%d at q4_0)",
		before.bytes, before.reasoningPages, after.bytes, after.reasoningPages)
	if after.bytes >= before.bytes {
		t.Errorf("the step-down freed nothing: %d -> %d bytes", before.bytes, after.bytes)
	}
	s.Do(func(c *kvcache.Cache) error {
		for _, p := range c.Pages(0) {
			want := map[string]tensor.Type{"prompt": q8, "reasoning": q4, "generated": f16}[p.Roles.Label()]
			if p.Roles.Label() == "mixed" {
				want = p.Type // checked in cachepolicy
			}
			if p.Type != want {
				t.Errorf("page %d (%s) of layer %d is %s, want %s", p.Index, p.Roles.Label(), p.Layer, p.Type, want)
			}
		}
		return nil
	})
}

// With "drop", a finished request's slot is cut before its reasoning:
// its tokens and its cache end at the same place, the next turn reuses
// the prefix up to there, and produces what it produces from a fresh
// cache.
func TestReasoningDroppedAtEnd(t *testing.T) {
	pol := &cachepolicy.Policy{Roles: [3]cachepolicy.RoleRule{{}, {}, {Drop: true}}}
	e, s := roleScheduler(t, pol)
	prompt := e.Tok.Encode("Question: what is the colour of the sky? Answer:", true, true)
	ch, err := s.Submit(context.Background(), &engine.Request{Prompt: prompt, NPredict: 600, Sample: greedy(), SlotID: 0,
		Grammar: thinkGrammar, Reasoning: think, CachePrompt: true})
	if err != nil {
		t.Fatal(err)
	}
	text, _ := collect(t, ch)
	var cached, held int
	s.Do(func(c *kvcache.Cache) error {
		cached, held = len(s.SlotTokens(0)), c.Len(0)
		return nil
	})
	if cached != held || cached != len(prompt) {
		t.Fatalf("after the drop the slot lists %d tokens and its cache holds %d; want both %d (the prompt: the output began with <think>)", cached, held, len(prompt))
	}
	if st := s.Stats(); st.Policy.DroppedTokens == 0 {
		t.Error("no dropped tokens counted")
	}
	// The next turn: the template shows the answer, not the reasoning.
	_, answer, _ := cut(text, "</think>")
	next := append(append([]int(nil), prompt...), e.Tok.Encode(answer+"\nQuestion: and at night? Answer:", false, true)...)
	ch, err = s.Submit(context.Background(), &engine.Request{Prompt: next, NPredict: 24, Sample: greedy(), SlotID: 0, CachePrompt: true})
	if err != nil {
		t.Fatal(err)
	}
	reused, res := collect(t, ch)
	if res.CachedTokens != len(prompt) {
		t.Errorf("the next turn reused %d tokens, want the %d before the reasoning", res.CachedTokens, len(prompt))
	}
	_, fresh := roleScheduler(t, pol)
	ch, err = fresh.Submit(context.Background(), &engine.Request{Prompt: next, NPredict: 24, Sample: greedy(), SlotID: 0})
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := collect(t, ch); reused != want {
		t.Errorf("with the reused prefix: %q; from a fresh cache: %q", reused, want)
	}
}

func cut(s, sep string) (string, string, bool) {
	for i := 0; i+len(sep) <= len(s); i++ {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}
