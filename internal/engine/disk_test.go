package engine_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/kvserve/kvserve/internal/cachedisk"
	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/tensor"
)

// Eight users take turns in multi-turn chats over two slots. With the disk
// tier, a returning user's conversation is loaded instead of evaluated
// again (after a restart too, from the same directory); the greedy outputs
// equal those of eight slots that never drop anything.
func TestDiskTierUsersTakingTurns(t *testing.T) {
	e, err := engine.Load("", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const users, turns, P = 8, 3, 16
	dir := t.TempDir()
	newSched := func(slots int, disk bool) *engine.Scheduler {
		co := engine.DefaultCacheOptions()
		co.PageTokens = P
		o := engine.SchedulerOptions{Slots: slots, SlotCtx: 512, Cache: co}
		if disk {
			d, err := cachedisk.Open(dir, "test", 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			o.Disk = d
		}
		s, err := e.NewScheduler(o)
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		return s
	}
	run := func(s *engine.Scheduler, prompt []int, slot int) *engine.Result {
		t.Helper()
		ch, err := s.Submit(context.Background(), &engine.Request{Prompt: prompt, NPredict: 8, Sample: greedy(),
			SlotID: slot, IgnoreEOS: true, CachePrompt: true})
		if err != nil {
			t.Fatal(err)
		}
		var res *engine.Result
		for ev := range ch {
			if ev.Err != nil {
				t.Fatal(ev.Err)
			}
			if ev.Done != nil {
				res = ev.Done
			}
		}
		return res
	}
	turn := func(u, k int) []int {
		return e.Tok.Encode(fmt.Sprintf(" User %d asks question number %d about the weather in the mountains today.", u, k), false, true)
	}
	// conversations runs every turn of every user, round robin; slot < 0
	// lets the scheduler choose, else user u is pinned to slot u.
	conversations := func(s *engine.Scheduler, pinned bool, from, to int, convs [][]int) (outs [][]int, evaluated, loaded int) {
		for k := from; k < to; k++ {
			for u := 0; u < users; u++ {
				if convs[u] == nil {
					convs[u] = e.Tok.Encode(fmt.Sprintf("A conversation with user %d.", u), true, true)
				}
				convs[u] = append(convs[u], turn(u, k)...)
				slot := -1
				if pinned {
					slot = u
				}
				r := run(s, convs[u], slot)
				evaluated += r.EvaluatedTokens
				loaded += r.DiskTokens
				outs = append(outs, r.Tokens)
				convs[u] = append(convs[u], r.Tokens...)
			}
		}
		return outs, evaluated, loaded
	}

	ref := newSched(users, false)
	want, refEval, _ := conversations(ref, true, 0, turns, make([][]int, users))
	ref.Close()
	plain := newSched(2, false)
	_, plainEval, _ := conversations(plain, false, 0, turns, make([][]int, users))
	plain.Close()

	s := newSched(2, true)
	convs := make([][]int, users)
	got, diskEval, loaded := conversations(s, false, 0, turns-1, convs)
	s.Close()
	// A restart: a new scheduler opens the same directory.
	s = newSched(2, true)
	got2, diskEval2, loaded2 := conversations(s, false, turns-1, turns, convs)
	s.Close()
	got = append(got, got2...)
	for i := range want {
		if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
			t.Fatalf("turn %d: output %v with the disk tier, %v with eight slots", i, got[i], want[i])
		}
	}
	if loaded == 0 || loaded2 == 0 {
		t.Errorf("tokens loaded from disk: %d before the restart, %d after", loaded, loaded2)
	}
	t.Logf("prompt tokens evaluated: %d with eight slots, %d over two slots, %d over two slots with the disk tier (%d loaded; %d of them after a restart)",
		refEval, plainEval, diskEval+diskEval2, loaded+loaded2, loaded2)
	if diskEval+diskEval2 >= plainEval {
		t.Errorf("the disk tier evaluated %d prompt tokens, without it %d", diskEval+diskEval2, plainEval)
	}
}

// Under a cache budget the disk tier loads entries at the bottom of the
// ladders, after clearing idle slots, and the cache never exceeds the
// budget between steps.
func TestDiskTierUnderBudget(t *testing.T) {
	e, err := engine.Load("", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const P = 16
	k, v := cachepolicy.DefaultLadders()
	// kvtest-27m: a 16-token page of all 8 layers, K and V, is 64 KiB at
	// f16; give about 12 such pages.
	const budget = 12 * 64 << 10
	pol := &cachepolicy.Policy{LadderK: k, LadderV: v, Budget: budget}
	d, err := cachedisk.Open(t.TempDir(), "test", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	co := engine.DefaultCacheOptions()
	co.PageTokens = P
	s, err := e.NewScheduler(engine.SchedulerOptions{Slots: 2, SlotCtx: 256, Cache: co, Policy: pol, Disk: d})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Close()
	var over atomic.Int64
	stop, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			default:
			}
			s.Do(func(c *kvcache.Cache) error {
				if b := c.Bytes(); b > budget {
					over.Store(b)
				}
				return nil
			})
		}
	}()
	convs := make([][]int, 4)
	loaded := 0
	for turn := 0; turn < 3; turn++ {
		for u := range convs {
			if convs[u] == nil {
				convs[u] = e.Tok.Encode(fmt.Sprintf("A conversation with user %d about the sea and the mountains.", u), true, true)
			}
			convs[u] = append(convs[u], e.Tok.Encode(fmt.Sprintf(" Question %d of user %d: what is the weather like?", turn, u), false, true)...)
			ch, err := s.Submit(context.Background(), &engine.Request{Prompt: convs[u], NPredict: 8, Sample: greedy(), SlotID: -1, IgnoreEOS: true, CachePrompt: true})
			if err != nil {
				t.Fatal(err)
			}
			for ev := range ch {
				if ev.Err != nil {
					t.Fatal(ev.Err)
				}
				if ev.Done != nil {
					loaded += ev.Done.DiskTokens
					convs[u] = append(convs[u], ev.Done.Tokens...)
				}
			}
		}
	}
	close(stop)
	<-watched
	if b := over.Load(); b != 0 {
		t.Errorf("the cache held %d bytes, over the budget of %d", b, budget)
	}
	if loaded == 0 {
		t.Error("nothing was loaded from the disk tier")
	}
	t.Logf("%d tokens loaded from disk; tier %+v", loaded, d.Stats())
}

// SchedulerOptions.SpillK/SpillV (--cache-spill-type): entries are written
// converted down (about half the bytes at q8_0 from f16) and still loaded
// for a returning conversation (at the types it was written in).
func TestDiskTierSpillType(t *testing.T) {
	e, err := engine.Load("", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	q8 := tensor.Q8_0
	bytesFor := func(spill *tensor.Type) (int64, int) {
		d, err := cachedisk.Open(t.TempDir(), "test", 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		co := engine.DefaultCacheOptions()
		co.PageTokens = 16
		s, err := e.NewScheduler(engine.SchedulerOptions{Slots: 1, SlotCtx: 512, Cache: co, Disk: d, SpillK: spill, SpillV: spill})
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		defer s.Close()
		a := e.Tok.Encode("The first conversation is about the sea and the boats in the harbour at dawn, and the fishermen.", true, true)
		b := e.Tok.Encode("Another one, about the mountains and the snow on their tops in winter, and the climbers.", true, true)
		loaded := 0
		for _, p := range [][]int{a, b, append(append([]int(nil), a...), 13)} {
			ch, err := s.Submit(context.Background(), &engine.Request{Prompt: p, NPredict: 4, Sample: greedy(), SlotID: 0, IgnoreEOS: true, CachePrompt: true})
			if err != nil {
				t.Fatal(err)
			}
			for ev := range ch {
				if ev.Err != nil {
					t.Fatal(ev.Err)
				}
				if ev.Done != nil {
					loaded += ev.Done.DiskTokens
				}
			}
		}
		return d.Stats().Bytes, loaded
	}
	full, loadedFull := bytesFor(nil)
	down, loadedDown := bytesFor(&q8)
	if loadedFull == 0 || loadedDown == 0 {
		t.Fatalf("tokens loaded: %d as held, %d converted down", loadedFull, loadedDown)
	}
	if down*10 > full*6 {
		t.Errorf("tier bytes %d with q8_0 spills, %d as held: want about half", down, full)
	}
	t.Logf("disk tier bytes: %d as held (f16), %d spilled at q8_0", full, down)
}
