package engine

import (
	"context"
	"log/slog"

	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/parallel"
)

// reasonRequantize names the steps of POST /cache/requantize.
const reasonRequantize = "requantize"

// converter carries out planned page conversions — a policy's plan or a
// requantization's — on the worker pool, the pages of a batch in
// parallel. It is the one place that converts pages for the engine, and
// the one that accounts and logs what a policy converted.
type converter struct {
	cache *kvcache.Cache
	pool  *parallel.Pool
	log   *slog.Logger // nil: no logs
	done  []bool
}

// run converts steps (distinct pages, as a plan lists them) in parallel;
// a page that changed since it was planned is skipped. Conversions a
// policy decided are counted in st by reason and logged; run returns the
// pages and tokens converted.
func (x *converter) run(steps []kvcache.Step, st *cachepolicy.Stats) (pages, tokens int) {
	if len(steps) == 0 {
		return 0, 0
	}
	if cap(x.done) < len(steps) {
		x.done = make([]bool, len(steps))
	}
	done := x.done[:len(steps)]
	x.cache.ConvertPages(steps, x.pool, done)
	debug := x.log != nil && x.log.Enabled(context.Background(), slog.LevelDebug)
	for i, ok := range done {
		if !ok {
			continue
		}
		s := &steps[i]
		pages++
		tokens += s.Tokens
		if s.Reason == reasonRequantize {
			continue
		}
		if st != nil {
			st.Record(*s)
		}
		if debug {
			x.log.Debug("cache page demoted", "slot", s.Seq, "layer", s.Layer, "v", s.V, "page", s.Index,
				"from", s.From.String(), "to", s.To.String(), "reason", s.Reason, "freed", s.BytesBefore-s.BytesAfter)
		}
	}
	return pages, tokens
}

// apply carries out a policy's plan: the write types, then every
// conversion at once, in parallel.
func (x *converter) apply(pl *cachepolicy.Plan, st *cachepolicy.Stats) {
	for _, w := range pl.Writes {
		x.cache.SetSeqWriteTypes(w.Seq, w.K, w.V)
		x.cache.SetPageWriteTypes(w.Seq, w.Page, w.PageK, w.PageV)
	}
	x.run(pl.Steps, st)
}
