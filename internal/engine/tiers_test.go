package engine_test

import (
	"testing"

	"github.com/kvserve/kvserve/internal/cachedisk"
	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/tensor"
)

// Issue 17's figure: eight users take ten turns each, round robin, over two
// slots under a cache budget that fits one conversation. Without the tiers
// a returning user's whole conversation is evaluated again; with them (a
// 4 MiB RAM tier in front of the disk tier) it is loaded — from RAM, or
// from disk after a restart of the scheduler on the same directory.
// The prompt tokens evaluated must drop at least 5×, the greedy outputs
// must equal those of eight slots with no budget, and the cache must never
// hold more than the budget between steps. The ladders are f16 only, so
// the budget drops idle slots' caches rather than demoting pages (which
// would change the outputs).
func TestTiersEightUsersTenTurns(t *testing.T) {
	e := tierEngine(t)
	const users, turns, restartAt = 8, 10, 8
	// 20 pages hold one conversation (at most ~300 tokens), not two.
	const budget = 20 * 64 << 10
	dir := t.TempDir()
	var over int64
	var ramHits, diskHits int64
	newSched := func(slots int, budgeted, disk bool) (*engine.Scheduler, func()) {
		o := engine.SchedulerOptions{Slots: slots, SlotCtx: 512}
		if budgeted {
			o.Policy = &cachepolicy.Policy{LadderK: []tensor.Type{tensor.F16}, LadderV: []tensor.Type{tensor.F16}, Budget: budget}
		}
		if disk { // a RAM tier of 4 MiB in front of the disk tier
			d, err := cachedisk.OpenWith(cachedisk.Options{Dir: dir, Key: "test", RAM: 4 << 20})
			if err != nil {
				t.Fatal(err)
			}
			o.Disk = d
		}
		s, stop := tierScheduler(t, e, o)
		return s, func() {
			if b := stop(); b != 0 {
				over = b
			}
			if o.Disk != nil {
				st := o.Disk.Stats()
				ramHits += st.RAMHits
				diskHits += st.Hits - st.RAMHits
			}
		}
	}

	var ref, plain, tiered, after turnTally
	s, stop := newSched(users, false, false)
	want := userTurns(t, e, s, true, 0, turns, make([][]int, users), &ref)
	stop()
	s, stop = newSched(2, true, false)
	userTurns(t, e, s, false, 0, turns, make([][]int, users), &plain)
	stop()
	convs := make([][]int, users)
	s, stop = newSched(2, true, true)
	got := userTurns(t, e, s, false, 0, restartAt, convs, &tiered)
	stop()
	s, stop = newSched(2, true, true) // a restart: the same directory
	got = append(got, userTurns(t, e, s, false, restartAt, turns, convs, &after)...)
	stop()

	sameOutputs(t, got, want, "with the tiers")
	if over != 0 {
		t.Errorf("the cache held %d bytes, over the budget of %d", over, budget)
	}
	with := tiered.evaluated + after.evaluated
	ratio := float64(plain.evaluated) / float64(with)
	t.Logf("prompt tokens evaluated: %d with eight unlimited slots; over two slots under a %d-byte budget: %d without the tiers, %d with them (%.2f× fewer; %d loaded, %d of them after a restart; %d evaluated after it; entries loaded: %d from RAM, %d from disk)",
		ref.evaluated, budget, plain.evaluated, with, ratio, tiered.loaded+after.loaded, after.loaded, after.evaluated, ramHits, diskHits)
	if ramHits == 0 || diskHits == 0 {
		t.Errorf("entries loaded: %d from RAM, %d from disk; want both tiers used", ramHits, diskHits)
	}
	if ratio < 5 {
		t.Errorf("the tiers cut prompt evaluation %.2f×, want at least 5×", ratio)
	}
	if after.loaded == 0 {
		t.Error("nothing was loaded after the restart")
	}
}
