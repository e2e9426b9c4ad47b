package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/kvserve/kvserve/internal/kvcache"
)

// RequantizeReport is what a requantization did (or, for a dry run, would
// do).
type RequantizeReport struct {
	DryRun          bool
	Layers          []kvcache.LayerChange
	BytesBefore     int64 // whole cache
	BytesAfter      int64
	BytesFreed      int64 // BytesBefore - BytesAfter (negative when growing)
	TokensConverted int   // positions whose pages were converted (per slot and layer side, counted once per page)
	PagesConverted  int
	Elapsed         time.Duration

	// The draft model's cache (speculative decoding), converted too when
	// the target names no layers (layer numbers are the target's): its
	// bytes before and after, and pages converted.
	Draft                                bool
	DraftBytesBefore, DraftBytesAfter    int64
	DraftPagesConverted, DraftTokensConv int

	// StateBytes is a hybrid model's recurrent state, which stays f32
	// (not in BytesBefore/After, which count KV pages).
	StateBytes int64
}

// ErrRequantizeBusy is returned when a requantization is already running.
var ErrRequantizeBusy = errors.New("a cache requantization is already in progress")

// requantJob is a conversion being carried out between decode steps.
type requantJob struct {
	steps  []kvcache.Step
	next   int
	report *RequantizeReport
	start  time.Time
	done   chan error
}

// requantSlice is how long the loop converts pages before it lets the
// next decode step run, so streams keep flowing during a conversion.
const requantSlice = 4 * time.Millisecond

// Requantize converts the pages in the target's scope to its types without
// re-evaluating any token. New tokens are written in the new types from
// the moment it starts; existing pages convert one at a time between
// decode steps, each old page freed as soon as its replacement exists. A
// dry run only reports. Only one requantization runs at a time: a second
// call while one runs gets ErrRequantizeBusy.
func (s *Scheduler) Requantize(t kvcache.Target, dryRun bool) (*RequantizeReport, error) {
	var job *requantJob
	var rep *RequantizeReport
	err := s.Do(func(c *kvcache.Cache) error {
		if s.requant != nil {
			return ErrRequantizeBusy
		}
		steps, layers, err := c.Plan(t)
		if err != nil {
			return err
		}
		rep = &RequantizeReport{DryRun: dryRun, Layers: layers, BytesBefore: c.Bytes(), StateBytes: c.StateBytes()}
		var dsteps []kvcache.Step
		dc := s.DraftCache()
		if dc != nil && t.Layers == nil {
			var err error
			if dsteps, _, err = dc.Plan(t); err != nil {
				return fmt.Errorf("draft model's cache: %w", err)
			}
			rep.Draft, rep.DraftBytesBefore = true, dc.Bytes()
			rep.DraftBytesAfter = rep.DraftBytesBefore
			for _, st := range dsteps {
				rep.DraftBytesAfter += int64(st.BytesAfter - st.BytesBefore)
				if dryRun {
					rep.DraftPagesConverted++
					rep.DraftTokensConv += st.Tokens
				}
			}
		}
		var delta int64
		for _, st := range steps {
			delta += int64(st.BytesAfter - st.BytesBefore)
		}
		rep.BytesAfter = rep.BytesBefore + delta
		rep.BytesFreed = -delta
		if dryRun {
			for _, st := range steps {
				rep.PagesConverted++
				rep.TokensConverted += st.Tokens
			}
			return nil
		}
		for i := range steps {
			steps[i].Reason = reasonRequantize
		}
		if err := c.SetWriteTypes(t); err != nil {
			return err
		}
		if rep.Draft {
			// The draft's cache is small: it converts at once.
			if err := dc.SetWriteTypes(t); err != nil {
				return fmt.Errorf("draft model's cache: %w", err)
			}
			for i := range dsteps {
				dsteps[i].Reason = reasonRequantize
			}
			rep.DraftPagesConverted, rep.DraftTokensConv = s.spec.conv.run(dsteps, nil)
			rep.DraftBytesAfter = dc.Bytes()
		}
		job = &requantJob{steps: steps, report: rep, start: time.Now(), done: make(chan error, 1)}
		s.requant = job
		return nil
	})
	if err != nil || dryRun {
		return rep, err
	}
	if err := <-job.done; err != nil {
		return nil, err
	}
	return job.report, nil
}

// stepRequant converts pages of the running job for up to requantSlice.
// Called by the loop between decode steps.
func (s *Scheduler) stepRequant() {
	j := s.requant
	if j == nil {
		return
	}
	deadline := time.Now().Add(requantSlice)
	chunk := 4 * s.e.Pool.Threads()
	for j.next < len(j.steps) {
		steps := j.steps[j.next:min(j.next+chunk, len(j.steps))]
		j.next += len(steps)
		pages, tokens := s.conv.run(steps, nil)
		j.report.PagesConverted += pages
		j.report.TokensConverted += tokens
		if time.Now().After(deadline) && s.anyActive() {
			return
		}
	}
	j.report.BytesAfter = s.cache.Bytes()
	j.report.BytesFreed = j.report.BytesBefore - j.report.BytesAfter
	j.report.Elapsed = time.Since(j.start)
	s.requant = nil
	s.mu.Lock()
	s.stats.Requantizations++
	s.stats.RequantizeSeconds += j.report.Elapsed.Seconds()
	s.mu.Unlock()
	j.done <- nil
}
