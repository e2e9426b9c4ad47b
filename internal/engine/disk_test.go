package engine_test

import (
	"bytes"
	"io"
	"slices"
	"testing"

	"github.com/kvserve/kvserve/internal/cachedisk"
	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/tensor"
)

// The schedulers, the budget check and the users' turns are tierrig_test.go's.

// Eight users take turns in multi-turn chats over two slots. With the disk
// tier, a returning user's conversation is loaded instead of evaluated
// again (after a restart too, from the same directory); the greedy outputs
// equal those of eight slots that never drop anything.
func TestDiskTierUsersTakingTurns(t *testing.T) {
	e := tierEngine(t)
	const users, turns = 8, 3
	dir := t.TempDir()
	newSched := func(slots int, disk bool) (*engine.Scheduler, func() int64) {
		o := engine.SchedulerOptions{Slots: slots, SlotCtx: 512}
		if disk {
			d, err := cachedisk.Open(dir, "test", 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			o.Disk = d
		}
		return tierScheduler(t, e, o)
	}

	var ref, plain, before, after turnTally
	s, stop := newSched(users, false)
	want := userTurns(t, e, s, true, 0, turns, make([][]int, users), &ref)
	stop()
	s, stop = newSched(2, false)
	userTurns(t, e, s, false, 0, turns, make([][]int, users), &plain)
	stop()

	s, stop = newSched(2, true)
	convs := make([][]int, users)
	got := userTurns(t, e, s, false, 0, turns-1, convs, &before)
	stop()
	// A restart: a new scheduler opens the same directory.
	s, stop = newSched(2, true)
	got = append(got, userTurns(t, e, s, false, turns-1, turns, convs, &after)...)
	stop()
	sameOutputs(t, got, want, "with the disk tier")
	if before.loaded == 0 || after.loaded == 0 {
		t.Errorf("tokens loaded from disk: %d before the restart, %d after", before.loaded, after.loaded)
	}
	diskEval := before.evaluated + after.evaluated
	t.Logf("prompt tokens evaluated: %d with eight slots, %d over two slots, %d over two slots with the disk tier (%d loaded; %d of them after a restart)",
		ref.evaluated, plain.evaluated, diskEval, before.loaded+after.loaded, after.loaded)
	if diskEval >= plain.evaluated {
		t.Errorf("the disk tier evaluated %d prompt tokens, without it %d", diskEval, plain.evaluated)
	}
}

// diskBudget is the budget tests run the disk tier under: about 12 pages
// at f16.
const diskBudget = 12 * 64 << 10

// openDiskTier opens a disk tier in a fresh directory.
func openDiskTier(t *testing.T) *cachedisk.Tier {
	t.Helper()
	d, err := cachedisk.Open(t.TempDir(), "test", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// budgetTurns runs four users' three turns over two 256-token slots with
// a disk tier under pol (the default ladders when it has none) at
// diskBudget, with cache options co (the default when co.TypeK is empty);
// inspect, when given, reads the cache after the last turn. It fails t if
// the cache ever held more than the budget between steps or nothing was
// loaded from the tier, and returns the tokens loaded and the tier.
func budgetTurns(t *testing.T, pol cachepolicy.Policy, co engine.CacheOptions, inspect func(*kvcache.Cache) error) (loaded int, d *cachedisk.Tier) {
	t.Helper()
	e := tierEngine(t)
	if pol.LadderK == nil {
		pol.LadderK, pol.LadderV = cachepolicy.DefaultLadders()
	}
	pol.Budget = diskBudget
	d = openDiskTier(t)
	s, stop := tierScheduler(t, e, engine.SchedulerOptions{Slots: 2, SlotCtx: 256, Policy: &pol, Disk: d, Cache: co})
	var tl turnTally
	userTurns(t, e, s, false, 0, 3, make([][]int, 4), &tl)
	if inspect != nil {
		s.Do(inspect)
	}
	if b := stop(); b != 0 {
		t.Errorf("the cache held %d bytes, over the budget of %d", b, diskBudget)
	}
	if tl.loaded == 0 {
		t.Errorf("nothing was loaded from the disk tier (tier %+v)", d.Stats())
	}
	return tl.loaded, d
}

// Under a cache budget the disk tier loads entries at the bottom of the
// ladders, after clearing idle slots, and the cache never exceeds the
// budget between steps.
func TestDiskTierUnderBudget(t *testing.T) {
	loaded, d := budgetTurns(t, cachepolicy.Policy{}, engine.CacheOptions{}, nil)
	t.Logf("%d tokens loaded from disk; tier %+v", loaded, d.Stats())
}

// SchedulerOptions.SpillK/SpillV (--cache-spill-type): entries are written
// converted down (about half the bytes at q8_0 from f16) and still loaded
// for a returning conversation (at the types it was written in).
func TestDiskTierSpillType(t *testing.T) {
	e := tierEngine(t)
	q8 := tensor.Q8_0
	bytesFor := func(spill *tensor.Type) (int64, int) {
		d := openDiskTier(t)
		s, stop := tierScheduler(t, e, engine.SchedulerOptions{Slots: 1, SlotCtx: 512, Disk: d, SpillK: spill, SpillV: spill})
		a := e.Tok.Encode("The first conversation is about the sea and the boats in the harbour at dawn, and the fishermen.", true, true)
		b := e.Tok.Encode("Another one, about the mountains and the snow on their tops in winter, and the climbers.", true, true)
		loaded := 0
		for _, p := range [][]int{a, b, append(append([]int(nil), a...), 13)} {
			loaded += ask(t, s, p, 0, 4).DiskTokens
		}
		stop()
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

// Per-layer cold tiers under a budget with the disk tier: entries are
// loaded at each layer's own bottom (RestoreOptions.LayersK/LayersV), the
// budget demotes each layer down its own ladder, and admission reserves
// each layer at its own bottom; no page ever sits below its layer's cold
// type (K layer 0 stops at q8_0, V layer 1 at q5_0, where the shared
// ladders go on to q5_0 / q4_0), and the cache never exceeds the budget.
func TestDiskTierColdLayers(t *testing.T) {
	pol := cachepolicy.Policy{ColdK: cachepolicy.ColdLayers{0: tensor.Q8_0}, ColdV: cachepolicy.ColdLayers{1: tensor.Q5_0}}
	pol.LadderK, pol.LadderV = cachepolicy.DefaultLadders()
	cold := map[tensor.Type]int{}
	loaded, _ := budgetTurns(t, pol, engine.CacheOptions{}, func(c *kvcache.Cache) error {
		for seq := 0; seq < c.Config().Seqs; seq++ {
			for _, p := range c.Pages(seq) {
				if !slices.Contains(pol.Ladder(p.Layer, p.V), p.Type) {
					t.Errorf("slot %d layer %d V=%v page %d is %s, not on its ladder %v", seq, p.Layer, p.V, p.Index, p.Type, pol.Ladder(p.Layer, p.V))
				}
				if b, _ := pol.Bottom(p.Layer, p.V); b == p.Type {
					cold[p.Type]++
				}
			}
		}
		return nil
	})
	if cold[tensor.Q8_0] == 0 || cold[tensor.Q5_0] == 0 {
		t.Errorf("pages at their layer's bottom by type: %v (want K layer 0's q8_0 and V layer 1's q5_0 among them)", cold)
	}
	t.Logf("%d tokens loaded from disk; pages at their layer's bottom: %v", loaded, cold)
}

// With key channels (centred keys, the setting of every fidelity figure)
// and value channels, entries still load under a budget: converted on
// load to each layer's bottom type with fresh channel statistics
// (kvcache.ReadSeqAs repacks pages with statistics as a live conversion
// does). The cache never exceeds the budget, and quantized pages carry
// their statistics.
func TestDiskTierChannelsUnderBudget(t *testing.T) {
	co := engine.DefaultCacheOptions()
	co.KeyChannels, co.ValueChannels = "centre", "centre"
	withStats, quantized := 0, 0
	loaded, _ := budgetTurns(t, cachepolicy.Policy{ColdK: cachepolicy.ColdLayers{0: tensor.Q8_0}}, co, func(c *kvcache.Cache) error {
		if cfg := c.Config(); cfg.KeyChannels != kvcache.KeyChannelsCentre || !cfg.ValueChannels {
			t.Errorf("cache key channels %s, value channels %v", cfg.KeyChannels, cfg.ValueChannels)
		}
		for seq := 0; seq < c.Config().Seqs; seq++ {
			for _, p := range c.Pages(seq) {
				if p.Type.BlockSize() > 1 {
					quantized++
					if p.MetaBytes > 0 {
						withStats++
					}
				}
			}
		}
		return nil
	})
	if quantized == 0 || withStats != quantized {
		t.Errorf("%d of %d quantized pages carry channel statistics", withStats, quantized)
	}
	t.Logf("%d tokens loaded from disk with centred keys and values; %d quantized pages", loaded, quantized)
}

// Entries spilled under one key/value channel setting load under another
// (engine.DiskTierKey no longer names the settings, and entries written
// under the older keys that did are served too): centred keys and values
// to channels off, off to centred, scale keys to centred. The loaded
// pages are byte for byte what a live requantization makes of the
// entry's rows in the loading cache (its rows decoded into f32 pages of
// that cache, converted to the entry's types).
func TestDiskTierOtherChannels(t *testing.T) {
	e := tierEngine(t)
	key, older := engine.DiskTierKey("test", e.Model, engine.DefaultCacheOptions())
	prompt := e.Tok.Encode("The first conversation is about the sea and the boats in the harbour at dawn, the fishermen mending their nets, "+
		"the gulls over the water and the smell of salt and tar on the quay before the market opens.", true, true)
	other := e.Tok.Encode("Another one, about the mountains and the snow on their tops in winter.", true, true)
	opts := func(kc string) engine.CacheOptions {
		co := engine.DefaultCacheOptions()
		co.TypeK, co.TypeV, co.PageTokens = "q4_0", "q8_0", tierPage
		co.KeyChannels, co.ValueChannels = kc, "off"
		if kc == "centre" {
			co.ValueChannels = "centre"
		}
		return co
	}
	for _, tc := range []struct {
		from, to string
		legacy   bool // the entry is written under the older key naming from
	}{{"centre", "off", true}, {"off", "centre", false}, {"scale", "centre", true}} {
		t.Run(tc.from+" to "+tc.to, func(t *testing.T) {
			dir := t.TempDir()
			wkey := key
			if tc.legacy {
				wkey = key + "/key channels " + tc.from
				if tc.from == "centre" {
					wkey += "/value channels centre"
				}
				if !slices.Contains(older, wkey) {
					t.Fatalf("older keys %q lack %q", older, wkey)
				}
			}
			w, err := cachedisk.Open(dir, wkey, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			s, stop := tierScheduler(t, e, engine.SchedulerOptions{Slots: 1, SlotCtx: 512, Disk: w, Cache: opts(tc.from)})
			ask(t, s, prompt, 0, 4)
			ask(t, s, other, 0, 4) // the first conversation is spilled
			stop()

			d, err := cachedisk.OpenWith(cachedisk.Options{Dir: dir, Key: key, Older: older})
			if err != nil {
				t.Fatal(err)
			}
			m := d.Best(prompt, tierPage, "")
			if m == nil {
				t.Fatalf("no entry served under %q (tier %+v)", tc.to, d.Stats())
			}
			var payload []byte
			if err := d.Load(m, func(r io.Reader) error { payload, err = io.ReadAll(r); return err }); err != nil {
				t.Fatal(err)
			}
			s, stop = tierScheduler(t, e, engine.SchedulerOptions{Slots: 1, SlotCtx: 512, Disk: d, Cache: opts(tc.to)})
			defer stop()
			res := ask(t, s, append(slices.Clone(m.Tokens), other[1:4]...), 0, 2)
			if res.DiskTokens != len(m.Tokens) {
				t.Fatalf("%d tokens loaded from the disk tier, want the entry's %d", res.DiskTokens, len(m.Tokens))
			}
			// The entry's full pages, as loaded, against a live requantization.
			full := len(m.Tokens) / tierPage * tierPage
			ref, err := e.NewCache(opts(tc.to), 1, 512)
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			f32, q4, q8 := tensor.F32, tensor.Q4_0, tensor.Q8_0
			if _, err := ref.ReadSeqAs(0, bytes.NewReader(payload), kvcache.RestoreOptions{K: &f32, V: &f32}); err != nil {
				t.Fatal(err)
			}
			steps, _, err := ref.Plan(kvcache.Target{K: &q4, V: &q8})
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range steps {
				ref.ConvertPage(st)
			}
			ref.Truncate(0, full)
			var want, got bytes.Buffer
			if err := ref.WriteSeq(0, &want); err != nil {
				t.Fatal(err)
			}
			s.Do(func(c *kvcache.Cache) error {
				for _, p := range c.Pages(0) {
					if wantMeta := p.Type.BlockSize() > 1 && tc.to != "off"; (p.MetaBytes > 0) != wantMeta {
						t.Errorf("layer %d V=%v page %d (%s): %d bytes of channel statistics", p.Layer, p.V, p.Index, p.Type, p.MetaBytes)
					}
				}
				c.Truncate(0, full) // the test ends here: the slot's tokens no longer matter
				return c.WriteSeq(0, &got)
			})
			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Errorf("the loaded pages (%d bytes written) differ from a live requantization of the entry's rows (%d)", got.Len(), want.Len())
			}
			t.Logf("%d tokens written under %s channels, loaded under %s; %d positions compared", len(m.Tokens), tc.from, tc.to, full)
		})
	}
}
