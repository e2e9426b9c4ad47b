package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/model"
	"github.com/kvserve/kvserve/internal/sample"
)

// DefaultBatch is the prefill micro-batch size (tokens per forward pass).
const DefaultBatch = 512

// GenerateOptions configure a single-sequence generation (the CLI's run).
type GenerateOptions struct {
	Prompt   string
	NPredict int // tokens to generate; < 0: until end of generation or context
	Ctx      int // context size (0: the model's training context)
	Batch    int // prefill micro-batch (0: DefaultBatch)
	Sample   sample.Params
	// IgnoreEOS keeps generating past end-of-generation tokens.
	IgnoreEOS bool
	Cache     CacheOptions
	// Step, if set, is called after every decode step with the cache (for
	// -v usage lines and tests).
	Step func(c *kvcache.Cache, generated int)
}

// GenerateStats report what a generation did.
type GenerateStats struct {
	PromptTokens, GenTokens int
	PromptTime, GenTime     time.Duration
	Stop                    string // "eos", "limit", "context"
	Tokens                  []int  // prompt followed by generated tokens
}

// Generate tokenizes the prompt (special tokens parsed, BOS added as the
// model asks), prefills it in micro-batches, then samples until NPredict
// tokens, an end-of-generation token or the end of the context, calling
// emit with each piece of text as soon as it is complete UTF-8.
func (e *Engine) Generate(ctx context.Context, o GenerateOptions, emit func(string) error) (*GenerateStats, error) {
	m := e.Model
	if o.Ctx <= 0 {
		o.Ctx = m.NCtxTrain
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	prompt := e.Tok.Encode(o.Prompt, true, true)
	if len(prompt) == 0 {
		return nil, fmt.Errorf("empty prompt: the model adds no BOS token, so give at least one token of text")
	}
	if len(prompt) >= o.Ctx {
		return nil, fmt.Errorf("prompt of %d tokens does not fit the context of %d", len(prompt), o.Ctx)
	}
	smp, err := sample.New(o.Sample, m.NVocab)
	if err != nil {
		return nil, err
	}
	cache, err := e.NewCache(o.Cache, 1, o.Ctx)
	if err != nil {
		return nil, err
	}
	defer cache.Close()
	r := model.NewRunner(m, e.Pool, min(o.Batch, o.Ctx))
	r.SetContext(o.Ctx)
	st := &GenerateStats{PromptTokens: len(prompt), Tokens: append([]int(nil), prompt...)}

	t0 := time.Now()
	var logits []float32
	for i := 0; i < len(prompt); i += o.Batch {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		j := min(i+o.Batch, len(prompt))
		b := &model.Batch{Tokens: prompt[i:j], Pos: seq(i, j)}
		if logits, err = r.Forward(b, cache); err != nil {
			return st, err
		}
	}
	for _, t := range prompt {
		smp.Accept(t)
	}
	st.PromptTime = time.Since(t0)

	dec := e.Tok.NewContinuationDecoder(false)
	t1 := time.Now()
	pos := len(prompt)
	tok := []int{0}
	p := []int{0}
	for {
		if o.NPredict >= 0 && st.GenTokens >= o.NPredict {
			st.Stop = "limit"
			break
		}
		if err := ctx.Err(); err != nil {
			return st, err
		}
		next := smp.Sample(logits)
		smp.Accept(next)
		if !o.IgnoreEOS && e.Tok.IsEOG(next) {
			st.Stop = "eos"
			break
		}
		st.GenTokens++
		st.Tokens = append(st.Tokens, next)
		if s := dec.Add(next); s != "" {
			if err := emit(s); err != nil {
				return st, err
			}
		}
		if pos >= o.Ctx {
			st.Stop = "context"
			break
		}
		if o.NPredict >= 0 && st.GenTokens >= o.NPredict {
			st.Stop = "limit"
			break
		}
		tok[0], p[0] = next, pos
		if logits, err = r.Forward(&model.Batch{Tokens: tok, Pos: p}, cache); err != nil {
			return st, err
		}
		pos++
		if o.Step != nil {
			o.Step(cache, st.GenTokens)
		}
	}
	if s := dec.Flush(); s != "" {
		if err := emit(s); err != nil {
			return st, err
		}
	}
	st.GenTime = time.Since(t1)
	return st, nil
}

func seq(a, b int) []int {
	s := make([]int, b-a)
	for i := range s {
		s[i] = a + i
	}
	return s
}
