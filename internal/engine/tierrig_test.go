package engine_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/kvcache"
)

// The setup shared by the cache tier tests (disk_test.go, tiers_test.go):
// schedulers of the embedded model with 16-token pages, a cache budget
// checked between every two steps, and users taking turns in multi-turn
// chats.

// tierPage is the tests' page size in tokens. kvtest-27m: a 16-token page
// of all 8 layers, K and V, is 64 KiB at f16.
const tierPage = 16

// tierEngine loads the embedded model (closed when the test ends).
func tierEngine(t *testing.T) *engine.Engine {
	t.Helper()
	e, err := engine.Load("", 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// tierScheduler starts a scheduler of e with o, its cache at o.Cache
// (the default options when o.Cache.TypeK is empty) with tierPage-token
// pages. Under a budget (o.Policy.Budget > 0) a
// goroutine reads the cache's bytes between every two steps. stop closes
// the scheduler, then o.Disk (so that its writes are done), and returns
// the last cache size seen over the budget (0 if never).
func tierScheduler(t *testing.T, e *engine.Engine, o engine.SchedulerOptions) (s *engine.Scheduler, stop func() (over int64)) {
	t.Helper()
	if o.Cache.TypeK == "" {
		o.Cache = engine.DefaultCacheOptions()
	}
	o.Cache.PageTokens = tierPage
	s, err := e.NewScheduler(o)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	var budget int64
	if o.Policy != nil {
		budget = o.Policy.Budget
	}
	done, watched := make(chan struct{}), make(chan struct{})
	var seen int64 // written by the watcher only, read after it ends
	go func() {
		defer close(watched)
		for budget > 0 {
			select {
			case <-done:
				return
			default:
			}
			s.Do(func(c *kvcache.Cache) error {
				if b := c.Bytes(); b > budget {
					seen = b
				}
				return nil
			})
		}
	}()
	return s, func() int64 {
		close(done)
		<-watched
		s.Close()
		if o.Disk != nil {
			o.Disk.Close()
		}
		return seen
	}
}

// ask submits a greedy request for nPredict tokens with the prompt cache
// on (slot < 0: the scheduler chooses) and returns its result.
func ask(t *testing.T, s *engine.Scheduler, prompt []int, slot, nPredict int) *engine.Result {
	t.Helper()
	return submit(t, s, &engine.Request{Prompt: prompt, NPredict: nPredict, Sample: greedy(),
		SlotID: slot, IgnoreEOS: true, CachePrompt: true})
}

// submit runs r and returns its result.
func submit(t *testing.T, s *engine.Scheduler, r *engine.Request) *engine.Result {
	t.Helper()
	ch, err := s.Submit(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	_, res := collect(t, ch)
	return res
}

// turnTally counts a run's prompt tokens: evaluated, and loaded from the
// tiers.
type turnTally struct{ evaluated, loaded int }

// userTurns runs turns from..to-1 of len(convs) users, round robin: each
// turn appends a question to the user's conversation (convs, kept across
// calls; nil starts one) and 8 greedy tokens of answer. pinned puts user u
// in slot u, else the scheduler chooses. It returns the answers in order.
func userTurns(t *testing.T, e *engine.Engine, s *engine.Scheduler, pinned bool, from, to int, convs [][]int, tl *turnTally) (outs [][]int) {
	t.Helper()
	for k := from; k < to; k++ {
		for u := range convs {
			if convs[u] == nil {
				convs[u] = e.Tok.Encode(fmt.Sprintf("A conversation with user %d.", u), true, true)
			}
			convs[u] = append(convs[u], e.Tok.Encode(fmt.Sprintf(" User %d asks question number %d about the weather in the mountains today.", u, k), false, true)...)
			slot := -1
			if pinned {
				slot = u
			}
			r := ask(t, s, convs[u], slot, 8)
			tl.evaluated += r.EvaluatedTokens
			tl.loaded += r.DiskTokens
			outs = append(outs, r.Tokens)
			convs[u] = append(convs[u], r.Tokens...)
		}
	}
	return outs
}

// sameOutputs fails t at the first output of got that differs from want.
func sameOutputs(t *testing.T, got, want [][]int, what string) {
	t.Helper()
	for i := range want {
		if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
			t.Fatalf("request %d: output %v %s, %v with one unlimited slot per user", i, got[i], what, want[i])
		}
	}
}
