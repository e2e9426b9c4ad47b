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

// TestColdLayers: per-layer cold tiers end each layer's ladder. The age
// rule sends each layer's old pages to its own cold type (the middle tiers
// stay shared); the budget demotes each layer down its own ladder and no
// further; MinBytes (admission, the /metrics capacity) counts each layer
// at its own bottom; the flags and the JSON fields give the same policy,
// and GET shows the layers back.
func TestColdLayers(t *testing.T) {
	lad := []tensor.Type{tensor.F16, tensor.Q8_0, tensor.CB4}
	p := &Policy{LadderK: lad, LadderV: lad, Hot: 64, Warm: 128,
		ColdK: ColdLayers{0: tensor.CB3}, ColdV: ColdLayers{1: tensor.Q5_0}}
	if err := p.Validate(2, 64, 64); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		l    int
		v    bool
		want string
	}{{0, false, "[f16 q8_0 cb3]"}, {1, false, "[f16 q8_0 cb4]"}, {0, true, "[f16 q8_0 cb4]"}, {1, true, "[f16 q8_0 q5_0]"}} {
		if got := fmt.Sprint(p.Ladder(c.l, c.v)); got != c.want {
			t.Errorf("Ladder(%d, %v) = %s, want %s", c.l, c.v, got, c.want)
		}
	}
	// A cold type at a middle tier's bits shortens the ladder; one below
	// the bottom replaces it.
	q := &Policy{LadderK: lad, LadderV: lad, ColdK: ColdLayers{0: tensor.Q8_0, 1: tensor.CB2}}
	if got := fmt.Sprint(q.Ladder(0, false), q.Ladder(1, false)); got != "[f16 q8_0] [f16 q8_0 cb2]" {
		t.Errorf("ladders %s", got)
	}

	// Age: each layer's old pages reach its own cold type.
	r := rand.New(rand.NewPCG(7, 8))
	c := newCache(t, 1, 2048, 64)
	var st Stats
	for pos := 0; pos < 1000; pos++ {
		store(c, 0, pos, r)
		if err := apply(p, c, Input{Seqs: []SeqState{{Seq: 0, Active: true}}}, &st); err != nil {
			t.Fatal(err)
		}
	}
	n := c.Len(0)
	for i := 0; i < c.NumPages(0, 0); i++ {
		age := n - min((i+1)*64, n)
		tier := p.tierForAge(age, 3)
		for l := 0; l < 2; l++ {
			for _, side := range []bool{false, true} {
				got, _, _ := c.Page(kvcache.PageRef{Seq: 0, Layer: l, V: side, Index: i})
				if want := p.Ladder(l, side)[tier]; got != want {
					t.Fatalf("page %d (age %d) layer %d V=%v: %s, want %s", i, age, l, side, got, want)
				}
			}
		}
	}
	if got, _, _ := c.Page(kvcache.PageRef{Seq: 0, Layer: 0, V: false, Index: 0}); got != tensor.CB3 {
		t.Errorf("layer 0's oldest K page is %s, want its cold cb3", got)
	}
	if wk, wv := c.WriteTypes(0, 0); wk != tensor.F16 || wv != tensor.F16 {
		t.Errorf("write types %s/%s, want tier 0", wk, wv)
	}

	// MinBytes: each layer at its own bottom.
	cfg := c.Config()
	per := int64(cfg.PageBytes(tensor.CB3, false) + cfg.PageBytes(tensor.CB4, true) +
		cfg.PageBytes(tensor.CB4, false) + cfg.PageBytes(tensor.Q5_0, true))
	if got := p.MinBytes(c, 130); got != 3*per {
		t.Errorf("MinBytes(130) = %d, want 3 pages of %d", got, per)
	}
	if k, v := p.BottomTypes(2); fmt.Sprint(k, v) != "[cb3 cb4] [cb4 q5_0]" {
		t.Errorf("BottomTypes %v %v", k, v)
	}

	// Budget: everything is demoted to each layer's own bottom, never below.
	b := &Policy{LadderK: lad, LadderV: lad, ColdK: p.ColdK, ColdV: p.ColdV}
	c2 := newCache(t, 1, 2048, 64)
	for pos := 0; pos < 640; pos++ {
		store(c2, 0, pos, r)
	}
	b.Budget = b.MinBytes(c2, 640) + PageBytes(c2, 0)
	if err := apply(b, c2, Input{Seqs: []SeqState{{Seq: 0, Active: true, Adding: 1}}, Order: []int{0}}, &st); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < c2.NumPages(0, 0); i++ {
		for l := 0; l < 2; l++ {
			for _, side := range []bool{false, true} {
				got, _, _ := c2.Page(kvcache.PageRef{Seq: 0, Layer: l, V: side, Index: i})
				if want, _ := b.Bottom(l, side); got != want {
					t.Fatalf("budget: page %d layer %d V=%v: %s, want the layer's bottom %s", i, l, side, got, want)
				}
			}
		}
	}
	if c2.Bytes() > b.Budget {
		t.Errorf("over budget: %d > %d", c2.Bytes(), b.Budget)
	}

	// Flags and JSON give the same policy; GET shows the layers back.
	f := Flags{LadderK: "f16,q8_0,cb4", LadderV: "f16,q8_0,cb4", Hot: 64, Warm: 256,
		ColdK: "0-4:cb3,5:q5_0,6:cb3,7:cb4", ColdV: "0:cb4, 1-4:cb3,5:cb4,6-7:cb3"}
	fp, err := f.Policy()
	if err != nil {
		t.Fatal(err)
	}
	var u Update
	if err := json.Unmarshal([]byte(`{"hot": 64, "warm": 256, "ladder_k": ["f16","q8_0","cb4"], "ladder_v": ["f16","q8_0","cb4"],
		"cold_k_layers": "0-4:cb3,5:q5_0,6:cb3,7:cb4", "cold_v_layers": "0:cb4,1-4:cb3,5:cb4,6-7:cb3"}`), &u); err != nil {
		t.Fatal(err)
	}
	jp, err := u.Apply(nil, 8, 64, 64)
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range []*Policy{fp, jp} {
		m := got.JSON()
		if m["cold_k_layers"] != "0-4:cb3,5:q5_0,6:cb3,7:cb4" || m["cold_v_layers"] != "0:cb4,1-4:cb3,5:cb4,6-7:cb3" {
			t.Errorf("JSON shows %v / %v", m["cold_k_layers"], m["cold_v_layers"])
		}
		if err := got.Validate(8, 64, 64); err != nil {
			t.Error(err)
		}
	}
	// "" clears them.
	var clear Update
	json.Unmarshal([]byte(`{"cold_k_layers": ""}`), &clear)
	cp, err := clear.Apply(jp, 8, 64, 64)
	if err != nil || len(cp.ColdK) != 0 || len(cp.ColdV) == 0 || fmt.Sprint(cp.Ladder(0, false)) != "[f16 q8_0 cb4]" {
		t.Errorf("clearing cold_k_layers: %+v, %v", cp, err)
	}
	if len(jp.ColdK) != 8 {
		t.Error("clearing changed the policy it started from")
	}
}

// TestColdLayersErrors: bad per-layer cold specs are clear errors naming
// the field (or flag), never a panic: unknown types, bad or missing layer
// numbers, overlapping ranges, layers the model lacks, types that do not
// fit the head, cold types above the ladder's top, a one-type ladder, and
// cold layers with no rule to use them.
func TestColdLayersErrors(t *testing.T) {
	for _, c := range []struct{ spec, want string }{
		{"0:q9_0", "unknown cache type"},
		{"0-4:cb3,x:cb4", "not a non-negative number"},
		{"0-4:cb3,3-5:cb4", "named twice"},
		{"2:cb3,2:cb3", "named twice"},
		{"4-2:cb3", "bad layer range"},
		{"-1:cb3", "not a non-negative number"},
		{"1--2:cb3", "bad layer range"},
		{"0-99999999999999999999:cb3", "not a non-negative number"},
		{"0-9999999:cb3", "beyond any model"},
		{"4096:cb3", "beyond any model"},
		{"cb3", "want LAYERS:TYPE"},
		{":", "unknown cache type"},
		{"0:", "unknown cache type"},
		{"0:q4_k", "unknown cache type"},
	} {
		_, err := ParseColdLayers(c.spec)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseColdLayers(%q) = %v, want an error with %q", c.spec, err, c.want)
		}
		for _, field := range []string{"cold_k_layers", "cold_v_layers"} {
			body, _ := json.Marshal(map[string]any{"hot": 64, field: c.spec})
			var u Update
			if err := json.Unmarshal(body, &u); err != nil {
				t.Fatal(err)
			}
			_, err := u.Apply(nil, 8, 64, 64)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != field {
				t.Errorf("%s %q: %v, want an error naming %s", field, c.spec, err, field)
			}
		}
		f := Flags{LadderK: "f16,q8_0,cb4", LadderV: "f16,q8_0,cb4", Hot: 64, ColdV: c.spec}
		if _, err := f.Policy(); err == nil || !strings.Contains(err.Error(), "--cache-cold-v-layers") {
			t.Errorf("--cache-cold-v-layers %q: %v", c.spec, err)
		}
	}
	if c, err := ParseColdLayers(" , "); err != nil || c != nil {
		t.Errorf(`ParseColdLayers(" , ") = %v, %v`, c, err)
	}
	// Checked against the model.
	lad := []tensor.Type{tensor.F16, tensor.Q8_0, tensor.CB4}
	for _, c := range []struct {
		p     Policy
		dim   int
		field string
		want  string
	}{
		{Policy{Hot: 64, LadderK: lad, LadderV: lad, ColdK: ColdLayers{8: tensor.CB3}}, 64, "cold_k_layers", "layer 8 does not exist: the model has layers 0-7"},
		{Policy{Hot: 64, LadderK: lad, LadderV: lad, ColdV: ColdLayers{3: tensor.CB3}}, 96, "", ""}, // the ladder's cb4 fails first
		{Policy{Hot: 64, LadderK: []tensor.Type{tensor.F16, tensor.Q8_0}, LadderV: []tensor.Type{tensor.F16, tensor.Q8_0},
			ColdV: ColdLayers{3: tensor.CB3}}, 96, "cold_v_layers", "layer 3"},
		{Policy{Hot: 64, LadderK: lad, LadderV: lad, ColdK: ColdLayers{0: tensor.F32}}, 64, "cold_k_layers", "more bits than the top"},
		{Policy{Budget: 1 << 20, LadderK: []tensor.Type{tensor.F16}, LadderV: lad, ColdK: ColdLayers{0: tensor.Q8_0}}, 64, "cold_k_layers", "at least two types"},
	} {
		err := c.p.Validate(8, c.dim, c.dim)
		if err == nil {
			t.Errorf("%+v: accepted", c.p)
			continue
		}
		if c.field == "" {
			continue
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %s: ...%s", c.p, err, c.field, c.want)
		}
	}
	// Through the update: out of range names the field.
	var u Update
	json.Unmarshal([]byte(`{"hot": 64, "cold_k_layers": "0-8:q5_0"}`), &u)
	if _, err := u.Apply(nil, 8, 64, 64); err == nil || !strings.Contains(err.Error(), "cold_k_layers: layer 8 does not exist") {
		t.Errorf("out of range: %v", err)
	}
	// Cold layers alone are no policy: an error, not silently nothing.
	f := Flags{LadderK: "f16,q8_0,cb4", LadderV: "f16,q8_0,cb4", ColdK: "0:cb3"}
	if p, err := f.Policy(); err == nil {
		t.Errorf("--cache-cold-k-layers without a rule: %+v", p)
	}
	var only Update
	json.Unmarshal([]byte(`{"cold_k_layers": "0:cb3"}`), &only)
	if p, err := only.Apply(nil, 8, 64, 64); err == nil {
		t.Errorf(`{"cold_k_layers"} alone: %+v`, p)
	}
}
