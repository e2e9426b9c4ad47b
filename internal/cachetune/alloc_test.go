package cachetune

import (
	"math"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
)

// screen27m is the third round's cb2 screen of kvtest-27m (BENCHMARKS.md,
// "Per-layer sensitivity"; 3 chunks).
func screen27m() []Item {
	k := []float64{3.1e-5, 9.8e-3, 2.0e-3, 1.13e-2, 2.5e-3, 2.39e-2, 5.3e-3, 9.1e-3}
	v := []float64{6.5e-4, 1.53e-2, 1.8e-3, 7.6e-3, 1.4e-3, 8.5e-3, 1.6e-3, 3.9e-3}
	var items []Item
	for l, d := range k {
		items = append(items, Item{Side: "K", Layer: l, KLD: d, Weight: 128})
	}
	for l, d := range v {
		items = append(items, Item{Side: "V", Layer: l, KLD: d, Weight: 128})
	}
	return items
}

func types(a *Allocation, side string) string {
	var out []string
	for _, c := range a.Choices {
		if c.Side == side {
			out = append(out, c.Type)
		}
	}
	return strings.Join(out, ",")
}

// The allocator reproduces scripts/layer_alloc.py on the same screen: the
// expected types, bits and predicted KLD are the script's output
// (`layer_alloc.py SCREEN BUDGET [TYPES]`, predicted and bits printed with
// repr).
func TestAllocateMatchesScript(t *testing.T) {
	centred, err := MeansOverhead("centre", 256)
	if err != nil || centred.K != 0.0625 || centred.V != 0 {
		t.Fatalf("overhead %+v, %v", centred, err)
	}
	for _, c := range []struct {
		budget     float64
		types      string
		bits, pred float64
		k, v       string
	}{
		{4.5, DefaultTypes, 4.375, 0.004350000000000001,
			"cb2,q5_0,cb4,q5_0,cb4,q5_0,cb4,q5_0", "cb3,q5_0,cb4,cb4,cb3,cb4,cb3,cb4"},
		{3.25, DefaultTypes, 3.25, 0.021853099999999997,
			"cb2,cb4,cb2,cb4,cb3,cb4,cb3,cb3", "cb2,cb4,cb2,cb3,cb2,cb3,cb2,cb3"},
		// Exactly the cheapest setting: cb2 everywhere, K with its means.
		{2.53125, DefaultTypes, 2.53125, 0.104681,
			"cb2,cb2,cb2,cb2,cb2,cb2,cb2,cb2", "cb2,cb2,cb2,cb2,cb2,cb2,cb2,cb2"},
		{6, DefaultTypes, 5.828125, 0.00100425,
			"cb2,q5_0,q5_0,q8_0,q5_0,q8_0,q5_0,q5_0", "cb4,q8_0,q5_0,q5_0,q5_0,q5_0,q5_0,q5_0"},
		{4.5, "cb3,q4_0,q8_0", 4.46875, 0.006283040000000002,
			"cb3,q4_0,q4_0,q4_0,q4_0,q8_0,q4_0,q4_0", "cb3,q4_0,q4_0,q4_0,cb3,q4_0,cb3,q4_0"},
	} {
		kinds, err := ParseKinds(c.types)
		if err != nil {
			t.Fatal(err)
		}
		a, err := Allocate(screen27m(), kinds, c.budget, centred)
		if err != nil {
			t.Fatalf("budget %v: %v", c.budget, err)
		}
		if a.Bits != c.bits || math.Abs(a.Predicted-c.pred) > 1e-15 || types(a, "K") != c.k || types(a, "V") != c.v {
			t.Errorf("budget %v %s: bits %v predicted %v\nK %s\nV %s\nwant bits %v predicted %v\nK %s\nV %s",
				c.budget, c.types, a.Bits, a.Predicted, types(a, "K"), types(a, "V"), c.bits, c.pred, c.k, c.v)
		}
		if a.Bits > c.budget || (a.BitsK+a.BitsV)/2 != a.Bits {
			t.Errorf("budget %v: bits %v (K %v, V %v)", c.budget, a.Bits, a.BitsK, a.BitsV)
		}
	}
}

// Budgets at and below the cheapest setting, and bad input, are clear
// errors; a budget just at the cheapest setting is taken.
func TestAllocateEdges(t *testing.T) {
	kinds, _ := ParseKinds(DefaultTypes)
	centred, _ := MeansOverhead("centre", 256)
	for _, c := range []struct {
		budget float64
		want   string
	}{
		{2.53, "below the cheapest setting, 2.531 bits (cb2 everywhere, with the channel means)"},
		{2.5, "below the cheapest setting"},
		{0, "not a positive number"},
		{math.NaN(), "not a positive number"},
	} {
		if _, err := Allocate(screen27m(), kinds, c.budget, centred); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("budget %v: want an error with %q, got %v", c.budget, c.want, err)
		}
	}
	// Without key means 2.5 bits is cb2 everywhere.
	a, err := Allocate(screen27m(), kinds, 2.5, Overhead{})
	if err != nil || a.Bits != 2.5 || types(a, "K") != "cb2,cb2,cb2,cb2,cb2,cb2,cb2,cb2" {
		t.Errorf("2.5 bits without means: %+v, %v", a, err)
	}
	// A generous budget buys the most precise type everywhere.
	a, err = Allocate(screen27m(), kinds, 100, centred)
	if err != nil || types(a, "V") != "q8_0,q8_0,q8_0,q8_0,q8_0,q8_0,q8_0,q8_0" {
		t.Errorf("100 bits: %+v, %v", a, err)
	}
	// Bad screens and type lists.
	if _, err := Allocate(nil, kinds, 4.5, centred); err == nil {
		t.Error("empty screen accepted")
	}
	if _, err := Allocate([]Item{{Side: "Q", KLD: 1}}, kinds, 4.5, centred); err == nil || !strings.Contains(err.Error(), `side "Q"`) {
		t.Errorf("bad side: %v", err)
	}
	if _, err := Allocate([]Item{{Side: "K", KLD: math.Inf(1)}}, kinds, 4.5, centred); err == nil {
		t.Error("infinite KLD accepted")
	}
	for _, s := range []string{"cb2,tq9", "q4_1", "", "cb2,cb2"} {
		if _, err := ParseKinds(s); err == nil {
			t.Errorf("types %q accepted", s)
		}
	}
	if _, err := ParseKinds("tq9"); err == nil || !strings.Contains(err.Error(), "cb2, cb3, cb4, q4_0, q5_0, q5_1, q8_0, f16") {
		t.Errorf("unknown type error should list the known ones: %v", err)
	}
	if _, err := MeansOverhead("sideways", 256); err == nil {
		t.Error("bad key channels accepted")
	}
	if o, _ := MeansOverhead("scale", 64); o.K != 0.5 {
		t.Errorf("scale at 64-token pages: %v bits, want 0.5", o.K)
	}
}

// The types' bits are the tensor traits' and match the script's table.
func TestKindBits(t *testing.T) {
	want := map[string]float64{"cb2": 2.5, "cb3": 3.25, "cb4": 4.25, "q4_0": 4.5, "q5_0": 5.5, "q5_1": 6, "q8_0": 8.5, "f16": 16}
	kinds, err := ParseKinds(strings.Join(KnownTypes(), ","))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range kinds {
		if k.Bits != want[k.Name] {
			t.Errorf("%s: %v bits, want %v", k.Name, k.Bits, want[k.Name])
		}
	}
	// f16 keeps no channel means.
	o := Overhead{K: 0.0625}
	if b := o.Bits("K", kinds[len(kinds)-1]); b != 16 {
		t.Errorf("f16 K: %v bits", b)
	}
}

// Weights make the average bits an average over values: a side with
// twice the values counts twice.
func TestAllocateWeights(t *testing.T) {
	kinds, _ := ParseKinds("cb2,q8_0")
	items := []Item{{Side: "K", Layer: 0, KLD: 1, Weight: 2}, {Side: "V", Layer: 0, KLD: 1e-9, Weight: 1}}
	a, err := Allocate(items, kinds, (2*8.5+2.5)/3, Overhead{})
	if err != nil {
		t.Fatal(err)
	}
	if types(a, "K") != "q8_0" || types(a, "V") != "cb2" || a.Bits != (2*8.5+2.5)/3 || a.BitsK != 8.5 || a.BitsV != 2.5 {
		t.Errorf("%+v", a)
	}
}

// The setting's flags name every layer's chosen type: the most common as
// -ctk/-ctv, the rest as ranges engine.ParseLayerTypes reads back.
func TestSettingFlags(t *testing.T) {
	kinds, _ := ParseKinds(DefaultTypes)
	centred, _ := MeansOverhead("centre", 256)
	a, err := Allocate(screen27m(), kinds, 4.5, centred)
	if err != nil {
		t.Fatal(err)
	}
	s := NewSetting(a, kinds, Base{KeyChannels: "centre", KeyEncode: "query", PageTokens: 256})
	want := "-ctk q5_0 -ctv cb4 --cache-type-k-layers 0:cb2,2:cb4,4:cb4,6:cb4 --cache-type-v-layers 0:cb3,1:q5_0,4:cb3,6:cb3 --cache-key-channels centre --cache-key-encode query"
	if got := strings.Join(s.Args(), " "); got != want {
		t.Errorf("flags\n%s\nwant\n%s", got, want)
	}
	for _, side := range []string{"K", "V"} {
		def, layers := s.TypeK, s.LayersK
		if side == "V" {
			def, layers = s.TypeV, s.LayersV
		}
		spec, err := engine.ParseLayerTypes(layers, 8)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range a.Choices {
			if c.Side != side {
				continue
			}
			got := def
			if t, ok := spec[c.Layer]; ok {
				got = t.String()
			}
			if got != c.Type {
				t.Errorf("%s layer %d: flags give %s, chosen %s", side, c.Layer, got, c.Type)
			}
		}
	}
	// Consecutive layers of one type merge into a range; a side of one
	// type everywhere needs no layer flag; other page sizes are passed on.
	b := &Allocation{Choices: []Choice{
		{Item: Item{Side: "K", Layer: 0}, Type: "cb4"}, {Item: Item{Side: "K", Layer: 1}, Type: "q8_0"},
		{Item: Item{Side: "K", Layer: 2}, Type: "q8_0"}, {Item: Item{Side: "K", Layer: 3}, Type: "cb4"},
		{Item: Item{Side: "K", Layer: 4}, Type: "cb4"}, {Item: Item{Side: "V", Layer: 0}, Type: "cb3"},
	}}
	s = NewSetting(b, kinds, Base{KeyEncode: "mse", PageTokens: 64})
	if got := strings.Join(s.Args(), " "); got != "-ctk cb4 -ctv cb3 --cache-type-k-layers 1-2:q8_0 --cache-page-tokens 64" {
		t.Errorf("flags %q", got)
	}
	// A tie goes to the type listed first.
	b.Choices = b.Choices[:2]
	if s = NewSetting(b, kinds, Base{}); s.TypeK != "cb4" || s.LayersK != "1:q8_0" || s.TypeV != "f16" {
		t.Errorf("tie: %+v", s)
	}
}

// Fill spends what the sweep left: on the kvtest-27m screen at 4.5 bits
// the sweep stops at 4.375; the fill spends the 2 bits left (per layer
// side) on V layers 4 and 6, cb3 → cb4 (the most KLD saved per bit),
// reaching 4.5 and a predicted KLD 15% lower.
func TestFill(t *testing.T) {
	kinds, _ := ParseKinds(DefaultTypes)
	centred, _ := MeansOverhead("centre", 256)
	a, err := Allocate(screen27m(), kinds, 4.5, centred)
	if err != nil {
		t.Fatal(err)
	}
	f := Fill(a, kinds, 4.5, centred)
	if types(f, "K") != types(a, "K") || types(f, "V") != "cb3,q5_0,cb4,cb4,cb4,cb4,cb4,cb4" {
		t.Errorf("fill:\nK %s\nV %s", types(f, "K"), types(f, "V"))
	}
	if f.Bits != 4.5 || f.BitsK != a.BitsK || f.BitsV != 4.28125 || math.Abs(f.Predicted-(a.Predicted-(1.4e-3+1.6e-3)*(0.28-0.067))) > 1e-15 {
		t.Errorf("fill: %v bits, predicted %v", f.Bits, f.Predicted)
	}
	// Nothing to spend: the allocation comes back as it was.
	if g := Fill(f, kinds, 4.5, centred); types(g, "K") != types(f, "K") || types(g, "V") != types(f, "V") || g.Bits != f.Bits {
		t.Errorf("a full allocation changed: %+v", g)
	}
}
