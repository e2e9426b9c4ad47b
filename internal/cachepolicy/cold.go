package cachepolicy

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/tensor"
)

// Per-layer cold tiers: a layer's coldest type replaces the bottom of the
// ladder for that layer (ColdK, ColdV in Policy). The ladder a layer
// steps down is then the shared ladder's upper types above its cold type,
// then the cold type: with ladder f16,q8_0,cb4, cold cb3 gives
// f16,q8_0,cb3 and cold q8_0 gives f16,q8_0. Every rule that walks a
// ladder (age, budget), admission, disk-tier loads and the usage and
// metrics reports read a layer's ladder through Policy.Ladder.

// maxColdLayer bounds the layer numbers a spec may name before the model
// is known (Validate checks them against it), so a spec cannot build a
// huge map.
const maxColdLayer = 4096

// ColdLayers maps a layer to its coldest type (layers not named keep the
// ladder's bottom).
type ColdLayers map[int]tensor.Type

// ParseColdLayers parses "0-4:cb3,5:q5_0,6:cb3,7:cb4" (the syntax of
// --cache-type-k-layers, parsed by kvcache.ParseLayerTypeRanges): layers
// or inclusive ranges, each with a type. Unknown types, bad layer numbers
// and layers named twice (ranges overlap) are errors; whether the layers
// exist is checked by Policy.Validate, which knows the model. "" is no
// per-layer cold tier.
func ParseColdLayers(s string) (ColdLayers, error) {
	items, err := kvcache.ParseLayerTypeRanges(s)
	if err != nil {
		return nil, err
	}
	out := ColdLayers{}
	for _, it := range items {
		if it.To >= maxColdLayer {
			return nil, fmt.Errorf("%q: layer %d is beyond any model (at most %d layers)", it.Item, it.To, maxColdLayer)
		}
		for l := it.From; l <= it.To; l++ {
			if _, dup := out[l]; dup {
				return nil, fmt.Errorf("%q: layer %d is named twice (ranges overlap)", it.Item, l)
			}
			out[l] = it.Type
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// String writes the layers back in the flag syntax, consecutive layers of
// one type as a range.
func (c ColdLayers) String() string {
	ls := make([]int, 0, len(c))
	for l := range c {
		ls = append(ls, l)
	}
	sort.Ints(ls)
	var parts []string
	for i := 0; i < len(ls); {
		j := i
		for j+1 < len(ls) && ls[j+1] == ls[j]+1 && c[ls[j+1]] == c[ls[i]] {
			j++
		}
		r := strconv.Itoa(ls[i])
		if j > i {
			r += "-" + strconv.Itoa(ls[j])
		}
		parts = append(parts, r+":"+c[ls[i]].String())
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// cold returns the per-layer cold tiers of a side.
func (p *Policy) cold(v bool) ColdLayers {
	if v {
		return p.ColdV
	}
	return p.ColdK
}

// Ladder returns the ladder layer l steps down on side v (V when true):
// the policy's ladder, with its bottom replaced by the layer's cold type
// when it has one (the ladder's types with more bits than the cold type,
// then the cold type). The result must not be modified.
func (p *Policy) Ladder(l int, v bool) []tensor.Type {
	ladder := p.ladder(v)
	t, ok := p.cold(v)[l]
	if !ok || len(ladder) == 0 {
		return ladder
	}
	out := make([]tensor.Type, 0, len(ladder))
	for _, x := range ladder[:len(ladder)-1] {
		if x.BitsPerValue() > t.BitsPerValue() {
			out = append(out, x)
		}
	}
	return append(out, t)
}

// Bottom is the coldest type of layer l on side v: its cold type, else the
// ladder's last (ok false without a ladder).
func (p *Policy) Bottom(l int, v bool) (tensor.Type, bool) {
	ladder := p.Ladder(l, v)
	if len(ladder) == 0 {
		return 0, false
	}
	return ladder[len(ladder)-1], true
}

// BottomTypes are the per-layer coldest types of a cache of the given
// layers (nil for a side without a ladder).
func (p *Policy) BottomTypes(layers int) (k, v []tensor.Type) {
	for _, side := range []bool{false, true} {
		if len(p.ladder(side)) == 0 {
			continue
		}
		ts := make([]tensor.Type, layers)
		for l := range ts {
			ts[l], _ = p.Bottom(l, side)
		}
		if side {
			v = ts
		} else {
			k = ts
		}
	}
	return k, v
}

// validateCold checks the per-layer cold tiers against the model: the
// layers exist, the types fit the head dimension, and each is at or below
// the ladder's top (a cold tier only ends a ladder, it never raises one).
func (p *Policy) validateCold(layers, headDimK, headDimV int) error {
	for _, side := range []struct {
		name  string
		cold  ColdLayers
		lad   []tensor.Type
		dim   int
		field string
	}{{"K", p.ColdK, p.LadderK, headDimK, "cold_k_layers"}, {"V", p.ColdV, p.LadderV, headDimV, "cold_v_layers"}} {
		if len(side.cold) == 0 {
			continue
		}
		if len(side.lad) < 2 {
			return &FieldError{Field: side.field, Err: fmt.Errorf("per-layer cold types need a %s ladder of at least two types", side.name)}
		}
		ls := make([]int, 0, len(side.cold))
		for l := range side.cold {
			ls = append(ls, l)
		}
		sort.Ints(ls)
		for _, l := range ls {
			t := side.cold[l]
			if l >= layers {
				return &FieldError{Field: side.field, Err: fmt.Errorf("layer %d does not exist: the model has layers 0-%d", l, layers-1)}
			}
			if err := kvcache.CheckType(t, side.dim); err != nil {
				return &FieldError{Field: side.field, Err: fmt.Errorf("layer %d: %w", l, err)}
			}
			if top := side.lad[0]; t.BitsPerValue() > top.BitsPerValue() {
				return &FieldError{Field: side.field, Err: fmt.Errorf("layer %d: cold type %s has more bits than the top of the %s ladder (%s)", l, t, side.name, top)}
			}
		}
	}
	return nil
}
