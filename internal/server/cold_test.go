package server

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/tensor"
)

// Per-layer cold tiers over HTTP: POST /cache/policy takes cold_k_layers /
// cold_v_layers (bad specs are 400s naming the field; a layer the model
// lacks is refused), GET shows them; old pages reach each layer's own cold
// type; /cache/usage counts them at their layer's bottom tier; /metrics'
// floor bytes and the capacity estimate (num_gpu_blocks: pages the budget
// holds with every layer at its own bottom) count each layer's cold type.
func TestColdLayersServer(t *testing.T) {
	co := engine.DefaultCacheOptions()
	co.PageTokens = 16
	s, ts := newTestServer(t, Options{Slots: 1, Cache: co, Metrics: true})
	nLayer := s.eng.Model.NLayer
	for _, c := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"hot": 16, "cold_k_layers": "0:q9_0"}, "cold_k_layers"},
		{map[string]any{"hot": 16, "cold_v_layers": "0-2:cb3,2:cb4"}, "named twice"},
		{map[string]any{"hot": 16, "cold_v_layers": fmt.Sprintf("%d:cb3", nLayer)}, "does not exist"},
		{map[string]any{"hot": 16, "cold_k_layers": "0:f32"}, "more bits than the top"},
		{map[string]any{"cold_k_layers": "0:cb3"}, "no rule on"},
	} {
		st, b := post(t, ts.URL+"/cache/policy", c.body)
		if msg := wantError(t, "policy", st, b, http.StatusBadRequest, "invalid_request_error"); !strings.Contains(msg, c.want) {
			t.Errorf("%v: %q lacks %q", c.body, msg, c.want)
		}
	}
	coldK := fmt.Sprintf("0:cb3,1-%d:q5_0", nLayer-1)
	coldV := "1:q8_0"
	const budget = 8 << 20
	p := postOK(t, ts.URL+"/cache/policy", map[string]any{"hot": 16, "warm": 0, "budget": budget,
		"ladder_k": []string{"f16", "q8_0", "cb4"}, "ladder_v": []string{"f16", "q8_0", "cb4"},
		"cold_k_layers": coldK, "cold_v_layers": coldV})
	if p["cold_k_layers"] != coldK || p["cold_v_layers"] != coldV {
		t.Fatalf("policy after POST: %v", p)
	}
	pol := s.sched.Policy()
	fill(t, ts.URL, 0, strings.Repeat("Each layer has its own coldest type. ", 12), 8)

	// Pages older than hot are at their layer's own bottom, and the usage
	// counts them at that ladder's bottom tier (2 for cb3 under
	// f16,q8_0,cb4 → f16,q8_0,cb3; 1 for V layer 1's q8_0).
	u := obj(t, must(get(t, ts.URL+"/cache/usage")))
	layers := u["slots"].([]any)[0].(map[string]any)["layers"].([]any)
	for l, x := range layers {
		lu := x.(map[string]any)
		for _, side := range []string{"k", "v"} {
			su := lu[side].(map[string]any)
			bottom, _ := pol.Bottom(l, side == "v")
			tier := len(pol.Ladder(l, side == "v")) - 1
			byType, byTier := su["pages_by_type"].(map[string]any), su["pages_by_tier"].(map[string]any)
			if num(byType[bottom.String()]) == 0 || num(byTier[fmt.Sprint(tier)]) != num(byType[bottom.String()]) {
				t.Errorf("layer %d %s: pages by type %v, by tier %v; want the cold pages (%s) at tier %d", l, side, byType, byTier, bottom, tier)
			}
		}
	}

	// Metrics: floor and capacity count each layer's own bottom.
	m := scrape(t, ts.URL)
	var floor, perPage, uniformPage int64
	var ctxPages int64
	s.sched.Do(func(kc *kvcache.Cache) error {
		cfg := kc.Config()
		ctxPages = int64((cfg.Ctx + cfg.PageTokens - 1) / cfg.PageTokens * cfg.Seqs)
		for l := 0; l < cfg.Layers; l++ {
			bk, _ := pol.Bottom(l, false)
			bv, _ := pol.Bottom(l, true)
			perPage += int64(cfg.PageBytes(bk, false) + cfg.PageBytes(bv, true))
			uniformPage += int64(cfg.PageBytes(tensor.CB4, false) + cfg.PageBytes(tensor.CB4, true))
			for i := 0; i < kc.NumPages(0, l); i++ {
				for _, v := range []bool{false, true} {
					cur, _, _ := kc.Page(kvcache.PageRef{Seq: 0, Layer: l, V: v, Index: i})
					b, _ := pol.Bottom(l, v)
					if b.BitsPerValue() > cur.BitsPerValue() {
						b = cur
					}
					floor += int64(cfg.PageBytes(b, v))
				}
			}
		}
		return nil
	})
	if got := m["kvserve:kv_cache_floor_bytes"]; got != float64(floor) {
		t.Errorf("floor bytes %v, want %d (each layer at its own bottom)", got, floor)
	}
	if pol.MinBytes(schedCache(t, s), 16) != perPage || perPage == uniformPage {
		t.Fatalf("MinBytes per page %d, per-layer bottoms %d (uniform cb4 %d)", pol.MinBytes(schedCache(t, s), 16), perPage, uniformPage)
	}
	info := fmt.Sprintf(`kvserve:cache_config_info{block_size="16",num_gpu_blocks="%d"}`, min(ctxPages, budget/perPage))
	if m[info] != 1 {
		t.Errorf("no %s (the capacity at each layer's bottom) in the metrics", info)
	}
}

// schedCache returns the scheduler's cache (read between steps).
func schedCache(t *testing.T, s *Server) *kvcache.Cache {
	var c *kvcache.Cache
	s.sched.Do(func(kc *kvcache.Cache) error { c = kc; return nil })
	return c
}
