package server

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/tensor"
)

// MetricsPrefix prefixes kvserve's own metric names.
const MetricsPrefix = "kvserve:"

// LlamaCppPrefix prefixes the series llama-server exports, under the names
// and types it gives them, so dashboards and autoscalers written for
// llama-server read kvserve unchanged; kvserve's own series (MetricsPrefix)
// stand beside them.
const LlamaCppPrefix = "llamacpp:"

// collector exports the scheduler's counters and the cache's state at
// scrape time.
type collector struct {
	s *Server

	promptTokens, promptSeconds, predicted, predictedSeconds *prometheus.Desc
	promptRate, predictedRate                                *prometheus.Desc
	processing, deferred, waiting, requests                  *prometheus.Desc
	decodes, tokensMax                                       *prometheus.Desc
	cacheBytes, cacheCapacity, cacheUsage, cacheTokens       *prometheus.Desc
	slots                                                    *prometheus.Desc
	requantize, requantizeSeconds, demotions, policyFreed    *prometheus.Desc
	budgetRejections, cacheRoleBytes, reasoningDropped       *prometheus.Desc
	evictedTokens                                            *prometheus.Desc
	draftTokens, draftAccepted, draftCacheBytes              *prometheus.Desc
	sharedBytes, diskBytes, diskEvents                       *prometheus.Desc
	ramBytes                                                 *prometheus.Desc

	mu      sync.Mutex
	snap    *cacheSnapshot // the last between-steps reading (nil: none yet)
	pending chan struct{}  // closed when the reading in flight is stored (nil: none)

	// The model server protocol of the Gateway API Inference Extension
	// (what its endpoint picker scrapes), and what a step down would free.
	mspWaiting, mspRunning, utilization, limit, configInfo *prometheus.Desc
	stepDown, floor                                        *prometheus.Desc

	// Hybrid models' recurrent state (f32, beside the KV pages).
	stateBytes, stateSlot *prometheus.Desc
	queryStatBytes        *prometheus.Desc

	llama llamaDescs // llama-server's series
}

// llamaDescs are llama-server's /metrics series (llamacpp:...).
type llamaDescs struct {
	promptTokens, promptSeconds, predicted, predictedSeconds *prometheus.Desc
	decodes, tokensMax, busyPerDecode                        *prometheus.Desc
	promptRate, predictedRate, processing, deferred          *prometheus.Desc
	cacheUsage, cacheTokens                                  *prometheus.Desc
}

func newLlamaDescs() llamaDescs {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(LlamaCppPrefix+name, help, nil, nil)
	}
	return llamaDescs{
		promptTokens:     d("prompt_tokens_total", "Number of prompt tokens processed."),
		promptSeconds:    d("prompt_seconds_total", "Prompt process time"),
		predicted:        d("tokens_predicted_total", "Number of generation tokens processed."),
		predictedSeconds: d("tokens_predicted_seconds_total", "Predict process time"),
		decodes:          d("n_decode_total", "Total number of llama_decode() calls"),
		tokensMax:        d("n_tokens_max", "Largest observed n_tokens."),
		busyPerDecode:    d("n_busy_slots_per_decode", "Average number of busy slots per llama_decode() call"),
		promptRate:       d("prompt_tokens_seconds", "Average prompt throughput in tokens/s."),
		predictedRate:    d("predicted_tokens_seconds", "Average generation throughput in tokens/s."),
		processing:       d("requests_processing", "Number of requests processing."),
		deferred:         d("requests_deferred", "Number of requests deferred."),
		cacheUsage:       d("kv_cache_usage_ratio", "KV-cache usage. 1 means 100 percent usage."),
		cacheTokens:      d("kv_cache_tokens", "KV-cache tokens."),
	}
}

func (l *llamaDescs) all() []*prometheus.Desc {
	return []*prometheus.Desc{l.promptTokens, l.promptSeconds, l.predicted, l.predictedSeconds, l.decodes,
		l.tokensMax, l.busyPerDecode, l.promptRate, l.predictedRate, l.processing, l.deferred, l.cacheUsage, l.cacheTokens}
}

func newCollector(s *Server) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(MetricsPrefix+name, help, labels, nil)
	}
	return &collector{
		s:                s,
		promptTokens:     d("prompt_tokens_total", "Number of prompt tokens processed."),
		promptSeconds:    d("prompt_seconds_total", "Prompt process time in seconds."),
		predicted:        d("tokens_predicted_total", "Number of generation tokens processed."),
		predictedSeconds: d("tokens_predicted_seconds_total", "Predict process time in seconds."),
		promptRate:       d("prompt_tokens_seconds", "Average prompt throughput in tokens/s."),
		predictedRate:    d("predicted_tokens_seconds", "Average generation throughput in tokens/s."),
		processing:       d("requests_processing", "Number of requests processing."),
		deferred:         d("requests_deferred", "Number of requests deferred (waiting for a slot)."),
		waiting:          d("requests_waiting", "Number of completion requests submitted and waiting for a slot (or room in the cache budget)."),
		requests:         d("requests_total", "Number of requests started in a slot."),
		decodes:          d("n_decode_total", "Total number of forward passes (llama_decode() calls)."),
		tokensMax:        d("n_tokens_max", "High watermark of the tokens (prompt + generated) of one request."),
		cacheBytes:       d("kv_cache_bytes", "KV cache bytes in use (allocated pages), by element type.", "type"),
		cacheCapacity:    d("kv_cache_capacity_bytes", "KV cache bytes if every slot filled its context at its current write types (per slot, layer and K/V), by element type.", "type"),
		cacheUsage:       d("kv_cache_usage_ratio", "KV cache usage: cached token positions over slots × slot context."),
		cacheTokens:      d("kv_cache_tokens", "Token positions held in the KV cache (all slots)."),
		slots:            d("slots_total", "Number of slots."),
		draftTokens:      d("draft_tokens_total", "Speculative decoding: tokens drafted (prompt lookup or the draft model)."),
		draftAccepted:    d("draft_tokens_accepted_total", "Speculative decoding: drafted tokens accepted."),
		draftCacheBytes:  d("kv_cache_draft_bytes", "The draft model's KV cache bytes in use (allocated pages)."),

		requantize:        d("cache_requantize_total", "Live cache requantizations run."),
		requantizeSeconds: d("cache_requantize_seconds_total", "Time spent requantizing the cache, in seconds."),
		demotions:         d("cache_policy_conversions_total", "Cache pages converted by the precision policy, by rule.", "reason"),
		policyFreed:       d("cache_policy_bytes_freed_total", "Cache bytes freed by the precision policy."),
		budgetRejections:  d("cache_budget_rejections_total", "Requests refused because they could not fit the cache budget."),
		cacheRoleBytes:    d("kv_cache_role_bytes", "KV cache bytes in use by the role of the tokens a page holds (prompt, generated, reasoning; mixed: a page holding several).", "role"),
		diskBytes:         d("kv_cache_disk_bytes", "Bytes of the cache's disk tier files (--cache-disk)."),
		diskEvents:        d("kv_cache_disk_total", "Disk tier events: spills (entries written), hits (entries loaded), ram_hits (of those, from the RAM tier), prefetched (entries read into RAM ahead of a request), misses (prompts no entry helped), skipped (corrupt, truncated or foreign files), evicted, failed (spills not written).", "event"),
		ramBytes:          d("kv_cache_ram_bytes", "Bytes of idle cache entries held by the RAM tier (--cache-ram)."),
		sharedBytes:       d("kv_cache_shared_bytes", "KV cache bytes in pages several slots hold (shared prompt prefixes), each counted once (they are in kv_cache_bytes once)."),
		reasoningDropped:  d("cache_reasoning_dropped_tokens_total", "Reasoning tokens the precision policy dropped from slots' caches when their requests ended."),
		evictedTokens:     d("cache_evicted_tokens_total", "Tokens evicted from the middle of running requests' caches as the cache budget's last step (--cache-evict)."),

		mspWaiting:     d("num_requests_waiting", "Requests queued: waiting for a slot or in the scheduler's queue (the model server protocol's TotalQueuedRequests)."),
		mspRunning:     d("num_requests_running", "Requests running in a slot (the model server protocol's TotalRunningRequests)."),
		utilization:    d("kv_cache_utilization", "KV cache utilization in [0, 1]: cache bytes in use over kv_cache_limit_bytes (the model server protocol's KVCacheUtilization)."),
		limit:          d("kv_cache_limit_bytes", "The bytes kv_cache_utilization is measured against: the cache budget (limit=\"budget\") when one is set, else every slot's full context at the current write types (limit=\"capacity\").", "limit"),
		configInfo:     d("cache_config_info", "Cache configuration for prefix-cache-aware routing (value 1): block_size is the page size in tokens, num_gpu_blocks the pages (all layers) the cache can hold.", "block_size", "num_gpu_blocks"),
		stepDown:       d("kv_cache_step_down_bytes", "Cache bytes that converting every held page one step down its precision ladder would free now."),
		stateBytes:     d("kv_cache_state_bytes", "Hybrid models: recurrent-layer state bytes held (f32, not in kv_cache_bytes): every slot's live state (kind=\"live\") and its checkpoints (kind=\"checkpoints\").", "kind"),
		stateSlot:      d("kv_cache_state_bytes_per_slot", "Hybrid models: one slot's recurrent-layer state, by kind: convolution (\"conv\") and delta-rule (\"ssm\") state.", "kind"),
		queryStatBytes: d("kv_cache_query_stat_bytes", "--cache-key-encode query: bytes of the query statistics held (f32, KV heads × head dim² per slot and attention layer; not in kv_cache_bytes), by slot.", "slot"),
		floor:          d("kv_cache_floor_bytes", "Cache bytes the held pages would take with every page at the bottom of its precision ladder."),

		llama: newLlamaDescs(),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.promptTokens, c.promptSeconds, c.predicted, c.predictedSeconds,
		c.promptRate, c.predictedRate, c.processing, c.deferred, c.waiting, c.requests, c.decodes, c.tokensMax,
		c.cacheBytes, c.cacheCapacity, c.cacheUsage, c.cacheTokens, c.slots,
		c.requantize, c.requantizeSeconds, c.demotions, c.policyFreed, c.budgetRejections, c.cacheRoleBytes, c.reasoningDropped, c.evictedTokens,
		c.draftTokens, c.draftAccepted, c.draftCacheBytes, c.sharedBytes, c.diskBytes, c.diskEvents, c.ramBytes,
		c.mspWaiting, c.mspRunning, c.utilization, c.limit, c.configInfo, c.stepDown, c.floor, c.stateBytes, c.stateSlot, c.queryStatBytes} {
		ch <- d
	}
	for _, d := range c.llama.all() {
		ch <- d
	}
}

// cacheSnapshot is what a scrape reads between scheduler steps.
type cacheSnapshot struct {
	kc                *kvcache.Cache
	capacity          map[tensor.Type]int64 // full context of every slot at its write types, by type
	fullBytes         int64                 // full context of every slot at its write types (Cache.Capacity)
	tokens, positions int64
	room              cacheRoom
	byRole            map[string]int64 // bytes by the roles of a page's tokens
	sharedBytes       int64            // bytes of pages several slots hold

	hybrid                            bool // recurrent state (below)
	stateLive, stateCkpt              int64
	stateConvPerSlot, stateSSMPerSlot int64
	queryStat                         []int64 // per slot (nil: --cache-key-encode mse)
}

// metricsStepWait bounds how long a scrape waits for the scheduler to
// reach a step boundary (a prompt step of a large model on a CPU can take
// seconds; the endpoint picker gives a scrape 1 s). Past it the scrape
// answers with the last between-steps reading for the figures that need
// one (capacity, tokens, step-down and floor bytes); the bytes in use, and
// so the utilization, are always read fresh.
const metricsStepWait = 250 * time.Millisecond

// refresh starts a between-steps reading of the cache unless one is in
// flight, and returns a channel closed when that reading is stored.
func (c *collector) refresh(sched *engine.Scheduler) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending != nil {
		return c.pending
	}
	done := make(chan struct{})
	c.pending = done
	go func() {
		pol := sched.Policy()
		var snap cacheSnapshot
		err := sched.Do(func(kc *kvcache.Cache) error {
			snap = measureSnapshot(kc, pol)
			return nil
		})
		c.mu.Lock()
		if err == nil {
			c.snap = &snap
		}
		c.pending = nil
		c.mu.Unlock()
		close(done)
	}()
	return done
}

// measureSnapshot reads the cache between two scheduler steps.
func measureSnapshot(kc *kvcache.Cache, pol *cachepolicy.Policy) cacheSnapshot {
	snap := cacheSnapshot{kc: kc, capacity: kc.CapacityByType(), fullBytes: kc.Capacity(), room: measureRoom(kc, pol)}
	cfg := kc.Config()
	snap.byRole = map[string]int64{}
	for seq := 0; seq < cfg.Seqs; seq++ {
		snap.tokens += int64(kc.Len(seq))
		for _, p := range kc.Pages(seq) {
			if p.Holders == 1 || kc.Canonical(p.Ref(seq)).Seq == seq { // a shared page once
				snap.byRole[p.Roles.Label()] += int64(p.Bytes)
			}
		}
	}
	snap.positions = int64(cfg.Seqs) * int64(cfg.Ctx)
	snap.sharedBytes, _ = kc.SharedBytes()
	if cfg.KeyQuery {
		for seq := 0; seq < cfg.Seqs; seq++ {
			snap.queryStat = append(snap.queryStat, kc.SeqQueryStatBytes(seq))
		}
	}
	if kc.Hybrid() {
		snap.hybrid = true
		snap.stateLive = kc.StateBytesPerSeq() * int64(cfg.Seqs)
		snap.stateCkpt = kc.StateBytes() - snap.stateLive
		snap.stateConvPerSlot, snap.stateSSMPerSlot = kc.ConvStateBytesPerSeq(), kc.SSMStateBytesPerSeq()
	}
	return snap
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	sched := s.Scheduler()
	if sched == nil {
		return
	}
	// Cache state: a between-steps reading, waited for (at most
	// metricsStepWait once there is an earlier one to fall back on).
	done := c.refresh(sched)
	c.mu.Lock()
	first := c.snap == nil
	c.mu.Unlock()
	if first {
		<-done
	} else {
		t := time.NewTimer(metricsStepWait)
		select {
		case <-done:
		case <-t.C:
		}
		t.Stop()
	}
	c.mu.Lock()
	snap := c.snap
	c.mu.Unlock()
	if snap == nil {
		return // the scheduler is closed
	}
	// The bytes in use are read now (the cache's accounting has its own
	// lock), so the utilization a router reads is never a step behind.
	used := snap.kc.BytesByType()
	room := snap.room
	room.bytes = 0
	for _, b := range used {
		room.bytes += b
	}
	room.limit, room.limitKind = snap.fullBytes, "capacity"
	if pol := sched.Policy(); pol != nil && pol.Budget > 0 {
		room.limit, room.limitKind = pol.Budget, "budget"
	}
	capacity, tokens, positions := snap.capacity, snap.tokens, snap.positions
	// After the reading (whose loop iteration refreshes the scheduler's
	// slot accounting), the counters.
	st := sched.Stats()
	waiting := float64(s.waiting.Load())
	m := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, t, v, labels...)
	}
	rate := func(n int64, sec float64) float64 {
		if sec <= 0 {
			return 0
		}
		return float64(n) / sec
	}
	m(c.promptTokens, prometheus.CounterValue, float64(st.PromptTokens))
	m(c.promptSeconds, prometheus.CounterValue, st.PromptSeconds)
	m(c.predicted, prometheus.CounterValue, float64(st.PredictedTokens))
	m(c.predictedSeconds, prometheus.CounterValue, st.PredictSeconds)
	m(c.promptRate, prometheus.GaugeValue, rate(st.PromptTokens, st.PromptSeconds))
	m(c.predictedRate, prometheus.GaugeValue, rate(st.PredictedTokens, st.PredictSeconds))
	m(c.processing, prometheus.GaugeValue, float64(st.Processing))
	m(c.deferred, prometheus.GaugeValue, float64(st.Deferred))
	m(c.waiting, prometheus.GaugeValue, waiting)
	m(c.requests, prometheus.CounterValue, float64(st.Requests))
	m(c.decodes, prometheus.CounterValue, float64(st.DecodeCalls))
	m(c.tokensMax, prometheus.CounterValue, float64(s.nTokensMax.Load()))
	m(c.slots, prometheus.GaugeValue, float64(s.o.Slots))
	if s.sched.Speculative() != nil {
		m(c.draftTokens, prometheus.CounterValue, float64(st.DraftTokens))
		m(c.draftAccepted, prometheus.CounterValue, float64(st.DraftAccepted))
		if dc := s.sched.DraftCache(); dc != nil {
			m(c.draftCacheBytes, prometheus.GaugeValue, float64(dc.Bytes()))
		}
	}
	m(c.requantize, prometheus.CounterValue, float64(st.Requantizations))
	m(c.requantizeSeconds, prometheus.CounterValue, st.RequantizeSeconds)
	m(c.demotions, prometheus.CounterValue, float64(st.Policy.ByAge), "age")
	m(c.demotions, prometheus.CounterValue, float64(st.Policy.ByLength), "length")
	m(c.demotions, prometheus.CounterValue, float64(st.Policy.ByRole), "role")
	m(c.demotions, prometheus.CounterValue, float64(st.Policy.ByBudget), "budget")
	m(c.reasoningDropped, prometheus.CounterValue, float64(st.Policy.DroppedTokens))
	m(c.evictedTokens, prometheus.CounterValue, float64(st.Policy.EvictedTokens))
	m(c.sharedBytes, prometheus.GaugeValue, float64(snap.sharedBytes))
	for seq, b := range snap.queryStat {
		m(c.queryStatBytes, prometheus.GaugeValue, float64(b), strconv.Itoa(seq))
	}
	if snap.hybrid {
		m(c.stateBytes, prometheus.GaugeValue, float64(snap.stateLive), "live")
		m(c.stateBytes, prometheus.GaugeValue, float64(snap.stateCkpt), "checkpoints")
		m(c.stateSlot, prometheus.GaugeValue, float64(snap.stateConvPerSlot), "conv")
		m(c.stateSlot, prometheus.GaugeValue, float64(snap.stateSSMPerSlot), "ssm")
	}
	if s.disk != nil {
		ds := s.disk.Stats()
		m(c.diskBytes, prometheus.GaugeValue, float64(ds.Bytes))
		m(c.ramBytes, prometheus.GaugeValue, float64(ds.RAMBytes))
		for ev, n := range map[string]int64{"spills": ds.Spills, "hits": ds.Hits, "ram_hits": ds.RAMHits, "prefetched": ds.Prefetched, "misses": ds.Misses, "skipped": ds.Skipped, "evicted": ds.Evicted, "failed": ds.Failed} {
			m(c.diskEvents, prometheus.CounterValue, float64(n), ev)
		}
	}
	for _, role := range []string{"prompt", "generated", "reasoning", "mixed"} {
		m(c.cacheRoleBytes, prometheus.GaugeValue, float64(snap.byRole[role]), role)
	}
	m(c.policyFreed, prometheus.CounterValue, float64(st.Policy.BytesFreed))
	m(c.budgetRejections, prometheus.CounterValue, float64(st.BudgetRejections))

	types := map[tensor.Type]bool{}
	for t := range used {
		types[t] = true
	}
	for t := range capacity {
		types[t] = true
	}
	for t := range types {
		m(c.cacheBytes, prometheus.GaugeValue, float64(used[t]), t.String())
		m(c.cacheCapacity, prometheus.GaugeValue, float64(capacity[t]), t.String())
	}
	ratio := 0.0
	if positions > 0 {
		ratio = float64(tokens) / float64(positions)
	}
	m(c.cacheUsage, prometheus.GaugeValue, ratio)
	m(c.cacheTokens, prometheus.GaugeValue, float64(tokens))

	// llama-server's series, with its types (n_tokens_max and
	// n_busy_slots_per_decode are counters there too).
	l := &c.llama
	busy := 0.0
	if st.DecodeCalls > 0 {
		busy = float64(st.BusySlots) / float64(st.DecodeCalls)
	}
	m(l.promptTokens, prometheus.CounterValue, float64(st.PromptTokens))
	m(l.promptSeconds, prometheus.CounterValue, st.PromptSeconds)
	m(l.predicted, prometheus.CounterValue, float64(st.PredictedTokens))
	m(l.predictedSeconds, prometheus.CounterValue, st.PredictSeconds)
	m(l.decodes, prometheus.CounterValue, float64(st.DecodeCalls))
	m(l.tokensMax, prometheus.CounterValue, float64(s.nTokensMax.Load()))
	m(l.busyPerDecode, prometheus.CounterValue, busy)
	m(l.promptRate, prometheus.GaugeValue, rate(st.PromptTokens, st.PromptSeconds))
	m(l.predictedRate, prometheus.GaugeValue, rate(st.PredictedTokens, st.PredictSeconds))
	m(l.processing, prometheus.GaugeValue, float64(st.Processing))
	m(l.deferred, prometheus.GaugeValue, float64(st.Deferred))
	m(l.cacheUsage, prometheus.GaugeValue, ratio)
	m(l.cacheTokens, prometheus.GaugeValue, float64(tokens))

	// A request waiting in the scheduler's queue is also one the server
	// counts as waiting for its start: the larger, not the sum.
	m(c.mspWaiting, prometheus.GaugeValue, max(float64(st.Deferred), waiting))
	m(c.mspRunning, prometheus.GaugeValue, float64(st.Processing))
	m(c.utilization, prometheus.GaugeValue, room.utilization())
	m(c.limit, prometheus.GaugeValue, float64(room.limit), room.limitKind)
	m(c.configInfo, prometheus.GaugeValue, 1, strconv.Itoa(room.blockSize), strconv.FormatInt(room.blocks, 10))
	m(c.stepDown, prometheus.GaugeValue, float64(room.stepDown))
	m(c.floor, prometheus.GaugeValue, float64(room.floor))
}

// cacheRoom is what a router needs to know about the cache's room, and
// what only kvserve can add: what stepping precision down would free.
type cacheRoom struct {
	bytes     int64  // cache bytes in use
	limit     int64  // what utilization is measured against
	limitKind string // "budget" or "capacity"
	blockSize int    // page size in tokens
	blocks    int64  // pages (a page of tokens across all layers, K and V) the cache can hold
	stepDown  int64  // bytes one step down every page's ladder would free
	floor     int64  // bytes of the held pages at the bottom of their ladders
}

// utilization is bytes over limit, clamped to [0, 1] (the bytes can pass
// a budget lowered at run time until the policy has demoted enough).
func (r cacheRoom) utilization() float64 {
	if r.limit <= 0 {
		return 0
	}
	return min(float64(r.bytes)/float64(r.limit), 1)
}

// measureRoom reads the cache's room under the policy pol (nil: none;
// its ladders are then the default ones). It walks every page's type, so
// call it between scheduler steps (Scheduler.Do).
//
// Utilization is measured against the budget when there is one: it is
// the memory the replica has for its cache, and lower precision (a
// policy's demotions, a requantization) lowers the bytes against it, so a
// replica whose pages step down takes more sessions before it reads as
// full. Without a budget nothing but the slots' contexts bounds the cache,
// so the limit is their full-context size at the current write types
// (kvcache.Cache.Capacity): a requantization then lowers bytes and limit
// together.
func measureRoom(kc *kvcache.Cache, pol *cachepolicy.Policy) cacheRoom {
	cfg := kc.Config()
	r := cacheRoom{bytes: kc.Bytes(), blockSize: cfg.PageTokens, limitKind: "capacity"}
	pagesPerSeq := int64((cfg.Ctx + cfg.PageTokens - 1) / cfg.PageTokens)
	r.blocks = pagesPerSeq * int64(cfg.Seqs)
	if pol != nil && pol.Budget > 0 {
		r.limit, r.limitKind = pol.Budget, "budget"
		// Under a budget, a prefix is held (at worst demoted to the
		// bottom of the ladders: each layer's own, per-layer cold types
		// included) in as many pages as the budget holds at those types.
		if per := pol.MinBytes(kc, cfg.PageTokens); per > 0 {
			r.blocks = min(r.blocks, pol.Budget/per)
		}
	} else {
		r.limit = kc.Capacity()
	}

	dk, dv := cachepolicy.DefaultLadders()
	// ladder is layer l's ladder on side v: the policy's (its cold type,
	// if any, at the bottom), else the default.
	ladder := func(l int, v bool) []tensor.Type {
		if pol != nil {
			if lad := pol.Ladder(l, v); len(lad) > 0 {
				return lad
			}
		}
		if v {
			return dv
		}
		return dk
	}
	type side struct {
		ladder   []tensor.Type
		bottom   tensor.Type // the ladder's fewest bits per value (F32 for an empty ladder: nothing lower)
		rowElems int
	}
	mk := func(ladder []tensor.Type, headDim int) side {
		sd := side{bottom: tensor.F32, rowElems: cfg.KVHeads * headDim}
		for _, t := range ladder {
			if kvcache.CheckType(t, headDim) != nil {
				continue
			}
			sd.ladder = append(sd.ladder, t)
			if t.BitsPerValue() < sd.bottom.BitsPerValue() {
				sd.bottom = t
			}
		}
		return sd
	}
	sides := make([][2]side, cfg.Layers)
	for l := range sides {
		sides[l] = [2]side{mk(ladder(l, false), cfg.HeadDimK), mk(ladder(l, true), cfg.HeadDimV)}
	}
	pageBytes := func(t tensor.Type, v bool) int64 { return int64(cfg.PageBytes(t, v)) }
	for seq := 0; seq < cfg.Seqs; seq++ {
		for l := 0; l < cfg.Layers; l++ {
			n := kc.NumPages(seq, l)
			for vi, sd := range sides[l] {
				for i := 0; i < n; i++ {
					ref := kvcache.PageRef{Seq: seq, Layer: l, V: vi == 1, Index: i}
					t, _, ok := kc.Page(ref)
					if !ok || kc.Canonical(ref) != ref {
						continue // released (sliding window), or a shared page counted at its first holder
					}
					b := pageBytes(t, vi == 1)
					if next, ok := stepBelow(sd.ladder, t); ok {
						r.stepDown += b - pageBytes(next, vi == 1)
					}
					if sd.bottom.BitsPerValue() < t.BitsPerValue() {
						b = pageBytes(sd.bottom, vi == 1)
					}
					r.floor += b
				}
			}
		}
	}
	return r
}

// stepBelow is the ladder's next type below t (fewer bits per value), as
// the policy steps pages down.
func stepBelow(ladder []tensor.Type, t tensor.Type) (tensor.Type, bool) {
	for _, l := range ladder {
		if l.BitsPerValue() < t.BitsPerValue() {
			return l, true
		}
	}
	return 0, false
}

func (s *Server) metricsInit() {
	s.reg.MustRegister(newCollector(s))
}

// handleMetrics serves GET /metrics (501 unless Options.Metrics, as
// llama-server).
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if !s.o.Metrics {
		WriteError(w, errorf(http.StatusNotImplemented, TypeNotSupported, "metrics are disabled: start the server with --metrics"))
		return
	}
	promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}).ServeHTTP(w, r)
}
