// Package perplexity owns kvserve's fidelity harness: perplexity over
// chunks of a text as llama.cpp's llama-perplexity computes it, and the
// KL-divergence comparison of a run (e.g. with a quantized KV cache)
// against saved log-probabilities of a base run (the f16 cache).
package perplexity

import (
	"fmt"
	"io"
	"math"
	"time"
)

// ChunkEvaluator evaluates one chunk of tokens from an empty cache and
// calls fn with the logits of every position from `from` to len(tokens)-2
// (the positions whose next token is scored), in order.
type ChunkEvaluator func(tokens []int, from int, fn func(pos int, logits []float32)) error

// Options configures a run.
type Options struct {
	Ctx    int // tokens per chunk
	Chunks int // maximum chunks (0: all)
	// BOS, when >= 0, replaces the first token of every chunk (models that
	// add a BOS token), as llama-perplexity does.
	BOS int

	// KLBaseOut, when set, receives the base log-probabilities of this run.
	KLBaseOut io.Writer
	// KLBase, when set, is a base written earlier: the run is compared to it.
	KLBase io.Reader
	// TopK is the number of log-probabilities kept per position in a base
	// file (0: the whole distribution, the default and exact).
	TopK int
	// ScoreAll scores every position of a chunk (for one growing
	// context) instead of its second half as llama-perplexity does.
	ScoreAll bool
	// Segment, when > 0, also reports the KL divergence per segment of
	// that many positions.
	Segment int

	Progress io.Writer // progress bar / per-chunk figures (stderr)
	Vocab    int       // vocabulary size (for base files of whole distributions)
}

// Result is what a run measured.
type Result struct {
	Chunks   int
	Tokens   int     // scored tokens
	PPL      float64 // exp(mean NLL)
	PPLErr   float64 // standard error of PPL
	Elapsed  time.Duration
	KL       *KLStats // when compared to a base
	ChunkPPL []float64
}

// Run computes perplexity over the first Chunks chunks of Ctx tokens: each
// chunk is evaluated from an empty cache and scored on its second half, as
// llama-perplexity does. With KLBase it also compares every scored
// position's distribution with the base run's.
func Run(tokens []int, eval ChunkEvaluator, o Options) (*Result, error) {
	if o.Ctx < 2 {
		return nil, fmt.Errorf("context of %d tokens is too small", o.Ctx)
	}
	nChunks := len(tokens) / o.Ctx
	if o.Chunks > 0 {
		nChunks = min(nChunks, o.Chunks)
	}
	if nChunks == 0 {
		return nil, fmt.Errorf("text has %d tokens: need at least %d for one chunk of -c %d", len(tokens), o.Ctx, o.Ctx)
	}
	from := o.Ctx / 2
	if o.ScoreAll {
		from = 0
	}
	var base *klReader
	var baseOut *klWriter
	var kl *klAccum
	if o.KLBase != nil {
		var err error
		if base, err = newKLReader(o.KLBase); err != nil {
			return nil, err
		}
		if base.ctx != o.Ctx || base.chunks < nChunks || base.from != from {
			return nil, fmt.Errorf("KL base was made with -c %d, %d chunks, scoring from %d; this run uses -c %d, %d chunks, from %d", base.ctx, base.chunks, base.from, o.Ctx, nChunks, from)
		}
		kl = &klAccum{}
	}
	if o.KLBaseOut != nil {
		var err error
		if baseOut, err = newKLWriter(o.KLBaseOut, o.Ctx, nChunks, max(o.TopK, 0), from, o.Vocab); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	res := &Result{Chunks: nChunks}
	var nll, nll2 float64
	count := 0
	chunk := make([]int, o.Ctx)
	var evalErr error
	for c := 0; c < nChunks; c++ {
		copy(chunk, tokens[c*o.Ctx:(c+1)*o.Ctx])
		if o.BOS >= 0 {
			chunk[0] = o.BOS
		}
		if base != nil {
			if err := base.checkTokens(c, chunk); err != nil {
				return nil, err
			}
		}
		if baseOut != nil {
			if err := baseOut.writeTokens(chunk); err != nil {
				return nil, err
			}
		}
		var cnll float64
		cn := 0
		err := eval(chunk, from, func(pos int, logits []float32) {
			if evalErr != nil {
				return
			}
			next := chunk[pos+1]
			lp := logSoftmaxAt(logits, next)
			nll -= lp
			nll2 += lp * lp
			cnll -= lp
			cn++
			count++
			if baseOut != nil {
				evalErr = baseOut.writePos(logits, next)
			}
			if base != nil {
				rec, err := base.next()
				if err != nil {
					evalErr = err
					return
				}
				kl.add(rec, logits, next, pos)
				evalErr = kl.err
			}
		})
		if err == nil {
			err = evalErr
		}
		if err != nil {
			return nil, err
		}
		res.ChunkPPL = append(res.ChunkPPL, math.Exp(cnll/float64(cn)))
		if o.Progress != nil {
			el := time.Since(start)
			eta := time.Duration(float64(el) / float64(c+1) * float64(nChunks-c-1))
			fmt.Fprintf(o.Progress, "\r%s [%d/%d] PPL %.4f  %.0f tok/s  ETA %s   ",
				bar(c+1, nChunks, 24), c+1, nChunks, math.Exp(nll/float64(count)),
				float64((c+1)*o.Ctx)/el.Seconds(), eta.Round(time.Second))
		}
	}
	if o.Progress != nil {
		fmt.Fprintln(o.Progress)
	}
	if baseOut != nil {
		if err := baseOut.flush(); err != nil {
			return nil, err
		}
	}
	res.Tokens = count
	res.Elapsed = time.Since(start)
	mean := nll / float64(count)
	res.PPL = math.Exp(mean)
	v := nll2/float64(count) - mean*mean
	if v > 0 && count > 1 {
		res.PPLErr = math.Sqrt(v/float64(count-1)) * res.PPL
	}
	if kl != nil {
		res.KL = kl.stats()
		if o.Segment > 0 {
			res.KL.Segments = kl.segments(o.Segment)
		}
	}
	return res, nil
}

func bar(done, total, width int) string {
	n := done * width / total
	b := make([]byte, width+2)
	b[0], b[width+1] = '[', ']'
	for i := 0; i < width; i++ {
		if i < n {
			b[i+1] = '='
		} else {
			b[i+1] = ' '
		}
	}
	return string(b)
}

// logSoftmaxAt returns log softmax(logits)[i], computed in float64.
func logSoftmaxAt(logits []float32, i int) float64 {
	mx := float64(logits[0])
	for _, v := range logits {
		mx = math.Max(mx, float64(v))
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - mx)
	}
	return float64(logits[i]) - mx - math.Log(sum)
}

// Report writes the result as llama-perplexity prints it.
func (r *Result) Report(w io.Writer) {
	if r.KL != nil {
		r.KL.report(w, r)
	}
	fmt.Fprintf(w, "Final estimate: PPL = %.4f +/- %.5f\n", r.PPL, r.PPLErr)
}
