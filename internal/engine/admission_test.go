package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/engine"
)

// Admission in the scheduler's queue: a request pinned to a busy slot
// waits without holding back an unpinned one (which takes the idle slot,
// not the one the pinned request waits for); Started marks the start; a
// NoQueue request that cannot start at once ends with ErrNoSlot; under a
// budget, a request that can never fit is refused with ErrBudget and one
// that does not fit yet waits for room.
func TestSchedulerAdmission(t *testing.T) {
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
	prompt := e.Tok.Encode("Once upon a time", true, true)
	req := func(slot, n int) *engine.Request {
		return &engine.Request{Prompt: prompt, NPredict: n, Sample: greedy(), SlotID: slot, IgnoreEOS: true, Started: make(chan struct{})}
	}
	wait := func(what string, c <-chan struct{}) {
		t.Helper()
		select {
		case <-c:
		case <-time.After(time.Minute):
			t.Fatalf("%s never started", what)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	long := req(0, 100000)
	longCh, _ := s.Submit(ctx, long)
	wait("the long request", long.Started)
	pinned := req(0, 1)
	pinnedCh, _ := s.Submit(context.Background(), pinned)
	free := req(-1, 2)
	freeCh, _ := s.Submit(context.Background(), free)
	wait("the unpinned request", free.Started)
	if _, res := collect(t, freeCh); res.SlotID != 1 {
		t.Errorf("the unpinned request ran in slot %d", res.SlotID)
	}
	select {
	case <-pinned.Started:
		t.Fatal("the pinned request started while its slot was busy")
	default:
	}
	nq := req(0, 1)
	nq.NoQueue = true
	nqCh, _ := s.Submit(context.Background(), nq)
	if ev := <-nqCh; !errors.Is(ev.Err, engine.ErrNoSlot) {
		t.Errorf("NoQueue request for a busy slot: %+v", ev)
	}
	cancel()
	for range longCh {
	}
	wait("the pinned request", pinned.Started)
	collect(t, pinnedCh)

	// Budget: the embedded model's 256-token page is 1 MiB at f16 (the
	// write type), 320 KiB at the ladders' bottom.
	pol := &cachepolicy.Policy{Budget: 1 << 20}
	pol.LadderK, pol.LadderV = cachepolicy.DefaultLadders()
	if err := s.SetPolicy(pol); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Submit(context.Background(), req(-1, 400)); !errors.Is(err, cachepolicy.ErrBudget) {
		t.Errorf("a request that can never fit: %v", err)
	}
	a, b := req(-1, 60), req(-1, 60)
	aCh, _ := s.Submit(context.Background(), a)
	bCh, _ := s.Submit(context.Background(), b)
	wait("the first budgeted request", a.Started)
	select {
	case <-b.Started:
		t.Fatal("two requests started under a budget that holds one")
	default:
	}
	if _, res := collect(t, aCh); res.PredictedTokens != 60 {
		t.Errorf("first: %d tokens", res.PredictedTokens)
	}
	if _, res := collect(t, bCh); res.PredictedTokens != 60 {
		t.Errorf("second: %d tokens", res.PredictedTokens)
	}
}

// Under a budget, a request's reservation counts its slot's query
// statistics with --cache-key-encode query: exactly KV heads × head dim²
// float32s per attention layer more than with mse, so a request that fits
// the budget exactly with mse is refused with them.
func TestQueryStatReservation(t *testing.T) {
	e, err := engine.Load("", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	m := e.Model
	per := int64(m.NLayer * m.NHeadKV * m.HeadDim * m.HeadDim * 4)
	prompt := e.Tok.Encode("Once upon a time", true, true)
	need := func(encode string, budget int64) (int64, error) {
		co := engine.DefaultCacheOptions()
		co.KeyEncode = encode
		pol := &cachepolicy.Policy{Budget: budget}
		pol.LadderK, pol.LadderV = cachepolicy.DefaultLadders()
		s, err := e.NewScheduler(engine.SchedulerOptions{Slots: 1, SlotCtx: 512, Cache: co, Policy: pol})
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		defer s.Close()
		_, err = s.Submit(context.Background(), &engine.Request{Prompt: prompt, NPredict: 100, Sample: greedy(), SlotID: -1, IgnoreEOS: true})
		var n int64
		if err != nil {
			fmt.Sscanf(err.Error()[strings.Index(err.Error(), "needs ")+len("needs "):], "%d", &n)
		}
		return n, err
	}
	mse, err := need("mse", 1)
	if !errors.Is(err, cachepolicy.ErrBudget) || mse <= 0 {
		t.Fatalf("mse: %d, %v", mse, err)
	}
	query, err := need("query", 1)
	if !errors.Is(err, cachepolicy.ErrBudget) || query != mse+per {
		t.Fatalf("query: needs %d (%v), want %d + %d", query, err, mse, per)
	}
	if _, err := need("mse", mse); err != nil {
		t.Errorf("mse at a budget of its own need: %v", err)
	}
	if _, err := need("query", mse); !errors.Is(err, cachepolicy.ErrBudget) {
		t.Errorf("query at the mse need: %v", err)
	}
}
