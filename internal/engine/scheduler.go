package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/grammar"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/model"
	"github.com/kvserve/kvserve/internal/sample"
	"github.com/kvserve/kvserve/internal/tensor"
	"github.com/kvserve/kvserve/internal/tokenizer"
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
	Logger       *slog.Logger
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
}

// Event is one step of a running request: a generated token, or the end.
type Event struct {
	Token   int
	Text    string  // text now safe to emit (stop-string prefixes are held back)
	LogProb float64 // log-probability of Token (before sampling filters)
	Top     []sample.TokenProb
	Done    *Result // set on the last event
	Err     error   // set when the request failed
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

	PromptTokens    int // tokens in the prompt
	CachedTokens    int // prompt tokens reused from the slot's cache
	EvaluatedTokens int // prompt tokens evaluated
	PredictedTokens int
	PromptTime      time.Duration
	PredictTime     time.Duration
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

type slotState int

const (
	slotIdle slotState = iota
	slotPrefill
	slotDecode
)

type slot struct {
	id     int
	tokens []int // tokens whose K/V are in the cache, positions 0..len-1
	state  slotState
	used   uint64 // step of last use, for least-recently-used choice

	req    *Request
	ctx    context.Context
	out    chan Event
	prompt []int
	next   int // index of the next prompt token to evaluate
	smp    *sample.Sampler
	dec    *tokenizer.Decoder
	gm     *grammar.Matcher // the request's grammar state (nil: none)
	text   strings.Builder
	sent   int   // bytes of text already emitted
	cost   int64 // Request.OutputCost of the tokens emitted
	res    *Result
	last   int // last sampled token, fed in the next step
	tStart time.Time
	tGen   time.Time
	outRow int    // row of this slot's logits in the current step (-1: none)
	adding int    // tokens this slot adds in the current step
	begun  uint64 // step the running request started (for least-recently-used order)
}

type pending struct {
	req       *Request
	ctx       context.Context
	out       chan Event
	stop      func() bool      // stops the wake-up on cancellation
	truncated bool             // the prompt was truncated to fit
	gm        *grammar.Matcher // the request's grammar state (nil: none)
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

	batch model.Batch
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

	Requantizations   int64
	RequantizeSeconds float64
	Policy            cachepolicy.Stats // demotions by the policy
	BudgetRejections  int64
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
	cache, err := e.NewCache(o.Cache, o.Slots, o.SlotCtx)
	if err != nil {
		return nil, err
	}
	s := &Scheduler{
		e: e, o: o, cache: cache, shape: cache.Config(), log: o.Logger,
		runner:  model.NewRunner(e.Model, e.Pool, o.Batch),
		stopped: make(chan struct{}),
	}
	s.runner.SetContext(o.SlotCtx)
	s.cond = sync.NewCond(&s.mu)
	s.pstats.OnDemote = func(d cachepolicy.Demotion) {
		s.log.Debug("cache page demoted", "slot", d.Seq, "layer", d.Layer, "v", d.V, "page", d.Index,
			"from", d.From.String(), "to", d.To.String(), "reason", d.Reason, "freed", d.Freed)
	}
	if o.Policy != nil {
		if err := s.setPolicy(o.Policy); err != nil {
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
	for _, t := range r.Prompt {
		if t < 0 || t >= s.e.Model.NVocab {
			return nil, fmt.Errorf("token id %d out of range (vocabulary of %d)", t, s.e.Model.NVocab)
		}
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
	s.queue = append(s.queue, &pending{req: r, ctx: ctx, out: out, stop: wake, truncated: truncated, gm: gm})
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
	st.Policy.OnDemote = nil
	return st
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
	return nil
}

// SlotBusy reports whether a slot runs a request. Call within Do.
func (s *Scheduler) SlotBusy(id int) bool { return s.slots[id].state != slotIdle }

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

func (s *Scheduler) anyActive() bool {
	for _, sl := range s.slots {
		if sl.state != slotIdle {
			return true
		}
	}
	return false
}

// canAssign reports whether assign has work: a queued request that could
// start now, or one to drop (cancelled, or refused for want of a slot).
func (s *Scheduler) canAssign() bool {
	for _, p := range s.queue {
		if p.ctx.Err() != nil || p.req.NoQueue || s.neverFits(p.req) != nil || s.pickSlot(p.req, nil) != nil && s.fits(p.req) {
			return true
		}
	}
	return false
}

// maxLen is the most tokens a request can occupy in its slot.
func (s *Scheduler) maxLen(r *Request) int {
	n := r.NPredict
	if n < 0 {
		n = s.o.SlotCtx
	}
	return min(len(r.Prompt)+n, s.o.SlotCtx)
}

// fits reports whether a request can start under the cache budget: the
// reservations of the running requests and its own (see reserve) fit
// (idle slots' caches can be dropped).
func (s *Scheduler) fits(r *Request) bool {
	p := s.policy
	if p == nil || p.Budget == 0 {
		return true
	}
	need := s.reserve(p, r)
	for _, sl := range s.slots {
		if sl.state != slotIdle {
			need += s.reserve(p, sl.req)
		}
	}
	return need <= p.Budget
}

// neverFits returns an error wrapping cachepolicy.ErrBudget when a request
// alone needs more than the budget (it could wait forever).
func (s *Scheduler) neverFits(r *Request) error {
	p := s.policy
	if p == nil || p.Budget == 0 {
		return nil
	}
	if need := s.reserve(p, r); need > p.Budget {
		return fmt.Errorf("%w: this request needs %d bytes of cache (%d tokens at the lowest types, plus the page being written at the write types), over the budget of %d bytes", cachepolicy.ErrBudget, need, s.maxLen(r), p.Budget)
	}
	return nil
}

// reserve is the most cache a request can need under a budget: its
// longest context with every page at the bottom of the ladders, except
// the page being written, at the write types (new pages are allocated at
// tier 0, and under a budget a slot allocates at most one page per step,
// so the budget can always demote every other page to make room for it).
//
// It reads only the cache's fixed shape and the policy (a budget implies
// ladders), so Submit can call it while the loop converts pages.
func (s *Scheduler) reserve(p *cachepolicy.Policy, r *Request) int64 {
	if len(p.LadderK) == 0 || len(p.LadderV) == 0 {
		return 0 // no budget without ladders (Policy.Validate)
	}
	sh := &s.shape
	kv := func(k, v tensor.Type) int64 {
		return int64(k.RowSize(sh.KVHeads*sh.HeadDimK)+v.RowSize(sh.KVHeads*sh.HeadDimV)) * int64(sh.PageTokens) * int64(sh.Layers)
	}
	low := kv(p.LadderK[len(p.LadderK)-1], p.LadderV[len(p.LadderV)-1])
	write := max(kv(p.LadderK[0], p.LadderV[0]), low)
	pages := int64((s.maxLen(r) + sh.PageTokens - 1) / sh.PageTokens)
	return (pages-1)*low + write
}

// pickSlot chooses an idle slot: the requested one, else the one whose
// cached tokens share the longest prefix with the prompt, else the least
// recently used — preferring slots that no queued request is pinned to
// (wanted), so an unpinned request does not take the slot a pinned one
// waits for while another is idle.
func (s *Scheduler) pickSlot(r *Request, wanted []bool) *slot {
	if r.SlotID >= 0 {
		if sl := s.slots[r.SlotID]; sl.state == slotIdle {
			return sl
		}
		return nil
	}
	var best *slot
	bestLCP := -1
	for _, sl := range s.slots {
		if sl.state != slotIdle {
			continue
		}
		if wanted != nil && wanted[sl.id] && s.idleUnwanted(wanted) {
			continue
		}
		n := 0
		if r.CachePrompt {
			n = commonPrefix(sl.tokens, r.Prompt)
		}
		if n > bestLCP || (n == bestLCP && sl.used < best.used) {
			best, bestLCP = sl, n
		}
	}
	return best
}

// idleUnwanted reports whether some idle slot is not wanted by a pinned
// request.
func (s *Scheduler) idleUnwanted(wanted []bool) bool {
	for _, sl := range s.slots {
		if sl.state == slotIdle && !wanted[sl.id] {
			return true
		}
	}
	return false
}

func commonPrefix(a, b []int) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// assign moves queued requests into free slots, in arrival order (a
// request that cannot start yet — its pinned slot busy, or no room under
// the budget — does not hold back those behind it). Called with s.mu held.
func (s *Scheduler) assign() {
	var wanted []bool
	for _, p := range s.queue {
		if p.req.SlotID >= 0 && p.ctx.Err() == nil {
			if wanted == nil {
				wanted = make([]bool, len(s.slots))
			}
			wanted[p.req.SlotID] = true
		}
	}
	kept := s.queue[:0]
	for _, p := range s.queue {
		if p.ctx.Err() != nil {
			p.stop()
			p.out <- Event{Err: p.ctx.Err()}
			close(p.out)
			continue
		}
		if err := s.neverFits(p.req); err != nil {
			s.stats.BudgetRejections++
			p.stop()
			p.out <- Event{Err: err}
			close(p.out)
			continue
		}
		sl := s.pickSlot(p.req, wanted)
		if sl == nil || !s.fits(p.req) {
			if p.req.NoQueue {
				p.stop()
				p.out <- Event{Err: ErrNoSlot}
				close(p.out)
				continue
			}
			kept = append(kept, p)
			continue
		}
		p.stop()
		s.start(sl, p)
	}
	for i := len(kept); i < len(s.queue); i++ {
		s.queue[i] = nil
	}
	s.queue = kept
	s.stats.Processing = 0
	for _, sl := range s.slots {
		if sl.state != slotIdle {
			s.stats.Processing++
		}
	}
}

func (s *Scheduler) start(sl *slot, p *pending) {
	r := p.req
	keep := 0
	if r.CachePrompt {
		keep = commonPrefix(sl.tokens, r.Prompt)
		if keep == len(r.Prompt) {
			keep-- // re-evaluate the last token to get its logits
		}
		// A sliding-window layer may have released pages the new tokens
		// would attend: then the prompt is evaluated again.
		keep = s.cache.Reusable(sl.id, keep)
	}
	s.cache.Truncate(sl.id, keep)
	sl.tokens = sl.tokens[:keep]
	smp, err := sample.New(r.Sample, s.e.Model.NVocab)
	if err != nil { // validated at Submit; keep the loop safe anyway
		p.out <- Event{Err: err}
		close(p.out)
		return
	}
	sl.req, sl.ctx, sl.out = r, p.ctx, p.out
	sl.prompt = r.Prompt
	sl.next = keep
	sl.smp = smp
	sl.gm = p.gm
	sl.dec = s.e.Tok.NewContinuationDecoder(r.Special)
	sl.text.Reset()
	sl.sent = 0
	sl.cost = 0
	sl.state = slotPrefill
	sl.begun = s.step
	sl.tStart = time.Now()
	if s.policy != nil {
		s.cache.SetSeqWriteTypes(sl.id, nil, nil) // the policy sets them again
	}
	sl.res = &Result{SlotID: sl.id, PromptTokens: len(r.Prompt), CachedTokens: keep, EvaluatedTokens: len(r.Prompt) - keep, Truncated: p.truncated}
	for _, t := range r.Prompt {
		smp.Accept(t)
	}
	s.stats.Requests++
	if r.Started != nil {
		close(r.Started)
	}
}

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
	for _, sl := range s.slots {
		if sl.state == slotDecode && sl.adding == 1 {
			sl.outRow = len(b.Tokens)
			b.Tokens = append(b.Tokens, sl.last)
			b.Pos = append(b.Pos, len(sl.tokens))
			b.Seq = append(b.Seq, sl.id)
			b.Output = append(b.Output, true)
			sl.tokens = append(sl.tokens, sl.last)
		}
	}
	for _, sl := range s.slots {
		if sl.state != slotPrefill || sl.adding == 0 {
			continue
		}
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
	t0 := time.Now()
	logits, err := s.runner.Forward(b, s.cache)
	el := time.Since(t0)
	s.mu.Lock()
	s.stats.DecodeCalls++
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
		s.emit(sl, logits[rowOf[sl.outRow]*V:(rowOf[sl.outRow]+1)*V])
	}
	_ = el
}

// emit samples the next token of a decoding slot and sends it.
func (s *Scheduler) emit(sl *slot, logits []float32) {
	r := sl.req
	ev := Event{}
	if r.NProbs > 0 {
		ev.Top = sample.TopProbs(logits, r.NProbs)
	}
	var tok int
	if sl.gm == nil {
		tok = sl.smp.Sample(logits)
	} else if tok = s.sampleGrammar(sl, logits); tok < 0 {
		return // finished with an error
	}
	sl.smp.Accept(tok)
	ev.Token = tok
	ev.LogProb = sample.LogProb(logits, tok)
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
	sl.text.WriteString(sl.dec.Add(tok))
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
	if safe > sl.sent {
		ev.Text = full[sl.sent:safe]
		sl.sent = safe
	}
	sl.last = tok
	sl.out <- ev
	switch {
	case stopType != "":
		sl.res.StoppingWord = word
		s.finish(sl, stopType, nil)
	case sl.gm != nil && sl.gm.Done(): // nothing may follow
		s.finish(sl, "eos", nil)
	case r.NPredict >= 0 && len(sl.res.Tokens) >= r.NPredict:
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
	if stopType != "word" {
		// Flush text held back for a partial stop string, and any
		// incomplete UTF-8 the decoder held.
		sl.text.WriteString(sl.dec.Flush())
	}
	full := sl.text.String()
	res.Text = full
	res.StopType = stopType
	res.PredictedTokens = len(res.Tokens)
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
	sl.state = slotIdle
	sl.used = s.step
	sl.req, sl.ctx, sl.out, sl.smp, sl.dec, sl.res, sl.gm = nil, nil, nil, nil, nil, nil, nil
	sl.tGen = time.Time{}
}

// applyPolicy runs the cache policy before a step: age and length rules
// for every busy slot, then room under the budget for the pages this step
// will allocate — demoting the least recently used slots' oldest pages
// first, then dropping idle slots' cached prompts. A slot that still
// cannot get its pages ends with a budget error (admission makes this
// rare: it happens when the budget is lowered at run time).
func (s *Scheduler) applyPolicy() {
	p := s.policy
	if p == nil || !p.Enabled() {
		return
	}
	// Count into a local record and add it to the shared counters under
	// the lock (Stats readers run concurrently).
	st := cachepolicy.Stats{OnDemote: s.pstats.OnDemote}
	defer func() {
		s.mu.Lock()
		s.pstats.Add(st)
		s.mu.Unlock()
	}()
	for _, sl := range s.slots {
		if sl.state != slotIdle {
			p.Apply(s.cache, sl.id, &st)
		}
	}
	if p.Budget == 0 {
		return
	}
	P := s.cache.Config().PageTokens
	need := int64(0)
	for _, sl := range s.slots {
		if sl.adding > 0 {
			n := s.cache.Len(sl.id) + sl.adding
			pages := (n+P-1)/P - s.cache.NumPages(sl.id, 0)
			need += int64(max(pages, 0)) * cachepolicy.PageBytes(s.cache, sl.id)
		}
	}
	order := s.lruOrder()
	if err := p.MakeRoom(s.cache, need, order, &st); err == nil {
		return
	}
	for _, id := range order { // drop idle slots' caches, least recently used first
		if sl := s.slots[id]; sl.state == slotIdle && len(sl.tokens) > 0 {
			s.cache.Clear(id)
			sl.tokens = sl.tokens[:0]
			if s.cache.Bytes()+need <= p.Budget {
				return
			}
		}
	}
	if err := p.MakeRoom(s.cache, need, order, &st); err != nil {
		for i := len(order) - 1; i >= 0; i-- { // newest request first
			sl := s.slots[order[i]]
			if sl.adding == 0 || sl.state == slotIdle {
				continue
			}
			s.log.Warn("cache budget exhausted; ending request", "slot", sl.id, "err", err)
			sl.adding = 0
			s.finish(sl, "none", err)
			break
		}
	}
}

// pageStepCap bounds the tokens a slot adds in one step: under a cache
// budget, no more than fill its current page and one new page (the
// admission reservation counts one page at the write types per slot).
func (s *Scheduler) pageStepCap(sl *slot) int {
	if p := s.policy; p == nil || p.Budget == 0 {
		return len(sl.prompt)
	}
	P := s.cache.Config().PageTokens
	n := len(sl.tokens)
	return ((n+P-1)/P+1)*P - n
}

// lruOrder lists slots least recently used first: idle slots by when they
// finished, then busy slots by when their request began.
func (s *Scheduler) lruOrder() []int {
	ids := make([]int, len(s.slots))
	for i := range ids {
		ids[i] = i
	}
	key := func(sl *slot) (int, uint64) {
		if sl.state == slotIdle {
			return 0, sl.used
		}
		return 1, sl.begun
	}
	sort.SliceStable(ids, func(a, b int) bool {
		ga, ka := key(s.slots[ids[a]])
		gb, kb := key(s.slots[ids[b]])
		if ga != gb {
			return ga < gb
		}
		return ka < kb
	})
	return ids
}

// setPolicy validates and installs a policy (nil: none). Loop goroutine or
// constructor only.
func (s *Scheduler) setPolicy(p *cachepolicy.Policy) error {
	if p != nil {
		if err := p.Validate(s.e.Model.HeadDim, s.e.Model.HeadDimV); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.policy = p
	s.mu.Unlock()
	if p == nil {
		for _, sl := range s.slots {
			s.cache.SetSeqWriteTypes(sl.id, nil, nil)
		}
	}
	return nil
}

// SetPolicy changes the cache policy at run time, between two steps;
// running streams continue and later steps follow the new rules.
func (s *Scheduler) SetPolicy(p *cachepolicy.Policy) error {
	return s.Do(func(*kvcache.Cache) error { return s.setPolicy(p) })
}

// Policy returns the current policy (nil: none).
func (s *Scheduler) Policy() *cachepolicy.Policy {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.policy
}
