package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/sample"
	"github.com/kvserve/kvserve/internal/tensor"
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
	Spec      *SpecOptions // speculative decoding (nil: none)
}

// GenerateStats report what a generation did.
type GenerateStats struct {
	PromptTokens, GenTokens int
	PromptTime, GenTime     time.Duration
	Stop                    string // "eos", "limit", "context"
	Tokens                  []int  // prompt followed by generated tokens
	// Cache usage when the generation ended: positions held, bytes, and
	// bytes by page type.
	CacheTokens int
	CacheBytes  int64
	CacheByType map[tensor.Type]int64
	// Speculative decoding: tokens drafted and accepted.
	DraftN, DraftAccepted int
}

// Generate tokenizes the prompt (special tokens parsed, BOS added as the
// model asks) and runs it through a one-slot Scheduler — the same decode
// loop the server uses — calling emit with each piece of text as soon as
// it is complete UTF-8.
func (e *Engine) Generate(ctx context.Context, o GenerateOptions, emit func(string) error) (*GenerateStats, error) {
	if o.Ctx <= 0 {
		o.Ctx = e.Model.NCtxTrain
	}
	prompt := e.Tok.Encode(o.Prompt, true, true)
	if len(prompt) == 0 {
		return nil, fmt.Errorf("empty prompt: the model adds no BOS token, so give at least one token of text")
	}
	s, err := e.NewScheduler(SchedulerOptions{Slots: 1, SlotCtx: o.Ctx, Batch: o.Batch, Cache: o.Cache, Spec: o.Spec})
	if err != nil {
		return nil, err
	}
	s.Start()
	defer s.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := s.Submit(ctx, &Request{Prompt: prompt, NPredict: o.NPredict, Sample: o.Sample, IgnoreEOS: o.IgnoreEOS, SlotID: -1})
	if err != nil {
		return nil, err
	}
	st := &GenerateStats{PromptTokens: len(prompt), Tokens: append([]int(nil), prompt...)}
	var emitErr error
	for ev := range ch {
		if ev.Text != "" && emitErr == nil {
			if emitErr = emit(ev.Text); emitErr != nil {
				cancel()
			}
		}
		if ev.Err != nil {
			if emitErr != nil {
				return st, emitErr
			}
			return st, ev.Err
		}
		if r := ev.Done; r != nil {
			st.GenTokens = len(r.Tokens)
			st.Tokens = append(st.Tokens, r.Tokens...)
			st.PromptTime, st.GenTime = r.PromptTime, r.PredictTime
			st.DraftN, st.DraftAccepted = r.DraftN, r.DraftAccepted
			switch {
			case r.Truncated:
				st.Stop = "context"
			default:
				st.Stop = r.StopType
			}
		}
	}
	s.Do(func(c *kvcache.Cache) error {
		st.CacheTokens, st.CacheBytes, st.CacheByType = c.Len(0), c.Bytes(), c.BytesByType()
		return nil
	})
	if emitErr == nil {
		emitErr = ctx.Err()
	}
	return st, emitErr
}

func seq(a, b int) []int {
	s := make([]int, b-a)
	for i := range s {
		s[i] = a + i
	}
	return s
}
