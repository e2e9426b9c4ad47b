package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/kvserve/kvserve/internal/cachedisk"
	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/grammar"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/model"
	"github.com/kvserve/kvserve/internal/sample"
	"github.com/kvserve/kvserve/internal/tensor"
)

// SchedulerOptions configure the server's slots and batching.
type SchedulerOptions struct {
	Slots   int // parallel sequences
	SlotCtx int // tokens per slot
	Batch   int // maximum tokens per forward pass (0: DefaultBatch)
	// PrefillChunk caps the prompt tokens processed per step while other
	// slots are generating, so a long prompt does not stall their streams
	// (0: 128).
	PrefillChunk int
	// ContextShift lets a slot whose context fills keep generating by
	// dropping older tokens (see shiftContext), and truncates prompts that
	// do not fit instead of refusing them.
	ContextShift bool
	Cache        CacheOptions
	Policy       *cachepolicy.Policy // automatic precision (nil: none)
	// Spec configures speculative decoding (nil: none).
	Spec   *SpecOptions
	Logger *slog.Logger
	// NoSharePrefix turns off sharing prefix pages between slots: by
	// default a request whose prompt starts with whole pages another slot
	// holds shares those pages (copy-on-write) instead of evaluating them.
	NoSharePrefix bool
	// Disk, if set, is the cache's disk tier: a slot's cache that would be
	// dropped (the slot taken by another conversation, or cleared to make
	// room under the budget) is spilled to it, and a prompt that starts
	// with an entry's tokens loads it instead of evaluating them (see
	// disk.go).
	Disk *cachedisk.Tier
	// SpillK and SpillV, when set, are the types the disk tier's entries
	// are written in: pages of a type that takes more bytes are converted
	// down on the way out (kvcache.WriteSeqAs; the live cache is not
	// changed), so the tier holds more entries per byte.
	SpillK, SpillV *tensor.Type
}

// Request is one completion to run in a slot.
type Request struct {
	Prompt      []int
	NPredict    int // tokens to generate; < 0: until end of generation or context
	Sample      sample.Params
	Stop        []string // stop strings (not included in the output)
	IgnoreEOS   bool
	NProbs      int  // top probabilities to report per generated token
	SlotID      int  // -1: any free slot
	CachePrompt bool // reuse the slot's cached prefix of the prompt
	Special     bool // render special tokens in the output text
	NKeep       int  // tokens a context shift or prompt truncation keeps at the start (-1: the whole prompt)
	// CacheReuse > 0 reuses chunks of at least that many tokens of the
	// slot's cache that the prompt repeats after its common prefix, the
	// cache shifted to their new positions (llama-server's --cache-reuse).
	CacheReuse int

	// Started, if set, is closed when the request gets its slot (and its
	// share of the cache budget): until then it waits in the queue.
	Started chan struct{}
	// NoQueue refuses the request with ErrNoSlot when it cannot start at
	// the scheduler's next assignment, instead of letting it wait.
	NoQueue bool
	// OutputCost, if set, is what a generated token adds to the response
	// (e.g. its share of a JSON body); generation ends, with stop type
	// "limit", before the token that would bring the total over
	// OutputBudget. It runs on the scheduler's goroutine: keep it cheap.
	OutputCost   func(tok int, top []sample.TokenProb) int64
	OutputBudget int64
	// Grammar, if set, constrains the output: only tokens it allows are
	// sampled, end of generation only when it can end, and generation
	// stops (StopType "eos") once it is complete.
	Grammar *grammar.Grammar
	// Reasoning, if set, marks the model's thinking in the output: its
	// tokens are cached with the reasoning role (cache policies choose
	// their precision apart, and may drop them when the request ends).
	Reasoning *ReasoningMarkers
	// Spec overrides the server's speculation settings for the request
	// (nil: the server's). Requests with a Grammar are not speculated.
	Spec *SpecParams
	// Lora, if set, are the request's LoRA adapter scales, by adapter in
	// load order (a missing one: 0), instead of the adapters' own
	// (llama-server's per-request "lora"). Like every request it reuses
	// cached tokens (its slot's, shared or on disk) only when computed
	// under the same AdapterSet: the same adapters at the same scales,
	// whether a request's own or the adapters'.
	Lora []float32
	// MaxPredictTime, when positive, ends generation (stop type "limit")
	// once a newline was generated and this long has passed since the
	// first token (llama-server's t_max_predict_ms).
	MaxPredictTime time.Duration
	// NIndent, when positive, ends generation (stop type "limit") at a
	// generated line indented by fewer spaces or tabs, cutting that line
	// after its indentation (llama-server's n_indent, for code
	// completion).
	NIndent int
	// TimingsPerToken sends the request's timings so far with every
	// token's event (Event.Timings; llama-server's timings_per_token).
	TimingsPerToken bool
	// LogProbs reports each generated token's log-probability
	// (Event.LogProb; also with NProbs > 0). It costs a pass over the
	// vocabulary per token, so it is computed only when asked for.
	LogProbs bool
}

// Event is one step of a running request: a generated token, or the end.
type Event struct {
	SlotID  int // the slot generating it
	Token   int
	Text    string  // text now safe to emit (stop-string prefixes are held back)
	LogProb float64 // log-probability of Token (before sampling filters); with Request.LogProbs or NProbs > 0, else 0
	Top     []sample.TokenProb
	Done    *Result // set on the last event
	// Timings, with Request.TimingsPerToken, are the request's counts and
	// times so far (the token's own included; no Tokens or Text).
	Timings *Result
	Err     error // set when the request failed
}

// Result summarises a finished request.
type Result struct {
	SlotID        int
	Tokens        []int  // generated tokens (the stopping EOS excluded)
	Text          string // generated text, cut before a stop string
	StopType      string // "eos", "limit", "word" or "none" (cancelled)
	StoppingWord  string
	Truncated     bool // the context filled up, or the prompt was truncated to fit
	ContextShifts int  // times the context was shifted to continue generating
	EvictedTokens int  // tokens evicted from the middle of the slot's cache (cache budget's Evict)

	PromptTokens    int // tokens in the prompt
	CachedTokens    int // prompt tokens reused from the slot's cache
	SharedTokens    int // of those, tokens of pages shared with another slot (SharePrefix)
	DiskTokens      int // of those, tokens loaded from the disk tier
	SlotTokens      int // tokens in the slot's cache when the request ended (llama-server's n_past)
	EvaluatedTokens int // prompt tokens evaluated
	PredictedTokens int
	PromptTime      time.Duration
	PredictTime     time.Duration

	// Speculative decoding: tokens drafted and drafted tokens accepted
	// (llama-server's timings.draft_n and draft_n_accepted).
	DraftN, DraftAccepted int
}

// eventBuffer is each request's event channel size: a slot whose reader
// has not taken its events waits (its decode steps are skipped) rather than
// block the scheduler.
const eventBuffer = 64

// maxShiftedPredict bounds a request with no token limit when context shift
// keeps its slot from ever filling: this many slot contexts of tokens.
const maxShiftedPredict = 4

// ErrClosed is returned by Submit after Close.
var ErrClosed = errors.New("server is shutting down")

// ErrGrammar is wrapped by the error that ends a request whose grammar
// cannot go on (a limit of grammar.Limits, or no token can continue it).
var ErrGrammar = errors.New("grammar")

// ErrNoSlot ends a NoQueue request that could not start at once.
var ErrNoSlot = errors.New("no slot is free")

type pending struct {
	req       *Request
	ctx       context.Context
	out       chan Event
	stop      func() bool      // stops the wake-up on cancellation
	truncated bool             // the prompt was truncated to fit
	gm        *grammar.Matcher // the request's grammar state (nil: none)
	prefetch  bool             // its disk tier entry was asked into RAM (Tier.Prefetch)
	adapters  AdapterSet       // with Request.Lora: the set of its scales (requestAdapters)
}

// Scheduler runs requests in parallel slots over one shared model and KV
// cache, batching the decode step of every active slot into one forward
// pass (continuous batching) and chunking prompts between them.
type Scheduler struct {
	e      *Engine
	o      SchedulerOptions
	cache  *kvcache.Cache
	shape  kvcache.Config // the cache's configuration at creation (its shape never changes)
	runner *model.Runner
	log    *slog.Logger

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []*pending
	ops     []*op
	closed  bool
	stopped chan struct{}
	slots   []*slot
	step    uint64
	stats   Stats
	requant *requantJob // conversion in progress (loop goroutine only)
	policy  *cachepolicy.Policy
	pstats  cachepolicy.Stats
	conv    converter // carries out policies' and requantizations' conversions (loop goroutine only)

	batch model.Batch

	adapters AdapterSet // the set of the adapters' own scales (AdaptersChanged)

	spec      *specState // speculative decoding (nil: none)
	hasWindow bool       // some layer attends a sliding window
}

// Stats are cumulative counters for /metrics.
type Stats struct {
	PromptTokens    int64
	PromptSeconds   float64
	PredictedTokens int64
	PredictSeconds  float64
	Requests        int64
	Processing      int // slots busy now
	Deferred        int // requests waiting for a slot
	DecodeCalls     int64
	BusySlots       int64 // slots with tokens in a forward pass, summed over the passes

	Requantizations   int64
	RequantizeSeconds float64
	Policy            cachepolicy.Stats // demotions by the policy
	BudgetRejections  int64

	DraftTokens, DraftAccepted int64 // speculative decoding: drafted, accepted
}

type op struct {
	fn   func(c *kvcache.Cache) error
	done chan error
}

// NewScheduler creates the slots and their cache; Start runs it.
func (e *Engine) NewScheduler(o SchedulerOptions) (*Scheduler, error) {
	if o.Slots <= 0 {
		o.Slots = 1
	}
	if o.SlotCtx <= 0 {
		o.SlotCtx = e.Model.NCtxTrain
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.PrefillChunk <= 0 {
		o.PrefillChunk = 128
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if err := e.checkHybrid(o); err != nil {
		return nil, err
	}
	for _, sp := range []struct {
		t       *tensor.Type
		headDim int
		side    string
	}{{o.SpillK, e.Model.HeadDim, "K"}, {o.SpillV, e.Model.HeadDimV, "V"}} {
		if sp.t != nil {
			if err := kvcache.CheckType(*sp.t, sp.headDim); err != nil {
				return nil, fmt.Errorf("spill type for %s: %w", sp.side, err)
			}
		}
	}
	cache, err := e.NewCache(o.Cache, o.Slots, o.SlotCtx)
	if err != nil {
		return nil, err
	}
	s := &Scheduler{
		e: e, o: o, cache: cache, shape: cache.Config(), log: o.Logger, adapters: e.adapterSet(nil),
		runner:  model.NewRunner(e.Model, e.Pool, o.Batch),
		stopped: make(chan struct{}),
	}
	s.runner.SetContext(o.SlotCtx)
	s.cond = sync.NewCond(&s.mu)
	s.conv = converter{cache: cache, pool: e.Pool, log: s.log}
	if o.Policy != nil {
		if err := s.setPolicy(o.Policy); err != nil {
			cache.Close()
			return nil, err
		}
	}
	for l := 0; l < e.Model.NLayer; l++ {
		if cache.Attn(l).Window > 0 {
			s.hasWindow = true
		}
	}
	if o.Spec.Enabled() {
		if err := s.newSpec(*o.Spec); err != nil {
			cache.Close()
			return nil, err
		}
	}
	for i := 0; i < o.Slots; i++ {
		s.slots = append(s.slots, &slot{id: i, outRow: -1})
	}
	return s, nil
}

// Options returns the scheduler's options.
func (s *Scheduler) Options() SchedulerOptions { return s.o }

// Engine returns the engine the scheduler runs on.
func (s *Scheduler) Engine() *Engine { return s.e }

// Start runs the scheduling loop in a new goroutine.
func (s *Scheduler) Start() { go s.loop() }

// Close stops accepting requests, cancels running ones, waits for the
// loop to end and frees the cache.
func (s *Scheduler) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.stopped
		return
	}
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	<-s.stopped
	s.cache.Close()
	if s.spec != nil && s.spec.cache != nil {
		s.spec.cache.Close()
	}
}

// Submit queues a request. Events arrive on the returned channel, which is
// closed after the event carrying Done or Err. Cancelling ctx ends the
// request (its slot is freed at the next step).
func (s *Scheduler) Submit(ctx context.Context, r *Request) (<-chan Event, error) {
	if len(r.Prompt) == 0 {
		return nil, fmt.Errorf("empty prompt")
	}
	truncated := false
	if len(r.Prompt) >= s.o.SlotCtx {
		if !s.o.ContextShift {
			return nil, fmt.Errorf("prompt of %d tokens does not fit the slot context of %d tokens", len(r.Prompt), s.o.SlotCtx)
		}
		r.Prompt, truncated = s.truncatePrompt(r), true
	}
	if r.SlotID >= s.o.Slots {
		return nil, fmt.Errorf("id_slot %d out of range (0-%d)", r.SlotID, s.o.Slots-1)
	}
	if r.CacheReuse > 0 && s.e.Model.Recurrent != nil {
		return nil, fmt.Errorf("n_cache_reuse: %s is a hybrid recurrent model, whose state cannot be shifted to reuse chunks of the cache (prefix reuse works, from state checkpoints)", s.e.Model.Arch)
	}
	for _, t := range r.Prompt {
		if t < 0 || t >= s.e.Model.NVocab {
			return nil, fmt.Errorf("token id %d out of range (vocabulary of %d)", t, s.e.Model.NVocab)
		}
	}
	if len(r.Lora) > s.e.Model.Loras() {
		return nil, fmt.Errorf("LoRA scales for %d adapters, %d loaded", len(r.Lora), s.e.Model.Loras())
	}
	if err := r.Sample.Validate(); err != nil {
		return nil, err
	}
	var gm *grammar.Matcher
	if r.Grammar != nil {
		// Built here, in the caller's goroutine: the first request of a
		// model also builds its vocabulary trie.
		var err error
		if gm, err = r.Grammar.NewMatcher(s.e.GrammarVocab(), r.Special); err != nil {
			return nil, err
		}
	}
	if r.NPredict < 0 && s.o.ContextShift {
		// Until the end of generation, but bounded: with context shift a
		// slot never fills.
		r.NPredict = maxShiftedPredict * s.o.SlotCtx
	}
	// A slot whose reader falls behind pauses (stepOnce skips it while its
	// channel is nearly full), so the channel never blocks the scheduler.
	out := make(chan Event, eventBuffer)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if err := s.neverFits(r); err != nil {
		s.stats.BudgetRejections++
		return nil, err
	}
	// A queued request whose context ends must leave the queue even when
	// the loop sleeps (nothing running, nothing assignable).
	wake := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	p := &pending{req: r, ctx: ctx, out: out, stop: wake, truncated: truncated, gm: gm}
	if r.Lora != nil {
		p.adapters = s.e.adapterSet(r.Lora)
	}
	s.queue = append(s.queue, p)
	s.cond.Broadcast()
	return out, nil
}

// Do runs fn on the cache between two steps of the loop (nothing else
// touches the cache while it runs) and returns its error.
func (s *Scheduler) Do(fn func(c *kvcache.Cache) error) error {
	o := &op{fn: fn, done: make(chan error, 1)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.ops = append(s.ops, o)
	s.cond.Broadcast()
	s.mu.Unlock()
	return <-o.done
}

// Stats returns a snapshot of the counters.
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Deferred = len(s.queue)
	st.Policy = s.pstats
	return st
}

func (s *Scheduler) loop() {
	defer close(s.stopped)
	for {
		s.mu.Lock()
		for !s.closed && len(s.ops) == 0 && s.requant == nil && !s.anyActive() && !s.canAssign() {
			s.cond.Wait()
		}
		if s.closed {
			q := s.queue
			s.queue = nil
			ops := s.ops
			s.ops = nil
			s.mu.Unlock()
			for _, p := range q {
				p.stop()
				p.out <- Event{Err: ErrClosed}
				close(p.out)
			}
			for _, o := range ops {
				o.done <- ErrClosed
			}
			if s.requant != nil {
				s.requant.done <- ErrClosed
				s.requant = nil
			}
			for _, sl := range s.slots {
				if sl.state != slotIdle {
					s.finish(sl, "none", ErrClosed)
				}
			}
			return
		}
		ops := s.ops
		s.ops = nil
		s.assign()
		s.mu.Unlock()
		for _, o := range ops {
			o.done <- s.runOp(o)
		}
		s.stepRequant()
		if s.anyActive() {
			s.stepOnce()
		}
	}
}

func (s *Scheduler) runOp(o *op) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error: %v", r)
			s.log.Error("cache operation panicked", "panic", r)
		}
	}()
	return o.fn(s.cache)
}
