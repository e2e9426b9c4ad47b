package cachepolicy

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/tensor"
)

func newCache(t *testing.T, seqs, ctx, page int) *kvcache.Cache {
	ts := []tensor.Type{tensor.F16, tensor.F16}
	c, err := kvcache.New(kvcache.Config{Layers: 2, KVHeads: 2, HeadDimK: 64, HeadDimV: 64, Seqs: seqs, Ctx: ctx,
		PageTokens: page, Threads: 1, TypeK: ts, TypeV: ts, Rotate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// apply plans the policy and carries the plan out, one page at a time
// (the engine's converter does it in parallel), counting conversions.
func apply(p *Policy, c *kvcache.Cache, in Input, st *Stats) error {
	pl, err := p.Plan(c, in)
	for _, w := range pl.Writes {
		c.SetSeqWriteTypes(w.Seq, w.K, w.V)
		c.SetPageWriteTypes(w.Seq, w.Page, w.PageK, w.PageV)
	}
	for _, s := range pl.Steps {
		if c.ConvertPage(s) {
			st.Record(s)
		}
	}
	return err
}

func row(r *rand.Rand) []float32 {
	x := make([]float32, 128)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

func store(c *kvcache.Cache, seq, pos int, r *rand.Rand) {
	for l := 0; l < 2; l++ {
		c.Store(l, seq, pos, row(r), row(r))
	}
}

// Multistage: as a sequence grows, the first Sink tokens' page and the
// pages holding the last Hot tokens stay at tier 0, older pages step down
// by age, and every page is converted exactly once per ladder step.
func TestMultistageByAge(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	k, v := DefaultLadders()
	p := &Policy{LadderK: k, LadderV: v, Hot: 128, Warm: 256, Sink: 4}
	if err := p.Validate(8, 64, 64); err != nil {
		t.Fatal(err)
	}
	c := newCache(t, 1, 2048, 64)
	var st Stats
	for pos := 0; pos < 2000; pos++ {
		store(c, 0, pos, r)
		apply(p, c, Input{Seqs: []SeqState{{Seq: 0, Active: true}}}, &st) // after every token, as decoding would
	}
	n := c.Len(0)
	want := int64(0)
	for i := 0; i < c.NumPages(0, 0); i++ {
		age := n - min((i+1)*64, n)
		tier := 0
		if i*64 >= p.Sink {
			tier = p.tierForAge(age, 3)
		}
		want += int64(tier) * 2 * 2 // both sides, both layers, one conversion per step
		for l := 0; l < 2; l++ {
			for _, side := range []bool{false, true} {
				got, rot, _ := c.Page(kvcache.PageRef{Seq: 0, Layer: l, V: side, Index: i})
				ladder := k
				if side {
					ladder = v
				}
				if got != ladder[tier] {
					t.Fatalf("page %d (age %d) layer %d V=%v: %s, want tier %d = %s", i, age, l, side, got, tier, ladder[tier])
				}
				if rot != (got.BlockSize() > 1) {
					t.Errorf("page %d: rotated=%v for %s", i, rot, got)
				}
			}
		}
	}
	if st.ByAge != want {
		t.Errorf("%d age conversions, want %d (one per page per ladder step)", st.ByAge, want)
	}
	// New tokens are written at tier 0.
	if wk, wv := c.WriteTypes(0, 1); wk != k[0] || wv != v[0] {
		t.Errorf("write types %s/%s", wk, wv)
	}
}

// By context length: the cache steps down as the sequence reaches each
// length, pages and new writes alike.
func TestStepDownByLength(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	steps, err := ParseLengths("0:f16,300:q8_0,600:q4_0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Policy{LengthK: steps, LengthV: steps}
	if err := p.Validate(8, 64, 64); err != nil {
		t.Fatal(err)
	}
	c := newCache(t, 1, 1024, 64)
	var st Stats
	check := func(want tensor.Type) {
		t.Helper()
		for i := 0; i < c.NumPages(0, 0); i++ {
			if got, _, _ := c.Page(kvcache.PageRef{Seq: 0, Layer: 1, V: true, Index: i}); got != want {
				t.Fatalf("at length %d page %d is %s, want %s", c.Len(0), i, got, want)
			}
		}
	}
	for pos := 0; pos < 700; pos++ {
		store(c, 0, pos, r)
		apply(p, c, Input{Seqs: []SeqState{{Seq: 0, Active: true}}}, &st)
		switch c.Len(0) {
		case 299:
			check(tensor.F16)
		case 300:
			check(tensor.Q8_0)
		case 600, 700:
			check(tensor.Q4_0)
		}
	}
	if st.ByLength == 0 {
		t.Error("no length conversions counted")
	}
}

// Budget: MakeRoom demotes the least recently used sequence's oldest pages
// first, never lets the cache exceed the budget, and fails clearly when
// even the lowest types cannot fit.
func TestBudget(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	k, v := DefaultLadders()
	c := newCache(t, 3, 4096, 64)
	pageF16 := PageBytes(c, 0)
	p := &Policy{LadderK: k, LadderV: v, Budget: 12 * pageF16}
	var st Stats
	order := []int{2, 0, 1} // seq 2 least recently used
	for pos := 0; pos < 64*60; pos++ {
		for _, seq := range []int{0, 2} {
			if pos%64 == 0 {
				if err := apply(p, c, Input{Seqs: []SeqState{{Seq: seq, Active: true, Adding: 1}}, Order: order}, &st); err != nil {
					if !errors.Is(err, ErrBudget) {
						t.Fatal(err)
					}
					goto full
				}
			}
			store(c, seq, pos, r)
			if c.Bytes() > p.Budget {
				t.Fatalf("cache holds %d bytes > budget %d", c.Bytes(), p.Budget)
			}
		}
	}
	t.Fatal("budget never ran out")
full:
	if st.ByBudget == 0 {
		t.Fatal("nothing demoted")
	}
	// Seq 2 (least recently used) was demoted first: its first page is at
	// the bottom before seq 0's last page moved.
	first2, _, _ := c.Page(kvcache.PageRef{Seq: 2, Layer: 0, V: true, Index: 0})
	if first2 != v[len(v)-1] {
		t.Errorf("seq 2's oldest V page is %s, want the ladder's bottom", first2)
	}
	if c.Bytes() > p.Budget {
		t.Errorf("over budget: %d > %d", c.Bytes(), p.Budget)
	}
	if min := p.MinBytes(c, c.Len(0)) + p.MinBytes(c, c.Len(2)); min > p.Budget {
		t.Errorf("MinBytes %d above budget although it fit", min)
	}
}

func TestParse(t *testing.T) {
	for s, want := range map[string]int64{"48MiB": 48 << 20, "1.5GiB": 3 << 29, "500MB": 500e6, "1048576": 1 << 20, "64k": 64 << 10} {
		if got, err := ParseBytes(s); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1MiB", "lots"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) accepted", bad)
		}
	}
	if _, err := ParseLadder("f16,q9_0"); err == nil {
		t.Error("bad ladder accepted")
	}
	if _, err := ParseLengths("2048"); err == nil {
		t.Error("length without type accepted")
	}
	p := &Policy{LadderK: []tensor.Type{tensor.Q4_0, tensor.F16}, LadderV: []tensor.Type{tensor.F16}}
	if err := p.Validate(8, 64, 64); err == nil {
		t.Error("ladder going up accepted")
	}
	if Tier([]tensor.Type{tensor.F16, tensor.Q8_0, tensor.Q4_0}, tensor.Q5_0) != 2 {
		t.Error("Tier of an off-ladder type")
	}
}

func TestEvictSetting(t *testing.T) {
	for in, want := range map[string]Evict{"sinks:64,window:4096": {64, 4096}, "window:512": {0, 512}, " window:512 , sinks:4 ": {4, 512}, "": {}, "off": {}} {
		got, err := ParseEvict(in)
		if err != nil || got != want {
			t.Errorf("ParseEvict(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"sinks:64", "window:0", "window:-1", "window:x", "sinks:1,sinks:2,window:3", "depth:3,window:4"} {
		if _, err := ParseEvict(bad); err == nil {
			t.Errorf("ParseEvict(%q) accepted", bad)
		}
	}
	e := Evict{Sinks: 20, Window: 100}
	for _, c := range []struct{ n, keep, discard int }{
		{100, 32, 0}, {147, 32, 0}, {148, 32, 16}, {400, 32, 256}, {401, 32, 256}, {415, 32, 272},
	} {
		// 16-token pages: the sinks round up to 2 pages; the window starts
		// at the page boundary at or before n-100.
		if keep, discard := e.Span(c.n, 16); keep != c.keep || discard != c.discard {
			t.Errorf("Span(%d) = %d, %d; want %d, %d", c.n, keep, discard, c.keep, c.discard)
		}
	}
	// Eviction is the budget's last step: refused without a budget, by field and by flag.
	ev := "sinks:4,window:64"
	if _, err := (&Update{Evict: &ev, Hot: new(int)}).Apply(nil, 8, 64, 64); err == nil || !strings.Contains(err.Error(), "evict") {
		t.Errorf("evict without a budget: %v", err)
	}
	f := Flags{LadderK: "f16,q8_0", LadderV: "f16,q8_0", Evict: ev}
	if _, err := f.Policy(); err == nil || !strings.Contains(err.Error(), "--cache-evict") {
		t.Errorf("--cache-evict without --cache-budget: %v", err)
	}
	f.Budget = "1MiB"
	p, err := f.Policy()
	if err != nil || p.Evict != (Evict{4, 64}) || p.JSON()["evict"] != ev {
		t.Errorf("--cache-evict %s --cache-budget 1MiB: %+v, %v", ev, p, err)
	}
}

// TestAutoPreset: "dynamic": "auto" (and --dynamic-cache auto) install
// AutoPolicy; giving a ladder or window with it is an error naming
// dynamic (or the flag); an unknown word is still a length-rule error.
func TestAutoPreset(t *testing.T) {
	want := AutoPolicy()
	if k, v := want.LadderK[len(want.LadderK)-1], want.LadderV[len(want.LadderV)-1]; k.BitsPerValue() <= v.BitsPerValue() {
		t.Errorf("auto: K's bottom tier %v not above V's %v (keys carry most of the error)", k, v)
	}
	var u Update
	if err := json.Unmarshal([]byte(`{"dynamic": "auto"}`), &u); err != nil {
		t.Fatal(err)
	}
	p, err := u.Apply(nil, 8, 64, 64)
	if err != nil || p == nil {
		t.Fatal(p, err)
	}
	f := Flags{LadderK: "f16,q8_0,q5_0", LadderV: "f16,q8_0,q4_0", Warm: DefaultWarm, Dynamic: "auto"}
	fp, err := f.Policy()
	if err != nil || fp == nil {
		t.Fatal(fp, err)
	}
	for _, got := range []*Policy{p, fp} {
		if fmt.Sprint(got.LadderK, got.LadderV, got.Hot, got.Warm, got.Sink) != fmt.Sprint(want.LadderK, want.LadderV, want.Hot, want.Warm, want.Sink) || len(got.LengthK) > 0 || len(got.LengthV) > 0 {
			t.Errorf("auto gives %+v, want %+v", got, want)
		}
	}
	for _, body := range []string{`{"dynamic": "auto", "hot": 128}`, `{"dynamic": "auto", "ladder_k": ["f16", "q4_0"]}`} {
		var u Update
		if err := json.Unmarshal([]byte(body), &u); err != nil {
			t.Fatal(err)
		}
		_, err := u.Apply(nil, 8, 64, 64)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "dynamic" {
			t.Errorf("%s: %v, want an error naming dynamic", body, err)
		}
	}
	f.Hot = 128
	if _, err := f.Policy(); err == nil || !strings.Contains(err.Error(), "--dynamic-cache") {
		t.Errorf("--dynamic-cache auto --cache-hot 128: %v", err)
	}
	var bad Update
	json.Unmarshal([]byte(`{"dynamic": "automatic"}`), &bad)
	if _, err := bad.Apply(nil, 8, 64, 64); err == nil {
		t.Error(`"automatic" accepted`)
	}
}
