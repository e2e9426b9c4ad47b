package cachepolicy

import (
	"errors"
	"fmt"
)

// ErrBudget is returned when even the lowest types cannot fit the budget.
var ErrBudget = errors.New("cache budget exhausted")

// budgetRule makes room under a memory budget for the next step's new
// pages: it demotes pages one ladder step at a time — sequences least
// recently used first, oldest pages first, V before K (keys are more
// sensitive), sink pages last — until the bytes fit, on the cache as the
// page rules' steps leave it. Each layer steps down its own ladder
// (per-layer cold types end it).
type budgetRule struct{ p *Policy }

func (budgetRule) Name() string { return "budget" }

func (r budgetRule) Room(sm *sim, in *Input) error {
	p := r.p
	need := sm.plan.Need
	fits := func() bool { return sm.bytes+need <= p.Budget }
	if fits() {
		return nil
	}
	cfg := sm.cfg
	for pass := 0; pass < 2; pass++ {
		for _, seq := range in.Order {
			np := sm.c.NumPages(seq, 0)
			for i := 0; i < np; i++ {
				if sink := i*cfg.PageTokens < p.Sink; sink != (pass == 1) {
					continue
				}
				for l := 0; l < cfg.Layers; l++ {
					for _, side := range []bool{true, false} {
						ref := pageRef(seq, l, side, i)
						for !fits() {
							cur, ok := sm.typ(ref)
							if !ok {
								break
							}
							next, ok := nextDown(p.Ladder(l, side), cur)
							if !ok {
								break
							}
							sm.set(ref, next, r.Name())
						}
						if fits() {
							return nil
						}
					}
				}
			}
		}
	}
	return fmt.Errorf("%w: %d bytes held + %d needed > budget of %d bytes, and every page is at the lowest type", ErrBudget, sm.bytes, need, p.Budget)
}
