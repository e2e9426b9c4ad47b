package server

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
)

// --cache-key-encode query: the query statistics are reported apart from
// the pages, byte for byte (KV heads × head dim² float32s per attention
// layer, per slot that has seen queries) in /cache/usage (query_stat and
// each slot's query_stat_bytes), /props and /metrics, and erasing a slot
// frees its share. With mse there is none.
func TestQueryStatEndpoints(t *testing.T) {
	co := engine.DefaultCacheOptions()
	co.TypeK, co.KeyEncode = "q4_0", "query"
	s, ts := newTestServer(t, Options{Slots: 2, Metrics: true, Cache: co})
	m := s.eng.Model
	per := float64(m.NLayer * m.NHeadKV * m.HeadDim * m.HeadDim * 4)
	prompt := strings.Repeat("The history of the city begins with a small village on the river. ", 4)
	postOK(t, ts.URL+"/completion", map[string]any{"prompt": prompt, "n_predict": 4, "temperature": 0, "id_slot": 0, "cache_prompt": true})

	check := func(when string, slot0 float64) {
		t.Helper()
		u := obj(t, must(get(t, ts.URL+"/cache/usage")))
		qs, ok := u["query_stat"].(map[string]any)
		if !ok {
			t.Fatalf("%s: no query_stat in /cache/usage", when)
		}
		if qs["type"] != "f32" || num(qs["bytes"]) != slot0 || num(qs["bytes_per_slot"]) != per || num(qs["capacity_bytes"]) != 2*per {
			t.Errorf("%s: query_stat %v, want %v bytes held, %v per slot", when, qs, slot0, per)
		}
		slots := u["slots"].([]any)
		if b0, b1 := num(slots[0].(map[string]any)["query_stat_bytes"]), num(slots[1].(map[string]any)["query_stat_bytes"]); b0 != slot0 || b1 != 0 {
			t.Errorf("%s: slots' query_stat_bytes %v and %v, want %v and 0", when, b0, b1, slot0)
		}
		if pages := num(u["total_bytes"]); pages == slot0 && slot0 > 0 {
			t.Errorf("%s: total_bytes %v", when, pages)
		}
		_, mb := get(t, ts.URL+"/metrics")
		if want := fmt.Sprintf(`kv_cache_query_stat_bytes{slot="0"} %g`, slot0); !strings.Contains(string(mb), want) {
			t.Errorf("%s: /metrics lacks %s", when, want)
		}
	}
	check("after a request in slot 0", per)
	p := obj(t, must(get(t, ts.URL+"/props")))
	if qs, ok := p["query_stat"].(map[string]any); !ok || num(qs["bytes_per_slot"]) != per {
		t.Errorf("/props query_stat: %v", p["query_stat"])
	}
	if st, _, b := slotAction(t, ts.URL, 0, "erase", ""); st != 200 {
		t.Fatalf("erase: %d %s", st, b)
	}
	check("after erasing slot 0", 0)

	_, ts2 := newTestServer(t, Options{Slots: 1, Metrics: true, Cache: engine.DefaultCacheOptions()})
	postOK(t, ts2.URL+"/completion", map[string]any{"prompt": prompt, "n_predict": 2, "temperature": 0})
	u := obj(t, must(get(t, ts2.URL+"/cache/usage")))
	if u["query_stat"] != nil || num(u["slots"].([]any)[0].(map[string]any)["query_stat_bytes"]) != 0 {
		t.Errorf("mse: query_stat %v", u["query_stat"])
	}
	if _, mb := get(t, ts2.URL+"/metrics"); strings.Contains(string(mb), "kv_cache_query_stat_bytes{") {
		t.Error("mse: /metrics reports query statistics")
	}
}
