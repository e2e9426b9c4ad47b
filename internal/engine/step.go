package engine

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/model"
	"github.com/kvserve/kvserve/internal/sample"
)

// One scheduler step: the batch of every busy slot's tokens, the forward
// pass, sampling, stop strings and the events sent to each request.

// stepOnce builds one batch from every active slot, runs it, and samples.
func (s *Scheduler) stepOnce() {
	s.step++
	b := &s.batch
	b.Tokens, b.Pos, b.Seq, b.Output = b.Tokens[:0], b.Pos[:0], b.Seq[:0], b.Output[:0]
	// Cancelled requests leave first.
	for _, sl := range s.slots {
		if sl.state != slotIdle && sl.ctx.Err() != nil {
			s.finish(sl, "none", nil)
		}
	}
	// Plan how many tokens each slot adds in this step: one for every
	// generating slot, then prompt chunks within the batch budget.
	decoding := 0
	for _, sl := range s.slots {
		sl.outRow, sl.adding = -1, 0
		if sl.state == slotDecode && cap(sl.out)-len(sl.out) >= 2 { // room for a token and the end
			sl.adding = 1
			decoding++
		}
	}
	if s.spec != nil {
		decoding += s.makeDrafts(s.o.Batch - decoding)
	}
	budget := s.o.Batch - decoding
	if decoding > 0 {
		budget = min(budget, s.o.PrefillChunk)
	}
	for _, sl := range s.slots {
		if sl.state == slotPrefill && budget > 0 {
			sl.adding = min(budget, len(sl.prompt)-sl.next, s.pageStepCap(sl))
			budget -= sl.adding
		}
	}
	s.applyPolicy()
	s.applyDraftPolicy()
	for _, sl := range s.slots {
		if sl.state == slotDecode && sl.adding >= 1 {
			sl.outRow = len(b.Tokens)
			s.cache.SetWriteRole(sl.id, sl.role)
			for i := 0; i < sl.adding; i++ {
				t := sl.last
				if i > 0 {
					t = sl.draft[i-1]
				}
				b.Tokens = append(b.Tokens, t)
				b.Pos = append(b.Pos, len(sl.tokens))
				b.Seq = append(b.Seq, sl.id)
				b.Output = append(b.Output, true)
				sl.tokens = append(sl.tokens, t)
			}
		}
	}
	for _, sl := range s.slots {
		if sl.state != slotPrefill || sl.adding == 0 {
			continue
		}
		s.cache.SetWriteRole(sl.id, kvcache.RolePrompt)
		for i := 0; i < sl.adding; i++ {
			t := sl.prompt[sl.next+i]
			last := sl.next+i == len(sl.prompt)-1
			if last {
				sl.outRow = len(b.Tokens)
			}
			b.Tokens = append(b.Tokens, t)
			b.Pos = append(b.Pos, len(sl.tokens))
			b.Seq = append(b.Seq, sl.id)
			b.Output = append(b.Output, last)
			sl.tokens = append(sl.tokens, t)
		}
		sl.next += sl.adding
	}
	if len(b.Tokens) == 0 {
		// Every busy slot waits for its reader: do not spin.
		time.Sleep(time.Millisecond)
		return
	}
	s.batchLora(b)
	t0 := time.Now()
	logits, err := s.runner.Forward(b, s.cache)
	el := time.Since(t0)
	busy := 0
	for i, q := range b.Seq {
		if i == 0 || q != b.Seq[i-1] {
			busy++ // a slot's tokens are consecutive in the batch
		}
	}
	s.mu.Lock()
	s.stats.DecodeCalls++
	s.stats.BusySlots += int64(busy)
	s.mu.Unlock()
	if err != nil {
		s.log.Error("forward pass failed", "err", err)
		for _, sl := range s.slots {
			if sl.state != slotIdle {
				s.finish(sl, "none", fmt.Errorf("forward pass: %w", err))
			}
		}
		return
	}
	V := s.e.Model.NVocab
	// Output rows are in batch order; map each slot's row to its index
	// among the output rows.
	row := 0
	rowOf := make(map[int]int, len(s.slots))
	for i, o := range b.Output {
		if o {
			rowOf[i] = row
			row++
		}
	}
	for _, sl := range s.slots {
		if sl.state == slotIdle {
			continue
		}
		if sl.state == slotPrefill {
			if sl.outRow < 0 {
				continue // prompt not finished yet
			}
			sl.res.PromptTime = time.Since(sl.tStart)
			sl.state = slotDecode
			sl.tGen = time.Now()
			if sl.req.NPredict == 0 { // only fill the cache with the prompt
				s.finish(sl, "limit", nil)
				continue
			}
		}
		r0 := rowOf[sl.outRow]
		if len(sl.draft) > 0 {
			s.emitSpec(sl, logits, r0)
			continue
		}
		s.emit(sl, logits[r0*V:(r0+1)*V])
	}
	_ = el
}

// emit samples the next token of a decoding slot and sends it.
func (s *Scheduler) emit(sl *slot, logits []float32) {
	var tok int
	if sl.gm == nil {
		tok = sl.smp.Sample(logits)
	} else if tok = s.sampleGrammar(sl, logits); tok < 0 {
		return // finished with an error
	}
	sl.smp.Accept(tok)
	s.emitToken(sl, logits, tok)
}

// emitToken sends tok, the slot's next token (already accepted by its
// sampler), chosen from logits, and ends the request when it should.
func (s *Scheduler) emitToken(sl *slot, logits []float32, tok int) {
	r := sl.req
	ev := Event{SlotID: sl.id}
	post := r.Sample.PostSamplingProbs
	if r.NProbs > 0 && !post {
		ev.Top = sample.TopProbs(logits, r.NProbs)
	}
	ev.Token = tok
	if post {
		// Probabilities after the sampler chain (post_sampling_probs).
		ev.Top = sl.smp.PostProbs(r.NProbs, tok)
		ev.LogProb = sl.smp.PostLogProb(tok)
	} else if r.LogProbs || r.NProbs > 0 {
		// A pass over the vocabulary: ~1 ms per token at 128K tokens,
		// a few per cent of a 1B model's decode step.
		ev.LogProb = sample.LogProb(logits, tok)
	}
	if (!r.IgnoreEOS || sl.gm != nil) && s.e.Tok.IsEOG(tok) {
		s.finish(sl, "eos", nil)
		return
	}
	if r.OutputCost != nil {
		sl.cost += r.OutputCost(tok, ev.Top)
		if sl.cost > r.OutputBudget {
			s.finish(sl, "limit", nil)
			return
		}
	}
	sl.res.Tokens = append(sl.res.Tokens, tok)
	piece := sl.dec.Add(tok)
	s.noteRole(sl, piece)
	sl.text.WriteString(piece)
	stopType, word := "", ""
	full := sl.text.String()
	safe := len(full)
	if len(r.Stop) > 0 {
		if i, w := findStop(full, r.Stop, sl.sent); i >= 0 {
			full = full[:i]
			sl.text.Reset()
			sl.text.WriteString(full)
			safe, stopType, word = i, "word", w
		} else {
			safe = len(full) - partialStop(full, r.Stop)
		}
	}
	if stopType == "" && r.NIndent > 0 {
		if at := sl.underIndented(full, r.NIndent); at >= 0 {
			full = full[:at]
			sl.text.Reset()
			sl.text.WriteString(full)
			safe, stopType, sl.cut = min(safe, at), "limit", true
		}
	}
	if strings.IndexByte(piece, '\n') >= 0 {
		sl.newLine = true
	}
	if safe > sl.sent {
		ev.Text = full[sl.sent:safe]
		sl.sent = safe
	}
	sl.last = tok
	if r.TimingsPerToken {
		t := *sl.res
		t.Tokens, t.Text = nil, ""
		t.PredictedTokens = len(sl.res.Tokens)
		if !sl.tGen.IsZero() {
			t.PredictTime = time.Since(sl.tGen)
		}
		ev.Timings = &t
	}
	sl.out <- ev
	switch {
	case stopType != "":
		sl.res.StoppingWord = word
		s.finish(sl, stopType, nil)
	case sl.gm != nil && sl.gm.Done(): // nothing may follow
		s.finish(sl, "eos", nil)
	case r.NPredict >= 0 && len(sl.res.Tokens) >= r.NPredict:
		s.finish(sl, "limit", nil)
	case r.MaxPredictTime > 0 && sl.newLine && time.Since(sl.tGen) > r.MaxPredictTime:
		s.finish(sl, "limit", nil)
	case len(sl.tokens) >= s.o.SlotCtx && !(s.o.ContextShift && s.shiftContext(sl)):
		sl.res.Truncated = true
		s.finish(sl, "limit", nil)
	}
}

// sampleGrammar samples a token the slot's grammar allows and advances the
// grammar by it. On an error (a grammar limit, or no token of the
// vocabulary can continue) it finishes the request and returns -1.
func (s *Scheduler) sampleGrammar(sl *slot, logits []float32) int {
	mask, err := sl.gm.Mask()
	if err == nil {
		tok := sl.smp.SampleMasked(logits, mask)
		if tok < 0 {
			err = errors.New("no token of the vocabulary can continue the grammar here")
		} else if err = sl.gm.Accept(tok); err == nil {
			return tok
		}
	}
	s.finish(sl, "none", fmt.Errorf("%w: %w", ErrGrammar, err))
	return -1
}

// findStop finds the earliest stop string in text that ends after byte
// `from` (earlier text was already checked).
func findStop(text string, stops []string, from int) (int, string) {
	best, word := -1, ""
	for _, st := range stops {
		if st == "" {
			continue
		}
		start := max(0, from-len(st)+1)
		if i := strings.Index(text[start:], st); i >= 0 && (best < 0 || start+i < best) {
			best, word = start+i, st
		}
	}
	return best, word
}

// partialStop returns the length of the longest suffix of text that is a
// proper prefix of a stop string (text to hold back while streaming).
func partialStop(text string, stops []string) int {
	n := 0
	for _, st := range stops {
		for k := min(len(st)-1, len(text)); k > n; k-- {
			if strings.HasSuffix(text, st[:k]) {
				n = k
				break
			}
		}
	}
	return n
}

// finish ends a slot's request and frees the slot (its cache stays, for
// prompt reuse).
func (s *Scheduler) finish(sl *slot, stopType string, err error) {
	res := sl.res
	if stopType != "word" && !sl.cut {
		// Flush text held back for a partial stop string, and any
		// incomplete UTF-8 the decoder held.
		sl.text.WriteString(sl.dec.Flush())
	}
	full := sl.text.String()
	res.Text = full
	res.StopType = stopType
	res.PredictedTokens = len(res.Tokens)
	res.SlotTokens = len(sl.tokens)
	if !sl.tGen.IsZero() {
		res.PredictTime = time.Since(sl.tGen)
	}
	ev := Event{Done: res, Err: err}
	if len(full) > sl.sent && err == nil {
		ev.Text = full[sl.sent:]
	}
	ev.Token = -1
	sl.out <- ev
	close(sl.out)
	s.mu.Lock()
	s.stats.PromptTokens += int64(res.EvaluatedTokens)
	s.stats.PromptSeconds += res.PromptTime.Seconds()
	s.stats.PredictedTokens += int64(res.PredictedTokens)
	s.stats.PredictSeconds += res.PredictTime.Seconds()
	s.stats.Processing--
	s.mu.Unlock()
	if sl.state == slotPrefill {
		// The prompt was cut short: the cache holds only what ran.
		s.cache.Truncate(sl.id, len(sl.tokens))
	}
	s.dropReasoning(sl)
	sl.state = slotIdle
	sl.used = s.step
	sl.req, sl.ctx, sl.out, sl.smp, sl.dec, sl.res, sl.gm = nil, nil, nil, nil, nil, nil, nil
	sl.dsmp, sl.draft, sl.dq, sl.dnext = nil, sl.draft[:0], sl.dq[:0], 0
	sl.tGen = time.Time{}
}

// batchLora sets the batch's per-token LoRA scales when a slot's request
// has its own (Request.Lora); otherwise the batch has none (the adapters'
// own scales for every token).
func (s *Scheduler) batchLora(b *model.Batch) {
	b.Lora = b.Lora[:0]
	own := false
	for _, sl := range s.slots {
		if sl.state != slotIdle && sl.req != nil && sl.req.Lora != nil {
			own = true
			break
		}
	}
	if !own {
		b.Lora = nil
		return
	}
	for _, q := range b.Seq {
		b.Lora = append(b.Lora, s.slots[q].lora)
	}
}

// underIndented judges the generated lines (after a newline) not yet
// judged in full, the slot's text: it returns where to cut the first line
// indented by fewer than n spaces or tabs (after its indentation), or -1.
// A line is judged once its first other character is there.
func (sl *slot) underIndented(full string, n int) int {
	for {
		if sl.lineAt < 0 {
			i := strings.IndexByte(full[sl.lineNext:], '\n')
			if i < 0 {
				sl.lineNext = len(full)
				return -1
			}
			sl.lineAt = sl.lineNext + i + 1
			sl.lineNext = sl.lineAt
		}
		j := sl.lineAt
		for j < len(full) && (full[j] == ' ' || full[j] == '\t') {
			j++
		}
		if j == len(full) {
			return -1 // only indentation so far
		}
		if j-sl.lineAt < n {
			return j
		}
		sl.lineAt, sl.lineNext = -1, j
	}
}
