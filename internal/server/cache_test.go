package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/kvcache"
)

// fill runs a greedy completion that leaves its tokens in a slot's cache.
func fill(t *testing.T, url string, slot int, prompt string, n int) {
	t.Helper()
	postOK(t, url+"/completion", map[string]any{"prompt": prompt, "n_predict": n, "temperature": 0, "id_slot": slot, "cache_prompt": true})
}

// GET /cache/usage reports bytes per slot, layer, K/V and type, capacity and
// an estimate per cache type; /cache/requantize converts in place (dry run
// first), /props then shows the new types, and the usage agrees.
func TestCacheUsageAndRequantize(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 2})
	fill(t, ts.URL, 0, strings.Repeat("The cache is a product. ", 20), 40)
	st, b := get(t, ts.URL+"/cache/usage")
	if st != http.StatusOK {
		t.Fatalf("usage: %d %s", st, b)
	}
	u := obj(t, b)
	total := num(u["total_bytes"])
	if total <= 0 || num(u["capacity_bytes"]) < total {
		t.Fatalf("usage totals: %v", u)
	}
	slots := u["slots"].([]any)
	s0 := slots[0].(map[string]any)
	if num(s0["tokens"]) < 40 || num(s0["bytes"]) != total || num(slots[1].(map[string]any)["bytes"]) != 0 {
		t.Fatalf("slot usage: %v", slots)
	}
	l0 := s0["layers"].([]any)[0].(map[string]any)
	if k := l0["k"].(map[string]any); num(k["bytes_by_type"].(map[string]any)["f16"]) != num(k["bytes"]) || k["write_type"] != "f16" {
		t.Fatalf("layer usage: %v", l0)
	}
	ests := u["estimates"].([]any)
	if len(ests) != len(kvcache.Types) {
		t.Fatalf("%d estimates", len(ests))
	}
	for _, e := range ests {
		e := e.(map[string]any)
		if e["type"] == "f16" && num(e["bytes_current_contents"]) != total {
			t.Errorf("f16 estimate %v != total %v", e["bytes_current_contents"], total)
		}
	}

	dry := postOK(t, ts.URL+"/cache/requantize", map[string]any{"type_k": "q8_0", "type_v": "q4_0", "dry_run": true})
	if dry["dry_run"] != true || num(dry["bytes_freed"]) <= 0 || num(dry["pages_converted"]) == 0 {
		t.Fatalf("dry run: %v", dry)
	}
	if u2 := obj(t, must(get(t, ts.URL+"/cache/usage"))); num(u2["total_bytes"]) != total {
		t.Fatalf("dry run changed the cache: %v -> %v", total, u2["total_bytes"])
	}
	real := postOK(t, ts.URL+"/cache/requantize", map[string]any{"type_k": "q8_0", "type_v": "q4_0"})
	for _, k := range []string{"bytes_before", "bytes_after", "bytes_freed", "tokens_converted", "pages_converted"} {
		if real[k] != dry[k] {
			t.Errorf("%s: real %v, dry run said %v", k, real[k], dry[k])
		}
	}
	if _, ok := real["elapsed_ms"]; !ok {
		t.Error("no elapsed_ms")
	}
	layers := real["layers"].([]any)
	if l := layers[3].(map[string]any); l["type_k_before"] != "f16" || l["type_k_after"] != "q8_0" || l["type_v_after"] != "q4_0" {
		t.Errorf("layer report %v", l)
	}
	// (34+18)/(2·64) of f16's bytes.
	if want := num(real["bytes_before"]) * 52 / 128; num(real["bytes_after"]) != want {
		t.Errorf("bytes after %v, want %v", real["bytes_after"], want)
	}
	props := obj(t, must(get(t, ts.URL+"/props")))
	if props["cache_type_k"] != "q8_0" || props["cache_type_v"] != "q4_0" {
		t.Errorf("/props cache types %v / %v", props["cache_type_k"], props["cache_type_v"])
	}
	// The slot still answers from its cache: same prompt, cached tokens reused.
	r := postOK(t, ts.URL+"/completion", map[string]any{"prompt": strings.Repeat("The cache is a product. ", 20), "n_predict": 4, "temperature": 0, "id_slot": 0})
	if cacheN(r) == 0 {
		t.Errorf("requantized prefix not reused: %v", cacheN(r))
	}
	// Per-layer scope.
	part := postOK(t, ts.URL+"/cache/requantize", map[string]any{"type_k": "f16", "layers": "0-1,7"})
	if n := len(part["layers"].([]any)); n != 3 {
		t.Errorf("%d layers reported for 0-1,7", n)
	}
	props = obj(t, must(get(t, ts.URL+"/props")))
	if props["cache_type_k"] != "mixed" {
		t.Errorf("/props after a per-layer change: %v", props["cache_type_k"])
	}
}

func must(_ int, b []byte) []byte { return b }

// Bad requantize requests are 400s that name the problem, and change
// nothing.
func TestRequantizeErrors(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 2})
	fill(t, ts.URL, 0, "Hello there", 8)
	before := num(obj(t, must(get(t, ts.URL+"/cache/usage")))["total_bytes"])
	for _, c := range []struct {
		body any
		want string
	}{
		{"", "empty body"},
		{map[string]any{}, "type_k and/or type_v"},
		{map[string]any{"type_k": "q3_K"}, "unknown cache type"},
		{map[string]any{"type_k": "q4_K"}, "unknown cache type"},
		{map[string]any{"type_v": "q4_0", "layers": "0-9"}, "outside 0-7"},
		{map[string]any{"type_v": "q4_0", "layers": []int{12}}, "out of range"},
		{map[string]any{"type_v": "q4_0", "slots": []int{5}}, "slot 5 out of range"},
		{map[string]any{"type_v": "q4_0", "slots": []int{}}, "empty list"},
		{map[string]any{"type_v": "q4_0", "tpye_k": "f32"}, "unknown field"},
		{`{"type_k": 8}`, "invalid request"},
		{`{"type_k": "q8_0"`, "invalid"},
	} {
		st, b := post(t, ts.URL+"/cache/requantize", c.body)
		msg := wantError(t, "requantize "+strings.ReplaceAll(string(mustJSON(c.body)), "\n", ""), st, b, http.StatusBadRequest, "invalid_request_error")
		if !strings.Contains(msg, c.want) {
			t.Errorf("%v: message %q lacks %q", c.body, msg, c.want)
		}
	}
	if after := num(obj(t, must(get(t, ts.URL+"/cache/usage")))["total_bytes"]); after != before {
		t.Errorf("bad requests changed the cache: %v -> %v", before, after)
	}
}

func mustJSON(v any) []byte {
	if s, ok := v.(string); ok {
		return []byte(s)
	}
	b, _ := json.Marshal(v)
	return b
}

// While streams run, concurrent requantize calls are refused with 409
// (one runs at a time), and every stream completes.
func TestRequantizeConflict(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 4, Ctx: 4 * 2048})
	long := strings.Repeat("Requantization must not disturb a stream. ", 60)
	for i := 0; i < 4; i++ {
		fill(t, ts.URL, i, long+string(rune('A'+i)), 1)
	}
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ { // keep the scheduler busy so conversion is sliced
		wg.Add(1)
		go func() {
			defer wg.Done()
			postOK(t, ts.URL+"/completion", map[string]any{"prompt": "Once upon a time", "n_predict": 400, "temperature": 0, "ignore_eos": true, "id_slot": i})
		}()
	}
	saw409 := false
	for _, to := range []string{"q4_0", "f16", "q8_0", "f16", "q4_0", "f16"} {
		codes := make([]int, 2)
		var cw sync.WaitGroup
		for j := range codes {
			cw.Add(1)
			go func() {
				defer cw.Done()
				codes[j], _ = post(t, ts.URL+"/cache/requantize", map[string]any{"type_k": to, "type_v": to})
			}()
		}
		cw.Wait()
		for _, c := range codes {
			switch c {
			case http.StatusOK:
			case http.StatusConflict:
				saw409 = true
			default:
				t.Errorf("requantize answered %d", c)
			}
		}
		if saw409 {
			break
		}
	}
	wg.Wait()
	if !saw409 {
		t.Error("two concurrent requantize calls never conflicted")
	}
}

// /cache/policy reads and changes the automatic precision policy at run
// time; bad values are 400s.
func TestCachePolicyEndpoint(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 2})
	p := obj(t, must(get(t, ts.URL+"/cache/policy")))
	if p["enabled"] != false {
		t.Fatalf("initial policy %v", p)
	}
	p = postOK(t, ts.URL+"/cache/policy", map[string]any{"hot": 256, "sink": 16, "budget": "64MiB", "ladder_v": []string{"f16", "q8_0", "q4_0"}})
	if p["enabled"] != true || num(p["hot"]) != 256 || num(p["budget_bytes"]) != 64<<20 || p["ladder_k"] == nil {
		t.Fatalf("policy after POST: %v", p)
	}
	if g := obj(t, must(get(t, ts.URL+"/cache/policy"))); num(g["sink"]) != 16 {
		t.Fatalf("GET after POST: %v", g)
	}
	fill(t, ts.URL, 0, "Policies apply between steps", 8)
	for _, c := range []struct {
		body any
		want string
	}{
		{map[string]any{"ladder_k": []string{"q4_0", "f16"}}, "go down in precision"},
		{map[string]any{"ladder_v": []string{"q9"}}, "unknown cache type"},
		{map[string]any{"budget": "lots"}, "bad size"},
		{map[string]any{"budget": -5}, "negative"},
		{map[string]any{"dynamic": "2048"}, "LENGTH:TYPE"},
		{map[string]any{"hot": -1}, "negative"},
		{map[string]any{"hotness": 3}, "unknown field"},
	} {
		st, b := post(t, ts.URL+"/cache/policy", c.body)
		if msg := wantError(t, "policy", st, b, http.StatusBadRequest, "invalid_request_error"); !strings.Contains(msg, c.want) {
			t.Errorf("%v: %q lacks %q", c.body, msg, c.want)
		}
	}
	p = postOK(t, ts.URL+"/cache/policy", map[string]any{"enabled": false})
	if p["enabled"] != false {
		t.Errorf("policy not removed: %v", p)
	}
}

// Rules by role through /cache/policy: prompt pages at q8_0, generated at
// f16; /cache/usage and /metrics report bytes by role; invalid role rules
// are 400s naming the field, and the live policy stays as it was.
func TestPolicyRoleRules(t *testing.T) {
	co := engine.DefaultCacheOptions()
	co.PageTokens = 16
	_, ts := newTestServer(t, Options{Slots: 1, Cache: co, Metrics: true})
	live := postOK(t, ts.URL+"/cache/policy", map[string]any{
		"prompt": map[string]any{"type_k": "q8_0", "type_v": "q8_0"}, "generated": map[string]any{"type_k": "f16", "type_v": "f16"},
		"reasoning": map[string]any{"type_k": "q4_0", "type_v": "q4_0", "after": "answer"}})
	if fmt.Sprint(live["prompt"]) != "map[type_k:q8_0 type_v:q8_0]" || fmt.Sprint(live["reasoning"]) != "map[after:answer type_k:q4_0 type_v:q4_0]" {
		t.Fatalf("policy %v", live)
	}
	postOK(t, ts.URL+"/completion", map[string]any{"prompt": strings.Repeat("Roles have their own precision. ", 8), "n_predict": 40, "temperature": 0, "ignore_eos": true})
	u := obj(t, must(get(t, ts.URL+"/cache/usage?pages=1")))
	byRole := u["bytes_by_role"].(map[string]any)
	if num(byRole["prompt"]) == 0 || num(byRole["generated"]) == 0 {
		t.Fatalf("bytes by role %v", byRole)
	}
	slot := u["slots"].([]any)[0].(map[string]any)
	// The last generated token is never stored (it would be fed next).
	if tr := slot["tokens_by_role"].(map[string]any); num(tr["generated"]) != 39 {
		t.Errorf("tokens by role %v", tr)
	}
	for _, p := range slot["pages_list"].([]any) {
		pg := p.(map[string]any)
		want := map[string]string{"prompt": "q8_0", "generated": "f16"}[pg["role"].(string)]
		if want != "" && pg["type"] != want {
			t.Errorf("%s page %v is %v", pg["role"], pg["index"], pg["type"])
		}
	}
	m := scrape(t, ts.URL)
	if m[`kvserve:kv_cache_role_bytes{role="prompt"}`] != num(byRole["prompt"]) || m[`kvserve:kv_cache_role_bytes{role="generated"}`] == 0 {
		t.Errorf("metrics by role: %v", m)
	}
	delete(live, "stats")
	for _, c := range []struct{ body, want string }{
		{`{"prompt":{"type_k":"q9_0"}}`, "prompt.type_k"},
		{`{"generated":{"type_v":"f8"}}`, "generated.type_v"},
		{`{"reasoning":{"after":"tomorrow"}}`, "reasoning.after"},
		{`{"prompt":{"type_k":"q8_0","after":"answer"}}`, "prompt.after"},
		{`{"generated":{"drop":true}}`, "generated.drop"},
		{`{"reasoning":{"type_k":"q4_0","sometime":1}}`, "sometime"},
		{`{"prompt":"q8_0"}`, "prompt"},
	} {
		st, b := post(t, ts.URL+"/cache/policy", c.body)
		if msg := wantError(t, c.body, st, b, http.StatusBadRequest, TypeInvalidRequest); !strings.Contains(msg, c.want) {
			t.Errorf("%s: %q lacks %q", c.body, msg, c.want)
		}
		now := obj(t, must(get(t, ts.URL+"/cache/policy")))
		delete(now, "stats")
		if fmt.Sprint(now) != fmt.Sprint(live) {
			t.Errorf("%s changed the live policy: %v, was %v", c.body, now, live)
		}
	}
}

// /props and /slots report what the pages hold (types by bytes, per slot
// and in total) beside the type new tokens get: after --dynamic-cache
// demoted a slot's pages to q4_0, and after a slot-scoped requantization
// (issue 17: /props said f16 for both).
func TestPropsAndSlotsReportHeldTypes(t *testing.T) {
	steps, err := cachepolicy.ParseLengths("0:f16,32:q4_0")
	if err != nil {
		t.Fatal(err)
	}
	k, v := cachepolicy.DefaultLadders()
	pol := &cachepolicy.Policy{LadderK: k, LadderV: v, LengthK: steps, LengthV: steps}
	_, ts := newTestServer(t, Options{Slots: 2, Policy: pol})
	held := func() (map[string]any, []map[string]any) {
		t.Helper()
		p := obj(t, must(get(t, ts.URL+"/props")))
		var slots []map[string]any
		if err := json.Unmarshal(must(get(t, ts.URL+"/slots")), &slots); err != nil {
			t.Fatal(err)
		}
		var sc []map[string]any
		for _, s := range slots {
			sc = append(sc, s["cache"].(map[string]any))
		}
		return p, sc
	}
	p, sc := held()
	if h := p["cache_held"].(map[string]any); h["type_k"] != "none" || num(h["bytes"]) != 0 || sc[0]["type_v"] != "none" {
		t.Fatalf("empty cache: props %v slots %v", h, sc)
	}

	fill(t, ts.URL, 0, strings.Repeat("The cache is a product. ", 8), 8) // > 32 tokens
	p, sc = held()
	h := p["cache_held"].(map[string]any)
	if p["cache_type_k"] != "f16" || h["type_k"] != "q4_0" || h["type_v"] != "q4_0" || num(h["bytes"]) <= 0 {
		t.Errorf("after the length rule demoted slot 0: cache_type_k %v, held %v", p["cache_type_k"], h)
	}
	if sc[0]["type_k"] != "q4_0" || num(sc[0]["bytes_by_type_k"].(map[string]any)["q4_0"]) != num(sc[0]["bytes"])/2 ||
		num(sc[0]["tokens"]) < 32 || sc[1]["type_k"] != "none" {
		t.Errorf("slots after the demotion: %v", sc)
	}

	// Slot 1 filled at f16 (short), then requantized alone to q8_0: its
	// pages and its new tokens are q8_0; slot 0's are untouched.
	postOK(t, ts.URL+"/cache/policy", map[string]any{"enabled": false})
	fill(t, ts.URL, 1, "Hello there", 4)
	postOK(t, ts.URL+"/cache/requantize", map[string]any{"type_k": "q8_0", "type_v": "q8_0", "slots": []int{1}})
	p, sc = held()
	h = p["cache_held"].(map[string]any)
	if sc[1]["type_k"] != "q8_0" || sc[1]["write_type_k"] != "q8_0" || sc[1]["write_type_v"] != "q8_0" {
		t.Errorf("slot 1 after a scoped requantize: %v", sc[1])
	}
	if sc[0]["type_k"] != "q4_0" || sc[0]["write_type_k"] != "f16" {
		t.Errorf("slot 0 after slot 1's requantize: %v", sc[0])
	}
	if bk := h["bytes_by_type_k"].(map[string]any); h["type_k"] != "mixed" || h["write_type_k"] != "mixed" || len(bk) != 2 ||
		num(bk["q4_0"]) != num(sc[0]["bytes_by_type_k"].(map[string]any)["q4_0"]) {
		t.Errorf("/props after slot 1's requantize: %v", h)
	}
}

// Rotation is a cache-wide setting: a requantization scoped to layers or
// slots that would change it is refused (it used to change rotation for
// every later page of every layer); the same setting scoped, or a change
// for the whole cache, is accepted (issue 17).
func TestRequantizeScopedRotateRefused(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 2})
	fill(t, ts.URL, 0, "The cache is a product.", 4)
	rotation := func() any { return obj(t, must(get(t, ts.URL+"/cache/usage")))["rotate"] }
	for _, body := range []map[string]any{
		{"type_k": "q8_0", "layers": "4", "rotate": false},
		{"type_v": "q8_0", "slots": []int{1}, "rotate": false, "dry_run": true},
	} {
		st, b := post(t, ts.URL+"/cache/requantize", body)
		if msg := wantError(t, "scoped rotate", st, b, 400, TypeInvalidRequest); !strings.Contains(msg, "cache-wide") {
			t.Errorf("%v: %s", body, msg)
		}
	}
	if r := rotation(); r != true {
		t.Fatalf("a refused scoped rotate changed the rotation: %v", r)
	}
	postOK(t, ts.URL+"/cache/requantize", map[string]any{"type_k": "q8_0", "layers": "4", "rotate": true})
	postOK(t, ts.URL+"/cache/requantize", map[string]any{"type_k": "q8_0", "rotate": false})
	if r := rotation(); r != false {
		t.Errorf("rotation after a cache-wide rotate:false: %v", r)
	}
}

// Two slots whose prompts start with the same whole pages hold them once:
// /cache/usage counts them once in total_bytes (and says which are shared
// and by how many slots), the second request reuses them (timings.cache_n),
// and /metrics reports the shared bytes.
func TestCacheUsageSharedPages(t *testing.T) {
	co := engine.DefaultCacheOptions()
	co.PageTokens = 16
	_, ts := newTestServer(t, Options{Slots: 2, Cache: co, Metrics: true})
	system := strings.Repeat("The cache is a product and its pages are shared. ", 4)
	fill(t, ts.URL, 0, system+"First question?", 4)
	r := postOK(t, ts.URL+"/completion", map[string]any{"prompt": system + "Second one?", "n_predict": 4, "temperature": 0, "id_slot": 1})
	u := obj(t, must(get(t, ts.URL+"/cache/usage?pages=1")))
	slots := u["slots"].([]any)
	s0, s1 := slots[0].(map[string]any), slots[1].(map[string]any)
	shared := num(u["shared_bytes"])
	if shared <= 0 || num(s0["bytes_shared"]) != shared || num(s1["bytes_shared"]) != shared {
		t.Fatalf("shared bytes %v, slots %v / %v", shared, s0["bytes_shared"], s1["bytes_shared"])
	}
	if total := num(u["total_bytes"]); total != num(s0["bytes"])+num(s1["bytes"])-shared {
		t.Errorf("total %v, slots %v + %v, shared %v", total, s0["bytes"], s1["bytes"], shared)
	}
	sharedPages := 0.0
	for _, p := range s1["pages_list"].([]any) {
		if p := p.(map[string]any); num(p["slots"]) == 2 {
			sharedPages++
		}
	}
	if sharedPages != num(u["shared_pages"]) || sharedPages == 0 {
		t.Errorf("%v pages of slot 1 list 2 slots; shared_pages %v", sharedPages, u["shared_pages"])
	}
	cached := cacheN(r)
	if cached <= 0 || int(cached)%16 != 0 {
		t.Errorf("second request's timings.cache_n %v, want whole shared pages", cached)
	}
	if m := scrape(t, ts.URL); m["kvserve:kv_cache_shared_bytes"] != shared {
		t.Errorf("kv_cache_shared_bytes %v, want %v", m["kvserve:kv_cache_shared_bytes"], shared)
	}
}

// --cache-disk: a slot taken by another conversation spills the first to
// disk, and its next turn loads it (timings.cache_n) — in a restarted server
// too; a file with a flipped byte is skipped and counted, and the answer
// is the same, evaluated afresh. /cache/usage and /metrics report the tier.
func TestCacheDiskTier(t *testing.T) {
	dir := t.TempDir()
	co := engine.DefaultCacheOptions()
	co.PageTokens = 16
	o := Options{Slots: 1, Cache: co, Metrics: true, CacheDisk: dir}
	_, ts := newTestServer(t, o)
	a := strings.Repeat("The first conversation is about the sea. ", 4)
	first := postOK(t, ts.URL+"/completion", map[string]any{"prompt": a, "n_predict": 8, "temperature": 0, "ignore_eos": true})
	postOK(t, ts.URL+"/completion", map[string]any{"prompt": strings.Repeat("Another one, about mountains. ", 4), "n_predict": 8, "temperature": 0, "ignore_eos": true})
	next := map[string]any{"prompt": a + first["content"].(string) + " And then?", "n_predict": 8, "temperature": 0, "ignore_eos": true}
	again := postOK(t, ts.URL+"/completion", next)
	if cacheN(again) < 32 || again["content"] == "" {
		t.Errorf("next turn: prompt tokens reused %v, want the first conversation loaded from disk", cacheN(again))
	}
	disk := obj(t, must(get(t, ts.URL+"/cache/usage")))["disk"].(map[string]any)
	if num(disk["hits"]) != 1 || num(disk["spills"]) < 1 || num(disk["bytes"]) <= 0 {
		t.Errorf("disk tier: %v", disk)
	}
	if m := scrape(t, ts.URL); m[`kvserve:kv_cache_disk_total{event="hits"}`] != 1 || m["kvserve:kv_cache_disk_bytes"] != num(disk["bytes"]) {
		t.Errorf("metrics: hits %v bytes %v", m[`kvserve:kv_cache_disk_total{event="hits"}`], m["kvserve:kv_cache_disk_bytes"])
	}

	// A restarted server finds the entries.
	_, ts2 := newTestServer(t, o)
	restarted := postOK(t, ts2.URL+"/completion", next)
	if restarted["content"] != again["content"] || cacheN(restarted) < 32 {
		t.Errorf("after a restart: %q (cached %v), want %q", restarted["content"], cacheN(restarted), again["content"])
	}
	// Flip a byte in every entry: a third server skips them all and still answers the same.
	files, _ := filepath.Glob(filepath.Join(dir, "*.kvd"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		b[len(b)/2] ^= 0x40
		os.WriteFile(f, b, 0o644)
	}
	_, ts3 := newTestServer(t, o)
	fresh := postOK(t, ts3.URL+"/completion", next)
	disk = obj(t, must(get(t, ts3.URL+"/cache/usage")))["disk"].(map[string]any)
	if fresh["content"] != again["content"] || cacheN(fresh) != 0 || num(disk["skipped"]) != float64(len(files)) || num(disk["hits"]) != 0 {
		t.Errorf("corrupt entries: %q (cached %v), disk %v", fresh["content"], cacheN(fresh), disk)
	}
}

// --cache-ram without --cache-disk: a RAM tier alone. A slot taken by
// another conversation is held in RAM and loaded back (timings.cache_n);
// /cache/usage and /metrics report it.
func TestCacheRAMTier(t *testing.T) {
	co := engine.DefaultCacheOptions()
	co.PageTokens = 16
	_, ts := newTestServer(t, Options{Slots: 1, Cache: co, Metrics: true, CacheRAM: 64 << 20, CacheSpillType: "q8_0"})
	a := strings.Repeat("The first conversation is about the sea. ", 4)
	first := postOK(t, ts.URL+"/completion", map[string]any{"prompt": a, "n_predict": 8, "temperature": 0, "ignore_eos": true})
	postOK(t, ts.URL+"/completion", map[string]any{"prompt": strings.Repeat("Another one, about mountains. ", 4), "n_predict": 8, "temperature": 0, "ignore_eos": true})
	again := postOK(t, ts.URL+"/completion", map[string]any{"prompt": a + first["content"].(string) + " And then?", "n_predict": 8, "temperature": 0, "ignore_eos": true})
	if cacheN(again) < 32 {
		t.Errorf("next turn: prompt tokens reused %v, want the first conversation loaded from RAM", cacheN(again))
	}
	u := obj(t, must(get(t, ts.URL+"/cache/usage")))
	ram, _ := u["ram"].(map[string]any)
	if num(ram["hits"]) != 1 || num(ram["bytes"]) <= 0 || num(ram["budget_bytes"]) != 64<<20 {
		t.Errorf("ram tier: %v", u["ram"])
	}
	if m := scrape(t, ts.URL); m["kvserve:kv_cache_ram_bytes"] != num(ram["bytes"]) || m[`kvserve:kv_cache_disk_total{event="ram_hits"}`] != 1 {
		t.Errorf("metrics: ram bytes %v, ram hits %v", m["kvserve:kv_cache_ram_bytes"], m[`kvserve:kv_cache_disk_total{event="ram_hits"}`])
	}
}
