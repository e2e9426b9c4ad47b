package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/tensor"
)

// MetricsPrefix prefixes every metric name (llama-server uses
// "llamacpp:").
const MetricsPrefix = "kvserve:"

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
	budgetRejections                                         *prometheus.Desc
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
		cacheCapacity:    d("kv_cache_capacity_bytes", "KV cache bytes if every slot filled its context at the current per-layer types, by element type.", "type"),
		cacheUsage:       d("kv_cache_usage_ratio", "KV cache usage: cached token positions over slots × slot context."),
		cacheTokens:      d("kv_cache_tokens", "Token positions held in the KV cache (all slots)."),
		slots:            d("slots_total", "Number of slots."),

		requantize:        d("cache_requantize_total", "Live cache requantizations run."),
		requantizeSeconds: d("cache_requantize_seconds_total", "Time spent requantizing the cache, in seconds."),
		demotions:         d("cache_policy_conversions_total", "Cache pages converted by the precision policy, by rule.", "reason"),
		policyFreed:       d("cache_policy_bytes_freed_total", "Cache bytes freed by the precision policy."),
		budgetRejections:  d("cache_budget_rejections_total", "Requests refused because they could not fit the cache budget."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.promptTokens, c.promptSeconds, c.predicted, c.predictedSeconds,
		c.promptRate, c.predictedRate, c.processing, c.deferred, c.waiting, c.requests, c.decodes, c.tokensMax,
		c.cacheBytes, c.cacheCapacity, c.cacheUsage, c.cacheTokens, c.slots,
		c.requantize, c.requantizeSeconds, c.demotions, c.policyFreed, c.budgetRejections} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	sched := s.Scheduler()
	if sched == nil {
		return
	}
	// Cache state, read between scheduler steps.
	var used map[tensor.Type]int64
	capacity := map[tensor.Type]int64{}
	var tokens, positions int64
	err := sched.Do(func(kc *kvcache.Cache) error {
		cfg := kc.Config()
		used = kc.BytesByType()
		rowK, rowV := cfg.KVHeads*cfg.HeadDimK, cfg.KVHeads*cfg.HeadDimV
		pagesPerSeq := int64((cfg.Ctx + cfg.PageTokens - 1) / cfg.PageTokens)
		for l := 0; l < cfg.Layers; l++ {
			capacity[cfg.TypeK[l]] += int64(cfg.TypeK[l].RowSize(rowK)*cfg.PageTokens) * pagesPerSeq * int64(cfg.Seqs)
			capacity[cfg.TypeV[l]] += int64(cfg.TypeV[l].RowSize(rowV)*cfg.PageTokens) * pagesPerSeq * int64(cfg.Seqs)
		}
		for seq := 0; seq < cfg.Seqs; seq++ {
			tokens += int64(kc.Len(seq))
		}
		positions = int64(cfg.Seqs) * int64(cfg.Ctx)
		return nil
	})
	if err != nil {
		return
	}
	// After Do (whose loop iteration refreshes the scheduler's slot
	// accounting), the counters.
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
	m(c.requantize, prometheus.CounterValue, float64(st.Requantizations))
	m(c.requantizeSeconds, prometheus.CounterValue, st.RequantizeSeconds)
	m(c.demotions, prometheus.CounterValue, float64(st.Policy.ByAge), "age")
	m(c.demotions, prometheus.CounterValue, float64(st.Policy.ByLength), "length")
	m(c.demotions, prometheus.CounterValue, float64(st.Policy.ByBudget), "budget")
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
