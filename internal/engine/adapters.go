package engine

import (
	"fmt"
	"strings"
)

// AdapterSet is the canonical key of the LoRA adapters a cache's tokens
// are computed under: each adapter applied at a non-zero scale, as its
// identity (a content hash of its file, LoadLora) and its scale, in load
// order; "" is the base model alone. The same adapters at the same scales
// give the same cache contents whether the scales are the adapters' own
// (the server's, set between steps) or a request's (Request.Lora), so a
// request's set is computed once, and a slot's cached tokens are reused
// by the slot, shared with another slot's request, and spilled to and
// loaded from the disk tier (whose entries are named by it) only under the
// set they were computed under.
type AdapterSet string

// mixedAdapters is the set of a slot whose cache was computed partly under
// one set and partly under another (the adapters' own scales changed while
// its request, running at them, was busy): it is never reused, shared or
// spilled.
const mixedAdapters AdapterSet = "\x00mixed"

// adapterSet returns the set of the engine's adapters at scales, by
// adapter in load order (a missing one: off), or at the adapters' own
// scales now when scales is nil.
func (e *Engine) adapterSet(scales []float32) AdapterSet {
	var b strings.Builder
	for i, a := range e.loras {
		sc := a.Scale()
		if scales != nil {
			sc = 0
			if i < len(scales) {
				sc = scales[i]
			}
		}
		if sc != 0 {
			fmt.Fprintf(&b, "%s@%g;", e.loraIDs[i], sc)
		}
	}
	return AdapterSet(b.String())
}

// requestAdapters is the set a queued request's tokens are computed
// under: its own scales' (computed at Submit) or the adapters' own now.
func (s *Scheduler) requestAdapters(p *pending) AdapterSet {
	if p.req.Lora != nil {
		return p.adapters
	}
	return s.adapters
}

// AdaptersChanged is called, within Do, after the adapters' own scales
// changed (model.Lora.SetScale): requests without scales of their own
// compute their tokens under the new set from the next step; a busy slot
// running one holds tokens of two sets from then on (never reused, shared
// or spilled). Idle slots keep their set: their tokens are reused under it
// again (after a change back).
func (s *Scheduler) AdaptersChanged() {
	set := s.e.adapterSet(nil)
	if set == s.adapters {
		return
	}
	s.adapters = set
	for _, sl := range s.slots {
		if sl.state != slotIdle && sl.lora == nil {
			sl.adapters = mixedAdapters
		}
	}
}
