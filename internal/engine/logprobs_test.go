package engine_test

import (
	"context"
	"math"
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/testassets"
)

// A generated token's log-probability is computed only when the request
// asks for it (Request.LogProbs or NProbs > 0): with LogProbs it is the
// plain softmax's, the value TopProbs reports for the same (greedy) token;
// without, it is left 0 (a pass over the vocabulary saved per token).
func TestSchedulerLogProbsOnRequest(t *testing.T) {
	e, err := engine.Load(testassets.Path(t, "models/kvtest-27m-f16.gguf"), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s, err := e.NewScheduler(engine.SchedulerOptions{Slots: 1, SlotCtx: 256, Cache: engine.DefaultCacheOptions()})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Close()
	run := func(logProbs bool, nProbs int) []engine.Event {
		r := &engine.Request{Prompt: e.Tok.Encode("Once upon a time", true, true), NPredict: 12, Sample: greedy(),
			SlotID: -1, LogProbs: logProbs, NProbs: nProbs}
		ch, err := s.Submit(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		var evs []engine.Event
		for ev := range ch {
			if ev.Err != nil {
				t.Fatal(ev.Err)
			}
			if ev.Done != nil {
				break
			}
			evs = append(evs, ev)
		}
		if len(evs) != 12 {
			t.Fatalf("LogProbs %v NProbs %d: %d token events, want 12", logProbs, nProbs, len(evs))
		}
		return evs
	}
	top := run(false, 1)
	lp := run(true, 0)
	none := run(false, 0)
	for i := range top {
		if lp[i].Token != top[i].Token || none[i].Token != top[i].Token {
			t.Fatalf("token %d differs between runs: %d %d %d", i, top[i].Token, lp[i].Token, none[i].Token)
		}
		if len(top[i].Top) != 1 || top[i].Top[0].ID != top[i].Token {
			t.Fatalf("token %d: greedy token %d is not the top probability %+v", i, top[i].Token, top[i].Top)
		}
		want := top[i].Top[0].LogProb
		if top[i].LogProb != want || lp[i].LogProb != want {
			t.Errorf("token %d: log-probability %g (NProbs 1), %g (LogProbs), want %g", i, top[i].LogProb, lp[i].LogProb, want)
		}
		if !(want < 0) || math.IsInf(want, 0) {
			t.Errorf("token %d: log-probability %g is not a finite negative number", i, want)
		}
		if none[i].LogProb != 0 || none[i].Top != nil {
			t.Errorf("token %d: not asked for, yet log-probability %g and top %v", i, none[i].LogProb, none[i].Top)
		}
	}
}
