package engine

import (
	"fmt"

	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/model"
)

// The cache implements the hybrid models' state interface.
var _ model.StateKV = (*kvcache.Cache)(nil)

// checkHybrid refuses the scheduler features a hybrid recurrent model
// cannot have: its recurrent state absorbs every token and cannot be
// rolled back or moved, so speculative decoding (rejected drafts),
// context shift and chunk reuse (positions moved) are errors, said once
// at start.
func (e *Engine) checkHybrid(o SchedulerOptions) error {
	if e.Model.Recurrent == nil {
		return nil
	}
	arch := e.Model.Arch
	switch {
	case o.Spec.Enabled():
		return fmt.Errorf("speculative decoding is not available with %s, a hybrid recurrent model: its recurrent state cannot be rolled back past rejected draft tokens", arch)
	case o.ContextShift:
		return fmt.Errorf("--context-shift is not available with %s, a hybrid recurrent model: its recurrent state cannot drop old tokens", arch)
	case o.Policy != nil && o.Policy.Evict.On():
		return fmt.Errorf("--cache-evict is not available with %s, a hybrid recurrent model: its recurrent state cannot drop middle tokens", arch)
	}
	return nil
}

// checkEvict refuses a policy with eviction (cachepolicy.Evict) on a
// hybrid model up front: dropping middle pages would leave the recurrent
// state, which has seen every token, out of step with the attention
// pages. Used when a policy is set at run time (POST /cache/policy);
// checkHybrid says the same of --cache-evict at start.
func (e *Engine) checkEvict(p *cachepolicy.Policy) error {
	if e.Model.Recurrent == nil || p == nil || !p.Evict.On() {
		return nil
	}
	return fmt.Errorf("evict: eviction needs a cache without recurrent state: model %s is hybrid (its recurrent state cannot drop middle tokens)", e.Model.Arch)
}
