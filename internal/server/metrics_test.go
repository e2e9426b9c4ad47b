package server

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/tensor"
)

// scrape reads /metrics into series → value ("name" or "name{labels}" as
// the text format writes them).
func scrape(t testing.TB, url string) map[string]float64 {
	t.Helper()
	st, b := get(t, url+"/metrics")
	if st != 200 {
		t.Fatalf("metrics: %d %s", st, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// sumPrefix adds the values of the series whose name starts with prefix.
func sumPrefix(m map[string]float64, prefix string) float64 {
	s := 0.0
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			s += v
		}
	}
	return s
}

// The model server protocol gauges (queue, running, utilization, cache
// config) follow the server's state while requests stream, and a
// requantization lowers the utilization the router reads; the step-down
// and floor gauges say what lower precision would free.
func TestMetricsModelServerProtocol(t *testing.T) {
	const budget = 4 << 20
	pol := &cachepolicy.Policy{Budget: budget}
	pol.LadderK, pol.LadderV = cachepolicy.DefaultLadders()
	s, ts := newTestServer(t, Options{Slots: 1, Metrics: true, Policy: pol})
	cfg := s.sched.Options()

	m := scrape(t, ts.URL)
	for series, want := range map[string]float64{
		"kvserve:num_requests_waiting": 0, "kvserve:num_requests_running": 0, "kvserve:kv_cache_utilization": 0,
		`kvserve:kv_cache_limit_bytes{limit="budget"}`: budget, "kvserve:kv_cache_step_down_bytes": 0, "kvserve:kv_cache_floor_bytes": 0,
	} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("idle: %s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	// block_size is the page size; num_gpu_blocks the pages the budget
	// holds at the bottom of the ladders (fewer than the slot's context).
	var minPage int64
	s.sched.Do(func(kc *kvcache.Cache) error { minPage = pol.MinBytes(kc, kc.Config().PageTokens); return nil })
	blocks := min(int64((cfg.SlotCtx+255)/256), budget/minPage)
	info := fmt.Sprintf(`kvserve:cache_config_info{block_size="256",num_gpu_blocks="%d"}`, blocks)
	if m[info] != 1 {
		t.Errorf("no %s in %v", info, m)
	}

	// One request streams (its reader does not read, so the slot pauses
	// with its cache held): running 1, utilization = bytes / budget.
	_, cancel, _ := startStream(t, ts.URL+"/completion", map[string]any{
		"prompt": strings.Repeat("The cat sat on the mat. ", 40), "n_predict": 2000, "ignore_eos": true, "stream": true})
	defer cancel()
	// A second one waits for the slot.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if resp, err := http.Post(ts.URL+"/completion", "application/json", strings.NewReader(`{"prompt":"Hello","n_predict":1}`)); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for m = scrape(t, ts.URL); m["kvserve:num_requests_waiting"] != 1; m = scrape(t, ts.URL) {
		if time.Now().After(deadline) {
			t.Fatalf("the second request never shows as waiting: %v", m)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if m["kvserve:num_requests_running"] != 1 || m["kvserve:requests_deferred"] != 1 || m["kvserve:requests_processing"] != 1 {
		t.Errorf("under load: running %v, deferred %v, processing %v; want 1, 1, 1", m["kvserve:num_requests_running"],
			m["kvserve:requests_deferred"], m["kvserve:requests_processing"])
	}
	checkUtil := func(when string, m map[string]float64) float64 {
		t.Helper()
		bytes := sumPrefix(m, "kvserve:kv_cache_bytes{")
		u := m["kvserve:kv_cache_utilization"]
		if bytes <= 0 || math.Abs(u-bytes/budget) > 1e-12 || u > 1 {
			t.Errorf("%s: utilization %v, cache bytes %v, budget %v", when, u, bytes, float64(budget))
		}
		return bytes
	}
	// The default cache is f16: one step down (to q8_0) frees 7.5 of
	// every 16 bits; at the bottom (K q5_0, V q4_0) K pages take 5.5 and V
	// pages 4.5 bits per value.
	var before map[string]float64
	var bytesBefore float64
	for range 100 { // the slot may still be adding its last page
		before = scrape(t, ts.URL)
		bytesBefore = checkUtil("before", before)
		if before["kvserve:kv_cache_bytes{type=\"f16\"}"] == bytesBefore {
			break
		}
	}
	if got, want := before["kvserve:kv_cache_step_down_bytes"], bytesBefore*7.5/16; got != want {
		t.Errorf("step down frees %v, want %v", got, want)
	}
	if got, want := before["kvserve:kv_cache_floor_bytes"], bytesBefore/2*(5.5+4.5)/16; got != want {
		t.Errorf("floor %v, want %v", got, want)
	}

	// A requantization to q4_0 lowers the utilization the router reads.
	postOK(t, ts.URL+"/cache/requantize", map[string]any{"type_k": "q4_0", "type_v": "q4_0"})
	after := scrape(t, ts.URL)
	bytesAfter := checkUtil("after", after)
	if bytesAfter >= bytesBefore/2 {
		t.Errorf("after requantize to q4_0: %v bytes, before %v", bytesAfter, bytesBefore)
	}
	if after["kvserve:kv_cache_utilization"] >= before["kvserve:kv_cache_utilization"]/2 {
		t.Errorf("utilization %v after requantize, %v before", after["kvserve:kv_cache_utilization"], before["kvserve:kv_cache_utilization"])
	}
	// q4_0 is at (V) or below (K) the bottom of the ladders.
	if after["kvserve:kv_cache_step_down_bytes"] != 0 || after["kvserve:kv_cache_floor_bytes"] != bytesAfter {
		t.Errorf("after requantize: step down %v, floor %v, bytes %v", after["kvserve:kv_cache_step_down_bytes"],
			after["kvserve:kv_cache_floor_bytes"], bytesAfter)
	}
	cancel()
	wg.Wait()
	waitIdle(t, s)
	m = scrape(t, ts.URL)
	if m["kvserve:num_requests_waiting"] != 0 || m["kvserve:num_requests_running"] != 0 {
		t.Errorf("after the requests: waiting %v, running %v", m["kvserve:num_requests_waiting"], m["kvserve:num_requests_running"])
	}
}

// measureRoom's figures on a cache of known shape: utilization against
// the budget or the full-context capacity, blocks, and what stepping down
// would free, page by page.
func TestMeasureRoom(t *testing.T) {
	const layers, heads, dim, seqs, ctx, P = 2, 1, 32, 2, 512, 32
	kc, err := kvcache.New(kvcache.Config{Layers: layers, KVHeads: heads, HeadDimK: dim, HeadDimV: dim, Seqs: seqs, Ctx: ctx,
		PageTokens: P, TypeK: []tensor.Type{tensor.F16, tensor.Q8_0}, TypeV: []tensor.Type{tensor.F16, tensor.F16}})
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	row := make([]float32, heads*dim)
	for pos := 0; pos < 40; pos++ { // two pages per layer and side in slot 0
		for l := 0; l < layers; l++ {
			kc.Store(l, 0, pos, row, row)
		}
	}
	page := func(t tensor.Type) int64 { return int64(t.RowSize(heads*dim) * P) }
	// Layer 0: K f16, V f16; layer 1: K q8_0, V f16; two pages each.
	bytes := 2 * (3*page(tensor.F16) + page(tensor.Q8_0))
	if kc.Bytes() != bytes {
		t.Fatalf("cache holds %d bytes, want %d", kc.Bytes(), bytes)
	}

	// No policy: the default ladders (K f16,q8_0,q5_0; V f16,q8_0,q4_0),
	// utilization against the full-context capacity.
	r := measureRoom(kc, nil)
	if r.limitKind != "capacity" || r.limit != kc.Capacity() || r.bytes != bytes || r.blockSize != P || r.blocks != seqs*ctx/P {
		t.Errorf("no policy: %+v (capacity %d)", r, kc.Capacity())
	}
	if got, want := r.utilization(), float64(bytes)/float64(kc.Capacity()); got != want {
		t.Errorf("utilization %v, want %v", got, want)
	}
	wantStep := 2 * (3*(page(tensor.F16)-page(tensor.Q8_0)) + page(tensor.Q8_0) - page(tensor.Q5_0))
	wantFloor := 2 * (2*page(tensor.Q5_0) + 2*page(tensor.Q4_0))
	if r.stepDown != wantStep || r.floor != wantFloor {
		t.Errorf("step down %d floor %d, want %d %d", r.stepDown, r.floor, wantStep, wantFloor)
	}

	// A budget with its own ladders: utilization against it; blocks are
	// the pages it holds at the bottom types (K q4_0, V f16, both layers).
	pol := &cachepolicy.Policy{Budget: 10000, LadderK: []tensor.Type{tensor.F16, tensor.Q4_0}, LadderV: []tensor.Type{tensor.F16}}
	r = measureRoom(kc, pol)
	if r.limitKind != "budget" || r.limit != 10000 || r.blocks != 10000/(layers*(page(tensor.Q4_0)+page(tensor.F16))) {
		t.Errorf("budget: %+v", r)
	}
	if got := r.utilization(); got != min(float64(bytes)/10000, 1) {
		t.Errorf("utilization %v", got)
	}
	wantStep = 2 * (page(tensor.F16) - page(tensor.Q4_0) + page(tensor.Q8_0) - page(tensor.Q4_0)) // V's ladder has no step
	wantFloor = 2 * (2*page(tensor.Q4_0) + 2*page(tensor.F16))
	if r.stepDown != wantStep || r.floor != wantFloor {
		t.Errorf("budget ladders: step down %d floor %d, want %d %d", r.stepDown, r.floor, wantStep, wantFloor)
	}
	// A budget below the bytes held (lowered at run time) reads as full.
	pol.Budget = bytes / 2
	if u := measureRoom(kc, pol).utilization(); u != 1 {
		t.Errorf("over budget: utilization %v, want 1", u)
	}
}

// A scrape does not wait for a scheduler step that takes long (a prompt
// step of a large model can take seconds; the endpoint picker gives a
// scrape 1 s): it answers with the last between-steps reading and the
// bytes in use read now.
func TestMetricsDuringLongStep(t *testing.T) {
	s, ts := newTestServer(t, Options{Slots: 1, Metrics: true})
	postOK(t, ts.URL+"/completion", map[string]any{"prompt": "Once upon a time", "n_predict": 4})
	first := scrape(t, ts.URL)

	// Hold the scheduler's loop between two steps, as a long step would.
	running, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- s.sched.Do(func(*kvcache.Cache) error {
			close(running)
			<-release
			return nil
		})
	}()
	<-running
	m := scrape(t, ts.URL) // returns while the loop is held
	select {
	case <-held:
		t.Fatal("the loop was released before the scrape")
	default:
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"kvserve:kv_cache_utilization", "kvserve:kv_cache_tokens", `kvserve:kv_cache_bytes{type="f16"}`,
		"kvserve:kv_cache_step_down_bytes", "kvserve:num_requests_running"} {
		if _, ok := m[k]; !ok || m[k] != first[k] {
			t.Errorf("%s: %v during the long step, %v before", k, m[k], first[k])
		}
	}
}

// Capacity counts each slot at its own write types: with -np 2 and slot 1
// requantized to q4_0, /cache/usage's capacity_bytes, the capacity gauge
// by type and the utilization's limit all say one slot's full context at
// f16 plus one at q4_0 (issue 17: the gauge said both at f16).
func TestCapacityCountsPerSlotTypes(t *testing.T) {
	s, ts := newTestServer(t, Options{Slots: 2, Ctx: 2048, Metrics: true})
	postOK(t, ts.URL+"/cache/requantize", map[string]any{"type_k": "q4_0", "type_v": "q4_0", "slots": []int{1}})
	var cfg kvcache.Config
	s.sched.Do(func(kc *kvcache.Cache) error { cfg = kc.Config(); return nil })
	// Ctx 1024 per slot is whole 256-token pages; kvtest-27m has no window layers.
	slot := func(tt tensor.Type) float64 {
		return float64(cfg.Layers*(tt.RowSize(cfg.KVHeads*cfg.HeadDimK)+tt.RowSize(cfg.KVHeads*cfg.HeadDimV))) * float64(cfg.Ctx)
	}
	f16, q4 := slot(tensor.F16), slot(tensor.Q4_0)
	_, b := get(t, ts.URL+"/cache/usage")
	if got := num(obj(t, b)["capacity_bytes"]); got != f16+q4 {
		t.Errorf("capacity_bytes %v, want %v", got, f16+q4)
	}
	m := scrape(t, ts.URL)
	for series, want := range map[string]float64{
		`kvserve:kv_cache_capacity_bytes{type="f16"}`:    f16,
		`kvserve:kv_cache_capacity_bytes{type="q4_0"}`:   q4,
		`kvserve:kv_cache_limit_bytes{limit="capacity"}`: f16 + q4,
	} {
		if m[series] != want {
			t.Errorf("%s = %v, want %v", series, m[series], want)
		}
	}
}

// /metrics exports llama-server's series under its llamacpp: names (what
// dashboards written for llama-server read), with the same values as
// kvserve's own series beside them.
func TestMetricsLlamaCppNames(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 2, Metrics: true})
	postOK(t, ts.URL+"/completion", map[string]any{"prompt": "Once upon a time", "n_predict": 4, "ignore_eos": true})
	m := scrape(t, ts.URL)
	for _, name := range []string{"prompt_tokens_total", "prompt_seconds_total", "tokens_predicted_total",
		"tokens_predicted_seconds_total", "n_decode_total", "n_tokens_max", "n_busy_slots_per_decode",
		"prompt_tokens_seconds", "predicted_tokens_seconds", "requests_processing", "requests_deferred",
		"kv_cache_usage_ratio", "kv_cache_tokens"} {
		v, ok := m["llamacpp:"+name]
		if !ok {
			t.Errorf("llamacpp:%s missing", name)
			continue
		}
		if own, ok := m["kvserve:"+name]; ok && own != v {
			t.Errorf("llamacpp:%s = %v, kvserve:%s = %v", name, v, name, own)
		}
	}
	if m["llamacpp:tokens_predicted_total"] != 4 || m["llamacpp:n_decode_total"] < 4 {
		t.Errorf("predicted %v, decodes %v; want 4 and at least 4", m["llamacpp:tokens_predicted_total"], m["llamacpp:n_decode_total"])
	}
	if b := m["llamacpp:n_busy_slots_per_decode"]; b != 1 {
		t.Errorf("n_busy_slots_per_decode %v with one request at a time, want 1", b)
	}
}
