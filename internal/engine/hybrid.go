package engine

import (
	"fmt"

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
