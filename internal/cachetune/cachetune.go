// Package cachetune chooses a model's per-layer K and V cache types under a
// bits budget (issue 18; `kvserve tune-cache`). It owns the two steps that
// scripts/layer_kld.sh and scripts/layer_alloc.py did from the shell:
//
//   - the screen (screen.go): the f16 cache's log-probabilities are saved
//     once, then cb2 is put on ONE layer's K (then V) cache at a time, the
//     rest f16, and each run's mean KL divergence against the f16 cache is
//     that layer's and side's damage. Single-layer damages add up well
//     (kvtest-27m: the 16 figures sum to 0.105 at 3 chunks; cb2/cb2
//     measures 0.108 at 10; BENCHMARKS.md, "Per-layer sensitivity");
//   - the allocation (alloc.go): a type's damage on a layer is predicted
//     as the layer's cb2 damage times the type's ratio (Kinds), damages are
//     summed over layers and sides, and a Lagrangian sweep keeps the lowest
//     predicted total whose average bits per cached value fit the budget.
//
// The result is a Setting (setting.go): the per-layer types written as the
// cache flags kvserve serve takes (-ctk/-ctv for the most common type,
// --cache-type-k-layers/--cache-type-v-layers for the rest, in the syntax
// of engine.ParseLayerTypes), which a verification run can measure.
package cachetune

import (
	"fmt"
	"strings"

	"github.com/kvserve/kvserve/internal/tensor"
)

// ScreenType is the type the screen puts on one layer at a time; every
// ratio is relative to its damage.
const ScreenType = "cb2"

// Kind is a cache type the allocator may choose.
type Kind struct {
	Name  string
	Type  tensor.Type
	Bits  float64 // bits per value, block scales included (tensor's traits)
	Ratio float64 // predicted damage relative to cb2's on the same layer and side
}

// Quantized reports whether pages of the kind are block-quantized (and so
// carry the per-page channel statistics when key or value channels are on).
func (k Kind) Quantized() bool { return k.Type.BlockSize() > 1 }

// ratios are the types' relative squared errors on rotated normal blocks
// over cb2's, as scripts/layer_alloc.py has them: cb4 0.0070, cb3 0.029,
// cb2 0.105 and q4_0 0.0071 are measured (docs/cache.md, "Codebook types";
// TestCodebookScaleModes), q5_0 (~0.0018), q5_1 (~0.0015) and q8_0
// (~0.00004) follow from their step sizes; f16 is taken as exact. The
// order is the order of the table (and of DefaultTypes).
var ratios = []struct {
	name  string
	ratio float64
}{
	{"cb2", 1}, {"cb3", 0.28}, {"cb4", 0.067}, {"q4_0", 0.068}, {"q5_0", 0.017}, {"q5_1", 0.014}, {"q8_0", 0.0004}, {"f16", 0},
}

// DefaultTypes are the types the allocator chooses among by default (the
// measured ≤ 4.5-bit settings of docs/cache.md use them).
const DefaultTypes = "cb2,cb3,cb4,q5_0,q8_0"

// KnownTypes lists the types that have a ratio.
func KnownTypes() []string {
	var out []string
	for _, r := range ratios {
		out = append(out, r.name)
	}
	return out
}

// ParseKinds parses a comma-separated type list such as DefaultTypes.
func ParseKinds(s string) ([]Kind, error) {
	var out []Kind
	seen := map[string]bool{}
	for _, name := range strings.Split(s, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		if seen[name] {
			return nil, fmt.Errorf("type %s is listed twice", name)
		}
		seen[name] = true
		k, err := kind(name)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no types given (e.g. %s)", DefaultTypes)
	}
	return out, nil
}

func kind(name string) (Kind, error) {
	for _, r := range ratios {
		if r.name == name {
			t, ok := tensor.ParseType(name)
			if !ok {
				return Kind{}, fmt.Errorf("type %s is not a tensor type", name)
			}
			return Kind{Name: name, Type: t, Bits: t.BitsPerValue(), Ratio: r.ratio}, nil
		}
	}
	return Kind{}, fmt.Errorf("unknown type %q: the allocator knows %s (each type's damage is predicted from cb2's by a measured ratio)",
		name, strings.Join(KnownTypes(), ", "))
}
