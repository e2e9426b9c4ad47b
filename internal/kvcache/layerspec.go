package kvcache

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kvserve/kvserve/internal/tensor"
)

// Per-layer type lists, "0-1:f16,7:q8_0": the syntax of
// --cache-type-k-layers / --cache-type-v-layers (engine.ParseLayerTypes)
// and of the cold tiers, --cache-cold-k-layers / --cache-cold-v-layers
// (cachepolicy.ParseColdLayers). This is the one parser of the syntax;
// what a list means — which layers exist, whether items may overlap — is
// each caller's.

// LayerTypeRange is one item of a per-layer type list: layers From to To
// (inclusive) at Type.
type LayerTypeRange struct {
	Item     string // the item as written, trimmed (for errors)
	Layers   string // its layer part, trimmed
	From, To int
	Type     tensor.Type
}

// ParseLayerTypeRanges parses a per-layer type list: items LAYERS:TYPE
// separated by commas, LAYERS one layer or an inclusive range A-B with
// 0 <= A <= B, returned in the order written (empty items are skipped).
// A missing ':', an unknown type, a layer that is not a non-negative
// number and a backward range are errors naming the item.
func ParseLayerTypeRanges(s string) ([]LayerTypeRange, error) {
	var out []LayerTypeRange
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		rng, typ, ok := strings.Cut(item, ":")
		if !ok {
			return nil, fmt.Errorf("%q: want LAYERS:TYPE, e.g. 0-3:q8_0", item)
		}
		t, err := ParseType(strings.TrimSpace(typ))
		if err != nil {
			return nil, fmt.Errorf("%q: %w", item, err)
		}
		r := LayerTypeRange{Item: item, Layers: strings.TrimSpace(rng), Type: t}
		lo, hi, isRange := strings.Cut(rng, "-")
		if r.From, err = strconv.Atoi(strings.TrimSpace(lo)); err != nil {
			return nil, fmt.Errorf("%q: layer %q is not a non-negative number", item, strings.TrimSpace(lo))
		}
		r.To = r.From
		if isRange {
			if r.To, err = strconv.Atoi(strings.TrimSpace(hi)); err != nil {
				return nil, fmt.Errorf("%q: layer %q is not a non-negative number", item, strings.TrimSpace(hi))
			}
		}
		if r.From < 0 || r.To < r.From {
			return nil, fmt.Errorf("%q: bad layer range %q (want L or A-B with 0 <= A <= B)", item, r.Layers)
		}
		out = append(out, r)
	}
	return out, nil
}
