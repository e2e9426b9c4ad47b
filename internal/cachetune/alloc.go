package cachetune

import (
	"fmt"
	"math"
)

// Item is one entry of the screen: the KL divergence against the f16
// cache with cb2 on this layer's K or V cache only.
type Item struct {
	Side  string  `json:"side"` // "K" or "V"
	Layer int     `json:"layer"`
	KLD   float64 `json:"kld"`
	// Weight is the layer side's values per token (KV heads × head
	// dimension): bits are averaged over cached values. 0 counts as 1.
	Weight float64 `json:"weight,omitempty"`
}

func (it Item) weight() float64 {
	if it.Weight > 0 {
		return it.Weight
	}
	return 1
}

// Overhead is the bits per value a quantized page's channel statistics
// add on each side: with centred keys, one f16 mean per channel and page,
// 16/PageTokens bits per K value (0.0625 at 256-token pages).
type Overhead struct{ K, V float64 }

// Bits is the bits per value of kind k on side ("K" or "V").
func (o Overhead) Bits(side string, k Kind) float64 {
	if !k.Quantized() {
		return k.Bits
	}
	if side == "K" {
		return k.Bits + o.K
	}
	return k.Bits + o.V
}

// Choice is the type chosen for one item.
type Choice struct {
	Item
	Type      string  `json:"type"`
	Bits      float64 `json:"bits"`
	Predicted float64 `json:"predicted_kld"` // the item's KLD × the type's ratio
}

// Allocation is the allocator's result.
type Allocation struct {
	Choices   []Choice `json:"choices"`   // in the screen's order
	Bits      float64  `json:"bits"`      // average bits per cached value
	BitsK     float64  `json:"bits_k"`    // average over K values
	BitsV     float64  `json:"bits_v"`    // average over V values
	Predicted float64  `json:"predicted"` // predicted KLD: the sum of the choices'
	Lambda    float64  `json:"lambda"`    // the sweep's multiplier that gave it
}

// Sweep is the Lagrangian sweep of scripts/layer_alloc.py: multipliers
// λ = 10^(-7 + 0.003·i) for i = 0 … 2999 (1e-7 to ~99).
const (
	sweepSteps = 3000
	sweepFrom  = -7
	sweepStep  = 0.003
)

// Allocate chooses, for every item, the kind minimising damage + λ·bits
// (the first of kinds on a tie), for each λ of the sweep, and returns the
// lowest predicted KLD whose average bits fit budget. It reproduces
// scripts/layer_alloc.py exactly when the items' weights are equal.
func Allocate(items []Item, kinds []Kind, budget float64, over Overhead) (*Allocation, error) {
	if len(items) == 0 {
		return nil, fmt.Errorf("empty screen")
	}
	if len(kinds) == 0 {
		return nil, fmt.Errorf("no types to choose from")
	}
	if math.IsNaN(budget) || math.IsInf(budget, 0) || budget <= 0 {
		return nil, fmt.Errorf("bits budget %v is not a positive number", budget)
	}
	for _, it := range items {
		if it.Side != "K" && it.Side != "V" {
			return nil, fmt.Errorf("screen item of layer %d has side %q, want K or V", it.Layer, it.Side)
		}
		if math.IsNaN(it.KLD) || math.IsInf(it.KLD, 0) || it.KLD < 0 {
			return nil, fmt.Errorf("screen item %s %d has KLD %v", it.Side, it.Layer, it.KLD)
		}
	}
	if least, name := cheapest(items, kinds, over); least > budget {
		return nil, fmt.Errorf("a budget of %.4g bits per value is below the cheapest setting, %.4g bits (%s everywhere%s)",
			budget, least, name, meansNote(over))
	}
	choice := make([]int, len(items))
	best := make([]int, len(items))
	var bestPred, bestLam float64
	found := false
	for i := 0; i < sweepSteps; i++ {
		lam := math.Pow(10, sweepFrom+float64(i)*sweepStep)
		for j, it := range items {
			c, cv := 0, math.Inf(1)
			for ki, k := range kinds {
				if v := it.KLD*k.Ratio + lam*over.Bits(it.Side, k); v < cv {
					c, cv = ki, v
				}
			}
			choice[j] = c
		}
		avg, pred := evaluate(items, kinds, choice, over)
		if avg <= budget && (!found || pred < bestPred) {
			copy(best, choice)
			bestPred, bestLam, found = pred, lam, true
		}
	}
	if !found {
		return nil, fmt.Errorf("no allocation of %d layer sides fits %.4g bits per value", len(items), budget)
	}
	return build(items, kinds, best, over, bestLam), nil
}

// build is the allocation of kinds[choice[j]] to items[j].
func build(items []Item, kinds []Kind, choice []int, over Overhead, lambda float64) *Allocation {
	a := &Allocation{Lambda: lambda}
	var wK, wV, bK, bV float64
	for j, it := range items {
		k := kinds[choice[j]]
		b := over.Bits(it.Side, k)
		a.Choices = append(a.Choices, Choice{Item: it, Type: k.Name, Bits: b, Predicted: it.KLD * k.Ratio})
		if it.Side == "K" {
			wK, bK = wK+it.weight(), bK+it.weight()*b
		} else {
			wV, bV = wV+it.weight(), bV+it.weight()*b
		}
	}
	a.Bits, a.Predicted = evaluate(items, kinds, choice, over)
	if wK > 0 {
		a.BitsK = bK / wK
	}
	if wV > 0 {
		a.BitsV = bV / wV
	}
	return a
}

// evaluate returns a choice's average bits per value and predicted KLD,
// summed in the items' order (as the script does).
func evaluate(items []Item, kinds []Kind, choice []int, over Overhead) (avg, pred float64) {
	var bits, w float64
	for j, it := range items {
		k := kinds[choice[j]]
		bits += it.weight() * over.Bits(it.Side, k)
		w += it.weight()
		pred += it.KLD * k.Ratio
	}
	return bits / w, pred
}

// cheapest is the average bits of the cheapest kind everywhere.
func cheapest(items []Item, kinds []Kind, over Overhead) (float64, string) {
	var bits, w float64
	name := ""
	for _, it := range items {
		lo := math.Inf(1)
		for _, k := range kinds {
			if b := over.Bits(it.Side, k); b < lo {
				lo, name = b, k.Name
			}
		}
		bits += it.weight() * lo
		w += it.weight()
	}
	return bits / w, name
}

func meansNote(o Overhead) string {
	if o.K > 0 || o.V > 0 {
		return ", with the channel means"
	}
	return ""
}

// Fill spends what an allocation left of the budget (the sweep only
// reaches settings on the lower convex hull of damage against bits): one
// layer side at a time, it takes the upgrade to a dearer kind with the
// largest predicted KLD saved per added bit that still fits, until none
// does or none saves anything. Ties go to the earlier item, then the
// earlier kind. It returns a new allocation (Lambda kept from a).
func Fill(a *Allocation, kinds []Kind, budget float64, over Overhead) *Allocation {
	items := make([]Item, len(a.Choices))
	choice := make([]int, len(a.Choices))
	for j, c := range a.Choices {
		items[j] = c.Item
		choice[j] = -1
		for ki, k := range kinds {
			if k.Name == c.Type {
				choice[j] = ki
			}
		}
		if choice[j] < 0 {
			return a // a choice outside kinds: leave it alone
		}
	}
	for {
		bj, bk, bestRate := -1, -1, 0.0
		for j, it := range items {
			cur := choice[j]
			for ki, k := range kinds {
				saved := it.KLD * (kinds[cur].Ratio - k.Ratio)
				if saved <= 0 || over.Bits(it.Side, k) <= over.Bits(it.Side, kinds[cur]) {
					continue
				}
				before, _ := evaluate(items, kinds, choice, over)
				choice[j] = ki
				after, _ := evaluate(items, kinds, choice, over)
				choice[j] = cur
				if after > budget {
					continue
				}
				if rate := saved / (after - before); rate > bestRate {
					bj, bk, bestRate = j, ki, rate
				}
			}
		}
		if bj < 0 {
			return build(items, kinds, choice, over, a.Lambda)
		}
		choice[bj] = bk
	}
}
