package engine

import (
	"fmt"
	"io"

	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/model"
)

// The disk tier's place in the loop (SchedulerOptions.Disk): a slot's
// cache is spilled before it is dropped, and loaded back when a prompt
// starts with more of it than the slot (or sharing) would keep. Both run
// on the loop goroutine between steps: a spill writes the slot's pages
// (no fsync: a file torn by a crash fails its checksum and is skipped), a
// load reads and checks one file.

// DiskTierKey is the disk tier's key (cachedisk.Options.Key) for caches of
// model m with options o (fp: the model's fingerprint): the model and its
// head shape. The key and value channel settings are not part of it: an
// entry's pages carry theirs in their own header and a load converts them
// to the cache's (kvcache.ReadSeqAs), so an entry spilled under one
// --cache-key-channels / --cache-value-channels setting loads under any
// other. older are the keys earlier versions wrote such entries under
// (they named the settings; cachedisk.Options.Older serves them too). A
// hybrid model's pages restore only as saved: its key keeps the settings,
// and there are no older keys.
func DiskTierKey(fp string, m *model.Model, o CacheOptions) (key string, older []string) {
	key = fmt.Sprintf("%s/%d layers/%d kv heads/%d+%d dims", fp, m.NLayer, m.NHeadKV, m.HeadDim, m.HeadDimV)
	named := func(kc kvcache.KeyChannels, vc bool) string {
		k := key + "/key channels " + kc.String()
		if vc {
			k += "/value channels centre"
		}
		return k
	}
	if m.Recurrent != nil {
		// Unparsable settings fail when the scheduler's cache is built.
		kc, _ := kvcache.ParseKeyChannels(o.KeyChannels)
		vc, _ := kvcache.ParseKeyChannels(o.ValueChannels)
		return named(kc, vc != kvcache.KeyChannelsOff), nil
	}
	for _, kc := range []kvcache.KeyChannels{kvcache.KeyChannelsOff, kvcache.KeyChannelsCentre, kvcache.KeyChannelsScale} {
		older = append(older, named(kc, false), named(kc, true))
	}
	return key, older
}

// spill writes sl's cache to the disk tier when the slot is about to keep
// only its first keep positions and holds at least a page more (an entry
// of the same tokens already there is not written again), under the
// adapter set its tokens were computed under (a cache computed partly
// under another set is not spilled).
func (s *Scheduler) spill(sl *slot, keep int) {
	d := s.o.Disk
	P := s.cache.Config().PageTokens
	if d == nil || len(sl.tokens)-keep < P || sl.adapters == mixedAdapters || d.Has(sl.tokens, string(sl.adapters)) {
		return
	}
	toks := append([]int(nil), sl.tokens...)
	if err := d.Put(toks, string(sl.adapters), func(w io.Writer) error { return s.cache.WriteSeqAs(sl.id, w, s.o.SpillK, s.o.SpillV) }); err != nil {
		s.log.Warn("cache disk tier: spill failed; the slot's cache is dropped", "slot", sl.id, "err", err)
	}
}

// loadFromDisk loads the disk tier's entry sharing the longest prefix with
// the prompt into sl when it gives at least a page more than keep, and
// returns the positions now reusable (0: nothing loaded). Under a budget
// the pages are converted to the bottom of the ladders on load (what the
// request's reservation counts), and idle slots are cleared (spilled) to
// make room first; if that cannot make room, nothing is loaded.
func (s *Scheduler) loadFromDisk(sl *slot, r *Request, set AdapterSet, keep int) int {
	d := s.o.Disk
	if d == nil {
		return 0
	}
	cfg := s.cache.Config()
	P := cfg.PageTokens
	m := d.Best(r.Prompt, keep+P, string(set))
	if m == nil {
		return 0
	}
	var opts kvcache.RestoreOptions
	if p := s.policy; p != nil && p.Budget > 0 && len(p.LadderK) > 0 && len(p.LadderV) > 0 {
		// Each layer at the bottom of its own ladder (per-layer cold types).
		opts.LayersK, opts.LayersV = p.BottomTypes(cfg.Layers)
		pages := int64((len(m.Tokens) + P - 1) / P)
		need := pages * p.BottomPageBytes(cfg)
		if !s.roomFor(sl, need, p.Budget) {
			return 0
		}
	}
	err := d.Load(m, func(rd io.Reader) error {
		_, err := s.cache.ReadSeqAs(sl.id, rd, opts)
		return err
	})
	if err != nil {
		s.log.Warn("cache disk tier: entry not loaded", "slot", sl.id, "err", err)
		return 0
	}
	sl.tokens = append(sl.tokens[:0], m.Tokens...)
	n := min(m.Common, len(r.Prompt)-1)
	n = s.cache.Reusable(sl.id, n)
	return s.policy.Reusable(s.cache, sl.id, n, len(r.Prompt))
}

// roomFor clears idle slots' caches (spilling them), least recently used
// first, until need bytes fit the budget beside what the cache holds once
// sl's own cache is replaced (and, with --cache-key-encode query, beside
// every slot's query statistics and sl's own, which it will hold again);
// it reports whether they fit.
func (s *Scheduler) roomFor(sl *slot, need, budget int64) bool {
	fits := func() bool {
		own := int64(0) // what replacing sl's cache frees: its unshared pages
		for _, p := range s.cache.Pages(sl.id) {
			if p.Holders == 1 {
				own += int64(p.Bytes)
			}
		}
		stats := s.cache.QueryStatBytes() - s.cache.SeqQueryStatBytes(sl.id) + s.cache.QueryStatBytesPerSeq()
		return s.cache.Bytes()+s.cache.StateBytes()+stats-own+need <= budget
	}
	for _, id := range s.lruOrder() {
		if fits() {
			return true
		}
		if o := s.slots[id]; o != sl && o.state == slotIdle && len(o.tokens) > 0 {
			s.spill(o, 0)
			s.cache.Clear(id)
			o.tokens = o.tokens[:0]
		}
	}
	return fits()
}
