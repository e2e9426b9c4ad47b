package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/grammar"
	"github.com/kvserve/kvserve/internal/sample"
	"github.com/kvserve/kvserve/internal/toolcall"
)

// api says which API a completion request came through.
type api int

const (
	apiNative  api = iota // /completion
	apiOAIText            // /v1/completions
	apiOAIChat            // /v1/chat/completions
)

// Request limits (see docs/api.md, "Resource limits").
const (
	// maxNProbs bounds n_probs (each generated token reports that many
	// alternatives); like llama-server, kvserve also reports at most the
	// vocabulary's size.
	maxNProbs = 1000
	// maxStops and maxStopBytes bound "stop": the strings are searched
	// for in the text after every token.
	maxStops     = 64
	maxStopBytes = 256
)

// genOptions are the generation parameters common to the completion APIs.
type genOptions struct {
	api             api
	nPredict        int // -1: until end of generation or context; 0: evaluate the prompt only
	sample          sample.Params
	stop            []string
	stream          bool
	includeUsage    bool // OpenAI stream_options.include_usage
	nProbs          int  // alternatives per token (0: none)
	logprobs        bool // report the chosen tokens' log-probabilities
	cachePrompt     bool
	cacheReuse      int // least chunk reused after a shifted prefix (0: off)
	nKeep           int // tokens a context shift or truncation keeps (-1: the prompt)
	slotID          int
	returnTokens    bool
	ignoreEOS       bool
	grammar         *grammar.Grammar   // grammar, json_schema or response_format (nil: none)
	grammarDefault  bool               // grammar is the server's default (--grammar, --json-schema)
	special         bool               // render special tokens (tool-call markers)
	plan            *chatPlan          // chat: tools and reasoning, how to read the output (nil otherwise)
	turnEnd         string             // chat: the template's end-of-turn marker when it is not one token ("" otherwise)
	spec            *engine.SpecParams // speculative.n_max / n_min / p_min (nil: the server's)
	fields          []string           // response_fields: the paths of /completion's answer to keep (nil: all)
	n               int                // OpenAI choices (n)
	lora            []float32          // the request's LoRA scales (nil: the adapters')
	maxPredictMs    int                // t_max_predict_ms (0: none)
	nIndent         int                // n_indent (0: none)
	timingsPerToken bool               // streamed chunks carry the timings so far
}

// unsupported lists request fields asking for features kvserve does not
// implement; a request that sets one to a non-default value is refused
// with a 400 rather than silently served differently.
var unsupported = []struct{ field, what string }{
	{"functions", "legacy function calling (use \"tools\")"},
	{"echo", "echo"},
	{"suffix", "suffix (insertion)"},
	{"prompt_logprobs", "prompt_logprobs"},
}

// parseGen reads the generation parameters of a completion request.
func (s *Server) parseGen(o *object, a api) genOptions {
	g := s.defaultGen(a)
	for _, u := range unsupported {
		if o.nonEmpty(u.field) {
			o.fail("%q is not supported: kvserve does not implement %s", u.field, u.what)
		}
	}
	if a != apiOAIChat && o.nonEmpty("tools") {
		o.fail(`"tools" are supported on /v1/chat/completions only`)
	}
	g.grammar = parseConstraint(o)
	g.lora = s.requestLora(o)
	if d := s.defaults().Grammar; d != nil && !o.has("grammar") && !o.has("json_schema") && !o.has("response_format") {
		g.grammar, g.grammarDefault = d, true // the server's --grammar / --json-schema
	}
	g.n = 1
	if a != apiNative {
		// OpenAI's n: that many choices (each its own request; with a
		// fixed seed, choice i samples with seed+i).
		for _, f := range []string{"n", "n_cmpl"} {
			if o.has(f) {
				g.n = o.int(f, 1, 1, maxChoices)
				break
			}
		}
	}
	for _, f := range []string{"n", "best_of", "n_cmpl"} {
		if a != apiNative && f != "best_of" {
			continue
		}
		if o.has(f) && o.int(f, 1, math.MinInt32, math.MaxInt32) != 1 && o.err == nil {
			o.fail("%q must be 1: kvserve returns one choice per request here", f)
		}
	}
	// Length: n_predict (llama-server), max_completion_tokens and
	// max_tokens (OpenAI), first one given wins.
	for _, f := range []string{"n_predict", "max_completion_tokens", "max_tokens"} {
		if o.has(f) {
			g.nPredict = o.int(f, g.nPredict, -2, math.MaxInt32)
			if g.nPredict < -1 {
				g.nPredict = -1
			}
			break
		}
	}
	p := &g.sample
	const big = 1e30 // fits float32
	p.Temperature = float32(o.float("temperature", float64(p.Temperature), -big, big))
	p.TopK = o.int("top_k", p.TopK, math.MinInt32, math.MaxInt32)
	p.TopP = float32(o.float("top_p", float64(p.TopP), -big, big))
	p.MinP = float32(o.float("min_p", float64(p.MinP), -big, big))
	p.MinKeep = o.int("min_keep", p.MinKeep, math.MinInt32, math.MaxInt32)
	p.RepeatPenalty = float32(o.float("repeat_penalty", float64(p.RepeatPenalty), -big, big))
	p.RepeatLastN = o.int("repeat_last_n", p.RepeatLastN, math.MinInt32, math.MaxInt32)
	p.PresencePenalty = float32(o.float("presence_penalty", float64(p.PresencePenalty), -big, big))
	p.FrequencyPenalty = float32(o.float("frequency_penalty", float64(p.FrequencyPenalty), -big, big))
	p.Seed = o.seed("seed", p.Seed)
	s.parseSamplers(o, p)
	if o.err == nil {
		if err := p.Validate(); err != nil {
			o.fail("%s", strings.ReplaceAll(err.Error(), "\n", "; "))
		}
	}
	g.stop = o.strings("stop", maxStops, maxStopBytes)
	g.stream = o.bool("stream", false)
	g.timingsPerToken = o.bool("timings_per_token", false)
	g.maxPredictMs = max(0, o.int("t_max_predict_ms", 0, math.MinInt32, math.MaxInt32))
	g.nIndent = max(0, o.int("n_indent", 0, math.MinInt32, 1<<20))
	if so := o.object("stream_options"); so != nil {
		g.includeUsage = so.bool("include_usage", false)
		if so.err != nil {
			o.fail(`"stream_options": %s`, so.err.Message)
		}
	}
	switch a {
	case apiNative:
		g.nProbs = o.int("n_probs", 0, 0, maxNProbs)
		g.logprobs = g.nProbs > 0
	case apiOAIText:
		// logprobs: an integer, the number of alternatives (0 reports
		// only the chosen tokens).
		if o.has("logprobs") {
			g.nProbs = o.int("logprobs", 0, 0, 20)
			g.logprobs = true
		}
	case apiOAIChat:
		g.logprobs = o.bool("logprobs", false)
		if o.has("top_logprobs") {
			g.nProbs = o.int("top_logprobs", 0, 0, 20)
			if g.nProbs > 0 && !g.logprobs && o.err == nil {
				o.fail(`"top_logprobs" requires "logprobs": true`)
			}
		}
	}
	g.cachePrompt = o.bool("cache_prompt", g.cachePrompt)
	g.cacheReuse = o.int("n_cache_reuse", g.cacheReuse, 0, math.MaxInt32)
	g.nKeep = o.int("n_keep", g.nKeep, -1, math.MaxInt32)
	g.slotID = o.int("id_slot", -1, -1, s.o.Slots-1)
	g.returnTokens = o.bool("return_tokens", false)
	g.fields = o.strings("response_fields", 64, 256)
	g.ignoreEOS = o.bool("ignore_eos", g.ignoreEOS)
	// llama-server's per-request speculation settings.
	var sp engine.SpecParams
	if o.has("speculative.n_max") {
		v := o.int("speculative.n_max", 0, 0, 1024)
		sp.NMax = &v
	}
	if o.has("speculative.n_min") {
		v := o.int("speculative.n_min", 0, 0, 1024)
		sp.NMin = &v
	}
	if o.has("speculative.p_min") {
		v := float32(o.float("speculative.p_min", 0, 0, 1))
		sp.PMin = &v
	}
	if sp != (engine.SpecParams{}) {
		g.spec = &sp
	}
	return g
}

// stops returns the request's stop strings and the template's end of turn.
func (g genOptions) stops() []string {
	if g.turnEnd == "" || slices.Contains(g.stop, g.turnEnd) {
		return g.stop
	}
	return append(slices.Clip(g.stop), g.turnEnd)
}

// request builds the engine request for a tokenized prompt.
func (s *Server) request(prompt []int, g genOptions) (*engine.Request, *apiError) {
	if len(prompt) == 0 {
		return nil, badRequest("empty prompt: give at least one token of text (this model adds no BOS token)")
	}
	if len(prompt) >= s.slotCtx && !s.o.ContextShift {
		return nil, s.exceedContext(strconv.Itoa(len(prompt)))
	}
	nv := s.eng.Model.NVocab
	for _, t := range prompt {
		if t < 0 || t >= nv {
			return nil, badRequest("token id %d is out of range (the vocabulary has %d tokens)", t, nv)
		}
	}
	g.sample.ContextSize = s.eng.Model.NCtxTrain
	if g.sample.DRYMultiplier != 0 && g.sample.DRYBase >= 1 && g.sample.DRYPenaltyLastN != 0 {
		g.sample.DRYBreakers = s.dryBreakers(g.sample.DRYSequenceBreakers)
	}
	r := &engine.Request{
		Prompt: prompt, NPredict: g.nPredict, Sample: g.sample, Stop: g.stops(), IgnoreEOS: g.ignoreEOS,
		NProbs: min(g.nProbs, nv), LogProbs: g.logprobs || g.nProbs > 0, SlotID: g.slotID, CachePrompt: g.cachePrompt, NKeep: g.nKeep, CacheReuse: g.cacheReuse,
		Grammar: g.grammar, Special: g.special, Spec: g.spec, TimingsPerToken: g.timingsPerToken && g.stream, Lora: g.lora,
		MaxPredictTime: time.Duration(g.maxPredictMs) * time.Millisecond, NIndent: g.nIndent,
	}
	if g.plan != nil && g.plan.parser.Reasoning && g.plan.tmpl.Format != toolcall.Harmony {
		// The cache follows the model's thinking block, so a policy can
		// hold reasoning at its own precision (or drop it).
		r.Reasoning = &engine.ReasoningMarkers{Open: "<think>", Close: "</think>", InThink: g.plan.parser.InThink}
	}
	if !g.stream {
		// A response is built whole in memory: it ends (stop type
		// "limit") before it would pass MaxResponseBytes. Streams send
		// each token's share as it comes.
		r.OutputCost, r.OutputBudget = s.outputCost(g), s.o.MaxResponseBytes
	}
	return r, nil
}

// outputCost estimates, from above, the bytes a generated token adds to a
// non-streaming response: its text (JSON-escaped) and id, and with
// log-probabilities its entry and its alternatives' (/v1/completions
// reports them twice: the legacy fields and llama-server's list).
func (s *Server) outputCost(g genOptions) func(int, []sample.TokenProb) int64 {
	tok := s.eng.Tok
	piece := func(id int) int64 { return int64(len(tok.Piece(id, true))) }
	probs := g.logprobs || g.nProbs > 0
	twice := probs && g.api == apiOAIText
	return func(id int, top []sample.TokenProb) int64 {
		c := 16 + 2*piece(id)
		if probs {
			c += 100 + 6*piece(id)
			for _, tp := range top {
				c += 80 + 6*piece(tp.ID)
			}
			if twice {
				c *= 2
			}
		}
		return c
	}
}

// encodePrompt tokenizes prompt text that must fit a slot's context with
// `used` tokens already in the prompt: a text that cannot fit is refused
// before (or as soon as) its tokens pass the limit, so an oversized
// prompt costs no more than reading it.
func (s *Server) encodePrompt(text string, addSpecial bool, used int) ([]int, *apiError) {
	toks, ok := s.eng.Tok.EncodeLimit(text, addSpecial, true, s.maxPrompt()-used)
	if !ok {
		return nil, s.exceedContext(fmt.Sprintf("more than %d", s.maxPrompt()))
	}
	return toks, nil
}

// maxPrompt is the most prompt tokens a request may bring: what fits a slot,
// or with context shift (which truncates longer prompts to fit) a bound of
// maxShiftedPrompt slot contexts, so the work stays bounded.
func (s *Server) maxPrompt() int {
	if s.o.ContextShift {
		return maxShiftedPrompt * s.slotCtx
	}
	return s.slotCtx - 1
}

// maxShiftedPrompt bounds prompts under --context-shift, in slot contexts.
const maxShiftedPrompt = 8

// exceedContext is llama-server's context overflow error: its message,
// with n_prompt_tokens and n_ctx (n is the count, or a lower bound when
// counting stopped early: "more than N").
func (s *Server) exceedContext(n string) *apiError {
	e := errorf(http.StatusBadRequest, TypeExceedContext,
		"request (%s tokens) exceeds the available context size (%d tokens), try increasing it (a larger -c, or fewer slots with -np)", n, s.slotCtx)
	nt, err := strconv.Atoi(n)
	if err != nil {
		fmt.Sscanf(n, "more than %d", &nt)
		nt++
	}
	e.Extra = map[string]any{"n_prompt_tokens": nt, "n_ctx": s.slotCtx}
	return e
}

// run is a submitted request.
type run struct {
	events  <-chan engine.Event
	first   *engine.Event // an event received while waiting for the start
	ctx     context.Context
	cancel  func()
	started time.Time
}

// start submits a request and waits until it has a slot (and its share of
// the cache budget): requests wait in the scheduler's queue up to
// QueueTimeout (at most QueueMax of them; a request pinned with id_slot
// waits for its slot without holding back others) and are then answered
// 503 with Retry-After — always before a response starts. The request
// ends when ctx (the client's) ends, or when the server is closed.
func (s *Server) start(ctx context.Context, r *engine.Request) (*run, *apiError) {
	rctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.baseCtx, cancel)
	rn := &run{ctx: rctx, cancel: func() { stop(); cancel() }}
	if n := s.waiting.Add(1); n > int64(s.o.QueueMax) {
		s.waiting.Add(-1)
		rn.cancel()
		return nil, busy("all %d slots are busy and %d requests are already waiting; retry later", s.o.Slots, s.o.QueueMax)
	}
	defer s.waiting.Add(-1)
	r.Started = make(chan struct{})
	r.NoQueue = s.o.QueueTimeout < 0
	ch, err := s.sched.Submit(rctx, r)
	if err != nil {
		rn.cancel()
		switch {
		case errors.Is(err, engine.ErrClosed):
			return nil, errorf(http.StatusServiceUnavailable, TypeUnavailable, "%v", err)
		case errors.Is(err, cachepolicy.ErrBudget):
			return nil, busy("%v", err)
		}
		return nil, badRequest("%v", err)
	}
	rn.events = ch
	var timeout <-chan time.Time
	if s.o.QueueTimeout > 0 {
		t := time.NewTimer(s.o.QueueTimeout)
		defer t.Stop()
		timeout = t.C
	}
	isStarted := func() bool {
		select {
		case <-r.Started:
			return true
		default:
			return false
		}
	}
	select {
	case <-r.Started:
	case ev := <-ch:
		if isStarted() { // the first event raced the start signal
			rn.first = &ev
			break
		}
		rn.close()
		switch {
		case errors.Is(ev.Err, cachepolicy.ErrBudget):
			return nil, busy("%v", ev.Err)
		case errors.Is(ev.Err, engine.ErrNoSlot):
			return nil, busy("all %d slots are busy (or the cache budget is full) and this server does not queue requests; retry later", s.o.Slots)
		case errors.Is(ev.Err, engine.ErrClosed), s.baseCtx.Err() != nil:
			return nil, errorf(http.StatusServiceUnavailable, TypeUnavailable, "the server is shutting down")
		}
		return nil, errorf(http.StatusServiceUnavailable, TypeUnavailable, "request cancelled while waiting for a slot")
	case <-timeout:
		if isStarted() {
			break
		}
		rn.close()
		return nil, busy("no slot (or room in the cache budget) became free within %s; retry later", s.o.QueueTimeout)
	}
	rn.started = time.Now()
	return rn, nil
}

// close cancels the request if it still runs and waits for the scheduler
// to let it go.
func (rn *run) close() {
	rn.cancel()
	for range rn.events {
	}
}

// tokenOut is one generated token with its probabilities.
type tokenOut struct {
	id      int
	logprob float64
	top     []sample.TokenProb
}

// step is what a request produced since the last step: text safe to
// send, the tokens, and at the end the result.
type step struct {
	slot    int
	text    string
	tokens  []tokenOut
	res     *engine.Result
	timings *engine.Result // the timings so far (timings_per_token), or nil
}

// next waits for the next event. It returns a step holding one token (or
// the final result), or an error when the request failed or the client
// went away.
func (s *Server) next(rn *run) (step, *apiError) {
	var ev engine.Event
	if rn.first != nil {
		ev, rn.first = *rn.first, nil
	} else {
		var ok bool
		if ev, ok = <-rn.events; !ok {
			return step{}, errorf(http.StatusInternalServerError, TypeServer, "the request ended without a result")
		}
	}
	if ev.Err != nil {
		switch {
		case errors.Is(ev.Err, engine.ErrClosed) || s.baseCtx.Err() != nil:
			return step{}, errorf(http.StatusServiceUnavailable, TypeUnavailable, "the server is shutting down; the request was cancelled")
		case rn.ctx.Err() != nil:
			return step{}, errorf(http.StatusServiceUnavailable, TypeUnavailable, "request cancelled")
		case errors.Is(ev.Err, engine.ErrGrammar):
			// The request's grammar hit a limit or a dead end.
			return step{}, badRequest("%v", ev.Err)
		case errors.Is(ev.Err, cachepolicy.ErrBudget):
			// Only after the budget was lowered at run time below what
			// running requests had reserved.
			return step{}, busy("%v", ev.Err)
		}
		return step{}, errorf(http.StatusInternalServerError, TypeServer, "%v", ev.Err)
	}
	if ev.Done != nil {
		if rn.ctx.Err() != nil && ev.Done.StopType == "none" {
			if s.baseCtx.Err() != nil {
				return step{}, errorf(http.StatusServiceUnavailable, TypeUnavailable, "the server is shutting down; the request was cancelled")
			}
			return step{}, errorf(http.StatusServiceUnavailable, TypeUnavailable, "request cancelled")
		}
		res := *ev.Done
		if n := int64(res.PromptTokens + res.PredictedTokens); n > s.nTokensMax.Load() {
			s.nTokensMax.Store(n) // a racy high-water mark is fine for a metric
		}
		return step{text: ev.Text, res: &res}, nil
	}
	return step{slot: ev.SlotID, text: ev.Text, tokens: []tokenOut{{id: ev.Token, logprob: ev.LogProb, top: ev.Top}}, timings: ev.Timings}, nil
}

// collect runs a request to its end (non-streaming).
func (s *Server) collect(rn *run) (text string, toks []tokenOut, res *engine.Result, err *apiError) {
	var sb strings.Builder
	for {
		st, err := s.next(rn)
		if err != nil {
			return "", nil, nil, err
		}
		sb.WriteString(st.text)
		toks = append(toks, st.tokens...)
		if st.res != nil {
			return sb.String(), toks, st.res, nil
		}
	}
}

// finishReason maps a stop type to OpenAI's finish_reason.
func finishReason(res *engine.Result) string {
	switch res.StopType {
	case "eos", "word":
		return "stop"
	}
	return "length"
}

// safeLog makes a log-probability JSON-encodable: -Inf (a token the
// logits rule out) becomes -9999, as OpenAI reports such tokens.
func safeLog(x float64) float64 {
	if math.IsInf(x, 0) || math.IsNaN(x) || x < -9999 {
		return -9999
	}
	return x
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// timings is llama-server's timings object.
func timings(res *engine.Result) map[string]any {
	pms, gms := ms(res.PromptTime), ms(res.PredictTime)
	per := func(t float64, n int) (perTok, perSec float64) {
		if n == 0 || t <= 0 {
			return 0, 0
		}
		return t / float64(n), 1e3 * float64(n) / t
	}
	ppt, pps := per(pms, res.EvaluatedTokens)
	gpt, gps := per(gms, res.PredictedTokens)
	t := map[string]any{
		"cache_n":                res.CachedTokens,
		"prompt_n":               res.EvaluatedTokens,
		"prompt_ms":              pms,
		"prompt_per_token_ms":    ppt,
		"prompt_per_second":      pps,
		"predicted_n":            res.PredictedTokens,
		"predicted_ms":           gms,
		"predicted_per_token_ms": gpt,
		"predicted_per_second":   gps,
	}
	if res.EvictedTokens > 0 { // --cache-evict dropped middle pages
		t["evicted_n"] = res.EvictedTokens
	}
	if res.DraftN > 0 {
		// As llama-server: only when the request speculated.
		t["draft_n"] = res.DraftN
		t["draft_n_accepted"] = res.DraftAccepted
	}
	return t
}

// usage is OpenAI's usage object.
func usage(res *engine.Result) map[string]any {
	return map[string]any{
		"prompt_tokens":     res.PromptTokens,
		"completion_tokens": res.PredictedTokens,
		"total_tokens":      res.PromptTokens + res.PredictedTokens,
		"prompt_tokens_details": map[string]any{
			"cached_tokens": res.CachedTokens,
		},
	}
}

// pieceJSON renders a token's text and bytes for probability reports.
func (s *Server) piece(id int) (string, []int) {
	b := s.eng.Tok.Piece(id, true)
	bs := make([]int, len(b))
	for i, c := range b {
		bs[i] = int(c)
	}
	return string(b), bs
}

// probEntry is one token of llama-server's completion_probabilities and
// of OpenAI chat logprobs.content (the same fields; "id" is
// llama-server's addition).
type probEntry struct {
	ID          int        `json:"id"`
	Token       string     `json:"token"`
	LogProb     float64    `json:"logprob"`
	Bytes       []int      `json:"bytes"`
	TopLogprobs []topEntry `json:"top_logprobs"`
}

type topEntry struct {
	ID      int     `json:"id"`
	Token   string  `json:"token"`
	LogProb float64 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

func (s *Server) probEntries(toks []tokenOut) []probEntry {
	out := make([]probEntry, 0, len(toks))
	for _, t := range toks {
		txt, bs := s.piece(t.id)
		e := probEntry{ID: t.id, Token: txt, LogProb: safeLog(t.logprob), Bytes: bs, TopLogprobs: []topEntry{}}
		for _, tp := range t.top {
			tt, tb := s.piece(tp.ID)
			e.TopLogprobs = append(e.TopLogprobs, topEntry{ID: tp.ID, Token: tt, LogProb: safeLog(tp.LogProb), Bytes: tb})
		}
		out = append(out, e)
	}
	return out
}

// legacyLogprobs is the /v1/completions logprobs object: OpenAI's legacy
// fields (tokens, token_logprobs, top_logprobs as token→logprob maps,
// text_offset within the completion) plus llama-server's "content" list.
func (s *Server) legacyLogprobs(toks []tokenOut, offset int) map[string]any {
	tokens := make([]string, 0, len(toks))
	lps := make([]float64, 0, len(toks))
	tops := make([]map[string]float64, 0, len(toks))
	offs := make([]int, 0, len(toks))
	for _, t := range toks {
		txt, _ := s.piece(t.id)
		tokens = append(tokens, txt)
		lps = append(lps, safeLog(t.logprob))
		m := map[string]float64{}
		for _, tp := range t.top {
			tt, _ := s.piece(tp.ID)
			if _, dup := m[tt]; !dup {
				m[tt] = safeLog(tp.LogProb)
			}
		}
		tops = append(tops, m)
		offs = append(offs, offset)
		offset += len(txt)
	}
	return map[string]any{
		"tokens": tokens, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offs,
		"content": s.probEntries(toks),
	}
}

func tokenIDs(toks []tokenOut) []int {
	ids := make([]int, len(toks))
	for i, t := range toks {
		ids[i] = t.id
	}
	return ids
}

// validUTF8OrBytes returns a piece as a string when it is valid UTF-8,
// else as its bytes (as llama-server's /tokenize with_pieces does).
func validUTF8OrBytes(b []byte) any {
	if utf8.Valid(b) {
		return string(b)
	}
	bs := make([]int, len(b))
	for i, c := range b {
		bs[i] = int(c)
	}
	return bs
}
