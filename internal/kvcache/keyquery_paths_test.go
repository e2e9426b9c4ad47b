package kvcache

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
)

// The paths other than a live write that encode K rows — restores,
// pages converted as they are saved, context shifts — refine them with
// the sequence's query statistic (KeyQuery) exactly as a live write or
// requantization does.

// keyQuery turns query-aware key encoding on (repackCache's cfg).
func keyQuery(c *Config) { c.KeyQuery = true }

// observeQueries hands sequence 0 of c n tokens' queries in both layers
// (drawn from seed, sharing a direction per head as real ones do).
func observeQueries(c *Cache, seed uint64, n int) {
	r := rand.New(rand.NewPCG(seed, seed+1))
	dir := randRow(r, 2*4*64, 1)
	for pos := 0; pos < n; pos++ {
		q := randRow(r, 2*4*64, 0.3)
		for i := range q {
			q[i] += dir[i]
		}
		for l := 0; l < 2; l++ {
			c.ObserveQuery(l, 0, pos, q)
		}
	}
}

// sameKeyRows reports whether the K rows of positions [lo, hi) of
// sequence 0 are the same bytes in a and b.
func sameKeyRows(a, b *Cache, lo, hi int) bool {
	for l := 0; l < 2; l++ {
		for pos := lo; pos < hi; pos++ {
			for h := 0; h < 2; h++ {
				if !bytes.Equal(headBytes(a, &a.seqs[0][l].k, pos, h, 64), headBytes(b, &b.seqs[0][l].k, pos, h, 64)) {
					return false
				}
			}
		}
	}
	return true
}

// A restore into a sequence holding a query statistic refines the keys
// it encodes with it: every page is byte for byte what a live
// requantization of the file's rows makes under the same statistic, the
// statistic is kept, and the keys differ from a squared-error restore.
// Into a sequence holding none (fresh), keys are encoded by squared error
// alone: the pages equal a restore with KeyQuery off.
func TestKeyQueryRestore(t *testing.T) {
	_, file, row := centreFile.write(t)
	n := centreFile.n
	observe := func(c *Cache) { observeQueries(c, 41, 60) }
	for _, tc := range []struct {
		page   int
		kc     KeyChannels
		vc     bool
		tk, tv tensor.Type
	}{
		{16, KeyChannelsCentre, true, tensor.CB3, tensor.Q4_0},
		{64, KeyChannelsOff, false, tensor.Q4_0, tensor.Q5_0},
		{32, KeyChannelsOff, false, tensor.CB3, tensor.Q8_0},
	} {
		restore := func(c *Cache) {
			t.Helper()
			if m, err := c.ReadSeqAs(0, bytes.NewReader(file), RestoreOptions{K: &tc.tk, V: &tc.tv}); err != nil || m != n {
				t.Fatalf("ReadSeqAs: %d, %v", m, err)
			}
		}
		got := repackCache(t, tc.page, tc.kc, tc.vc, tensor.F16, tensor.F16, keyQuery)
		observe(got)
		r := rand.New(rand.NewPCG(7, 8))
		for pos := 0; pos < 20; pos++ { // what the slot held before
			got.Store(0, 0, pos, offsetKey(r, 128), offsetKey(r, 128))
			got.Store(1, 0, pos, offsetKey(r, 128), offsetKey(r, 128))
		}
		restore(got)
		want := liveRequantized(t, n, row, tc.page, tc.kc, tc.vc, tc.tk, tc.tv, observe, keyQuery)
		samePages(t, got, want, n)
		if got.keyStat(0, 0) == nil || got.keyStat(0, 1) == nil {
			t.Fatalf("%+v: the restore dropped the query statistic", tc)
		}
		mse := repackCache(t, tc.page, tc.kc, tc.vc, tensor.F16, tensor.F16)
		restore(mse)
		if sameKeyRows(got, mse, 0, n) {
			t.Fatalf("%+v: the statistic refined no key", tc)
		}
		fresh := repackCache(t, tc.page, tc.kc, tc.vc, tensor.F16, tensor.F16, keyQuery)
		restore(fresh)
		samePages(t, fresh, mse, n)
		if fresh.keyStat(0, 0) != nil {
			t.Fatalf("%+v: a fresh restore holds a statistic", tc)
		}
	}
}

// Pages converted as they are saved (WriteSeqAs, --cache-spill-type) are
// refined with the sequence's statistic: the file equals that of the
// same cache after a live requantization to those types.
func TestKeyQuerySpill(t *testing.T) {
	_, _, row := centreFile.write(t)
	n := centreFile.n
	for _, kc := range []KeyChannels{KeyChannelsOff, KeyChannelsCentre} {
		fill := func(cfg ...func(*Config)) *Cache {
			c := repackCache(t, 16, kc, false, tensor.F16, tensor.F16, cfg...)
			observeQueries(c, 43, 50)
			for pos := 0; pos < n; pos++ {
				for l := 0; l < 2; l++ {
					c.Store(l, 0, pos, row(l, 0, pos), row(l, 1, pos))
				}
			}
			return c
		}
		cb4, q8 := tensor.CB4, tensor.Q8_0
		var spilled, live, plain bytes.Buffer
		if err := fill(keyQuery).WriteSeqAs(0, &spilled, &cb4, &q8); err != nil {
			t.Fatal(err)
		}
		c := fill(keyQuery)
		convertAll(t, c, Target{K: &cb4, V: &q8})
		if err := c.WriteSeq(0, &live); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(spilled.Bytes(), live.Bytes()) {
			t.Fatalf("key channels %s: the spilled file differs from the live requantization's", kc)
		}
		if err := fill().WriteSeqAs(0, &plain, &cb4, &q8); err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(spilled.Bytes(), plain.Bytes()) {
			t.Fatalf("key channels %s: the statistic refined no key of the spill", kc)
		}
	}
}

// A context shift re-encodes the keys it moves refined with the
// sequence's statistic: each moved K row (and, for pages with channel
// statistics, rebuilt whole, each rebuilt page's statistics) is byte for
// byte what a live requantization makes of the same rows shifted in f32
// pages under the same statistic — the pages taken to f32 by a restore,
// which keeps the statistic. Page-aligned shifts (pages move and are
// re-encoded in place) and unaligned ones (pages rebuilt).
func TestKeyQueryShift(t *testing.T) {
	const n = 150
	rope := func(l int, rows []float32, delta int) { testRope(rows, delta) }
	for _, tc := range []struct {
		typ           tensor.Type
		kc            KeyChannels
		keep, discard int
	}{
		{tensor.Q4_0, KeyChannelsOff, 32, 64},
		{tensor.CB4, KeyChannelsOff, 21, 37},
		{tensor.CB3, KeyChannelsCentre, 21, 37},
		{tensor.Q5_0, KeyChannelsCentre, 40, 50},
	} {
		r := rand.New(rand.NewPCG(51, 52))
		build := func(cfg ...func(*Config)) *Cache {
			c := repackCache(t, 16, tc.kc, false, tc.typ, tensor.Q8_0, cfg...)
			observeQueries(c, 53, n)
			return c
		}
		c, plain := build(keyQuery), build()
		for pos := 0; pos < n; pos++ {
			for l := 0; l < 2; l++ {
				k, v := offsetKey(r, 128), offsetKey(r, 128)
				c.Store(l, 0, pos, k, v)
				plain.Store(l, 0, pos, k, v)
			}
		}
		var file bytes.Buffer
		if err := c.WriteSeq(0, &file); err != nil {
			t.Fatal(err)
		}
		ref := build(keyQuery)
		f32 := tensor.F32
		if _, err := ref.ReadSeqAs(0, bytes.NewReader(file.Bytes()), RestoreOptions{K: &f32, V: &f32}); err != nil {
			t.Fatal(err)
		}
		for _, x := range []*Cache{c, plain, ref} {
			if err := x.Shift(0, tc.keep, tc.discard, rope); err != nil {
				t.Fatal(err)
			}
		}
		convertAll(t, ref, Target{K: &tc.typ})
		newN := n - tc.discard
		if !sameKeyRows(c, ref, tc.keep, newN) {
			t.Fatalf("%s %s keep %d discard %d: moved keys differ from a live requantization's", tc.typ, tc.kc, tc.keep, tc.discard)
		}
		if tc.kc != KeyChannelsOff {
			for l := 0; l < 2; l++ {
				for j := tc.keep / 16; j < (newN+15)/16; j++ {
					gp, wp := c.seqs[0][l].k.pages[j], ref.seqs[0][l].k.pages[j]
					if !bytes.Equal(gp.mem.b[gp.meta:], wp.mem.b[wp.meta:]) {
						t.Fatalf("%s %s: layer %d page %d: channel statistics differ", tc.typ, tc.kc, l, j)
					}
				}
			}
		}
		if sameKeyRows(c, plain, tc.keep, newN) {
			t.Fatalf("%s %s: the statistic refined no moved key", tc.typ, tc.kc)
		}
	}
}
