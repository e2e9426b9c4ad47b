package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kvserve/kvserve/internal/grammar"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/sample"
	"github.com/kvserve/kvserve/internal/tokenizer"
)

// Slots: the state of each parallel sequence and what the server may
// read or set of it.

type slotState int

const (
	slotIdle slotState = iota
	slotPrefill
	slotDecode
)

type slot struct {
	id     int
	tokens []int     // tokens whose K/V are in the cache, positions 0..len-1
	lora   []float32 // its request's own LoRA scales (nil: the adapters'; model.Batch.Lora)
	state  slotState
	used   uint64 // step of last use, for least-recently-used choice
	// adapters is the set the cached tokens were computed under
	// (mixedAdapters: some under one, some under another).
	adapters AdapterSet

	req    *Request
	ctx    context.Context
	out    chan Event
	prompt []int
	next   int // index of the next prompt token to evaluate
	smp    *sample.Sampler
	dec    *tokenizer.Decoder
	gm     *grammar.Matcher // the request's grammar state (nil: none)
	text   strings.Builder
	sent   int // bytes of text already emitted
	// Request.NIndent and MaxPredictTime: a newline was generated; the
	// start of the line being judged (-1: none) and where to look for the
	// next newline; the text was cut (no decoder flush at the end).
	newLine          bool
	lineAt, lineNext int
	cut              bool
	cost             int64 // Request.OutputCost of the tokens emitted
	res              *Result
	last             int // last sampled token, fed in the next step
	tStart           time.Time
	tGen             time.Time
	outRow           int    // row of this slot's logits in the current step (-1: none)
	adding           int    // tokens this slot adds in the current step
	begun            uint64 // step the running request started (for least-recently-used order)

	// Roles of generated tokens (see roles.go).
	track       roleTracker
	role        kvcache.Role // role of last, the token stored next
	reasonStart int          // position of the request's first reasoning token (-1: none yet)

	// Speculative decoding (spec.go).
	draft      []int           // tokens drafted for this step, after last
	dq         []sample.Dist   // the draft model's distribution of each (none: prompt lookup)
	dtokens    []int           // tokens in the draft model's cache
	dsmp       *sample.Sampler // the draft model's sampler for the request
	dmax, dmin int             // this step's draft length bounds
	dnext      int             // the next draft length (prompt lookup, and a draft model with Adapt)
	dpmin      float32
	pd         sample.Dist // the target's distribution (scratch)
	vtoks      []int       // verified tokens (scratch)
}

// SlotInfo describes a slot for /slots.
type SlotInfo struct {
	ID          int
	Processing  bool
	CachedToken int // tokens held in the cache
	Prompt      int // prompt tokens of the running request
	Generated   int
}

// Slots returns the slots' state.
func (s *Scheduler) Slots() []SlotInfo {
	var out []SlotInfo
	s.Do(func(*kvcache.Cache) error {
		for _, sl := range s.slots {
			si := SlotInfo{ID: sl.id, Processing: sl.state != slotIdle, CachedToken: len(sl.tokens)}
			if sl.res != nil {
				si.Prompt = len(sl.prompt)
				si.Generated = len(sl.res.Tokens)
			}
			out = append(out, si)
		}
		return nil
	})
	return out
}

// SlotTokens returns the tokens cached in a slot (for save/restore).
// It must be called from within Do.
func (s *Scheduler) SlotTokens(id int) []int { return s.slots[id].tokens }

// SetSlotTokens records the tokens now cached in an idle slot (after a
// restore). It must be called from within Do.
func (s *Scheduler) SetSlotTokens(id int, toks []int) error {
	sl := s.slots[id]
	if sl.state != slotIdle {
		return fmt.Errorf("slot %d is busy", id)
	}
	sl.tokens = append(sl.tokens[:0], toks...)
	sl.adapters = s.adapters
	sl.lora = nil
	s.clearDraft(sl) // the slot's contents changed from outside: the draft re-syncs
	return nil
}

// SlotBusy reports whether a slot runs a request. Call within Do.
func (s *Scheduler) SlotBusy(id int) bool { return s.slots[id].state != slotIdle }

func (s *Scheduler) anyActive() bool {
	for _, sl := range s.slots {
		if sl.state != slotIdle {
			return true
		}
	}
	return false
}

// reusable reports whether sl's cached tokens were computed under the
// adapter set of a request (requestAdapters).
func (sl *slot) reusable(set AdapterSet) bool { return sl.adapters == set }
