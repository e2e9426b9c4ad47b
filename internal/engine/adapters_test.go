package engine_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kvserve/kvserve/internal/cachedisk"
	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/model"
	"github.com/kvserve/kvserve/internal/synth"
	"github.com/kvserve/kvserve/models"
)

// Cached tokens are keyed by the adapter set they were computed under
// (engine.AdapterSet): the same adapters at the same scales reuse them,
// whether the scales are a request's own or the adapters'; other scales
// do not — in the slot, through shared pages, and in the disk tier.

// loraEngine loads the embedded model with synth's test adapter attached
// at scale 1.
func loraEngine(t *testing.T) (*engine.Engine, *model.Lora) {
	t.Helper()
	e := tierEngine(t)
	src, err := gguf.Parse(models.Default())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "adapter.gguf")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := synth.TestLoraAdapter(src, out); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	a, err := e.LoadLora(path, 1)
	if err != nil {
		t.Fatal(err)
	}
	return e, a
}

// loraAsk runs a greedy request of prompt in slot with LoRA scales lora
// (nil: the adapters' own), with the prompt cache on or off.
func loraAsk(t *testing.T, s *engine.Scheduler, prompt []int, slot int, lora []float32, cache bool) *engine.Result {
	t.Helper()
	return submit(t, s, &engine.Request{Prompt: prompt, NPredict: 8, Sample: greedy(), SlotID: slot,
		IgnoreEOS: true, CachePrompt: cache, Lora: lora})
}

// In one slot: a prompt cached under scale 1 is reused by a request asking
// for scale 1 and by one at the adapter's own scale (1), not by one at 0.5
// or with the adapter off; every answer equals the one evaluated afresh.
func TestAdapterSetSlotReuse(t *testing.T) {
	e, _ := loraEngine(t)
	s, stop := tierScheduler(t, e, engine.SchedulerOptions{Slots: 1, SlotCtx: 256})
	defer stop()
	prompt := e.Tok.Encode("A conversation about the sea, the boats in the harbour and the weather today.", true, true)
	fresh := map[string][]int{}
	for _, f := range []struct {
		name string
		lora []float32
	}{{"1", []float32{1}}, {"0.5", []float32{0.5}}, {"off", []float32{}}} { // the slot ends with the tokens "off" computed
		fresh[f.name] = loraAsk(t, s, prompt, 0, f.lora, false).Tokens
	}
	if slices.Equal(fresh["1"], fresh["off"]) || slices.Equal(fresh["1"], fresh["0.5"]) {
		t.Fatalf("the adapter's scale changed nothing: %v, %v at 0.5, %v off", fresh["1"], fresh["0.5"], fresh["off"])
	}
	for i, c := range []struct {
		name   string
		lora   []float32
		want   string
		reused bool
	}{
		{"own scale 1", []float32{1}, "1", false},
		{"own scale 1 again", []float32{1}, "1", true},
		{"the adapter's scale (1)", nil, "1", true},
		{"own scale 0.5", []float32{0.5}, "0.5", false},
		{"own scale 0.5 again", []float32{0.5}, "0.5", true},
		{"the adapter's scale after 0.5", nil, "1", false},
		{"adapter off", []float32{}, "off", false},
		{"adapter off at scale 0", []float32{0}, "off", true},
	} {
		r := loraAsk(t, s, prompt, 0, c.lora, true)
		if (r.CachedTokens > 0) != c.reused {
			t.Errorf("%d %s: %d cached tokens, want reuse %v", i, c.name, r.CachedTokens, c.reused)
		}
		if !slices.Equal(r.Tokens, fresh[c.want]) {
			t.Errorf("%d %s: %v, want %v (scale %s, evaluated afresh)", i, c.name, r.Tokens, fresh[c.want], c.want)
		}
	}
}

// Shared pages: a slot's pages are shared with a request in another slot
// only under the same set (a request's own scale 1 and the adapter's own 1
// alike), and after the adapter's own scale changes (AdaptersChanged) a
// request at the adapter's scale shares nothing computed under the old one.
func TestAdapterSetSharedPages(t *testing.T) {
	e, a := loraEngine(t)
	s, stop := tierScheduler(t, e, engine.SchedulerOptions{Slots: 2, SlotCtx: 256})
	defer stop()
	prompt := e.Tok.Encode("A long shared system prompt about the sea, the mountains and the weather in the valleys today.", true, true)
	loraAsk(t, s, prompt, 0, nil, true) // slot 0: the adapter's scale, 1
	if r := loraAsk(t, s, prompt, 1, []float32{0.5}, true); r.SharedTokens != 0 || r.CachedTokens != 0 {
		t.Errorf("at scale 0.5: %d tokens shared, %d cached", r.SharedTokens, r.CachedTokens)
	}
	// Slot 1 holds the scale-0.5 cache: not reused, slot 0's pages shared.
	if r := loraAsk(t, s, prompt, 1, []float32{1}, true); r.SharedTokens == 0 || r.CachedTokens != r.SharedTokens {
		t.Errorf("own scale 1 beside the adapter's 1: %d tokens shared, %d cached", r.SharedTokens, r.CachedTokens)
	}
	s.Do(func(*kvcache.Cache) error { a.SetScale(0.5); s.AdaptersChanged(); return nil })
	if r := loraAsk(t, s, prompt, 1, nil, true); r.CachedTokens != 0 {
		t.Errorf("the adapter's scale now 0.5, both slots cached at 1: %d tokens shared, %d cached", r.SharedTokens, r.CachedTokens)
	}
	if r := loraAsk(t, s, prompt, 1, []float32{1}, true); r.SharedTokens == 0 {
		t.Errorf("own scale 1 after the change: %d tokens shared, %d cached; want slot 0's pages", r.SharedTokens, r.CachedTokens)
	}
}

// The disk tier: an entry written under one set is loaded only under the
// same set — by a request at its own scale or at the adapter's alike —
// never under another scale or with the adapter off.
func TestAdapterSetDiskTier(t *testing.T) {
	e, _ := loraEngine(t)
	d, err := cachedisk.Open(t.TempDir(), "test", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, stop := tierScheduler(t, e, engine.SchedulerOptions{Slots: 1, SlotCtx: 512, Disk: d})
	defer stop()
	a := e.Tok.Encode("The first conversation is about the sea and the boats in the harbour at dawn, and the fishermen.", true, true)
	b := e.Tok.Encode("Another one, about the mountains and the snow on their tops in winter, and the climbers.", true, true)
	first := loraAsk(t, s, a, 0, []float32{1}, true)
	for i, c := range []struct {
		name   string
		prompt []int
		lora   []float32
		loaded bool
	}{
		{"b at scale 1 (a spilled under 1)", b, []float32{1}, false},
		{"a at scale 0.5", a, []float32{0.5}, false},
		{"a with the adapter off", a, []float32{}, false},
		{"b at the adapter's scale (1)", b, nil, true},
		{"a at own scale 1", a, []float32{1}, true},
	} {
		r := loraAsk(t, s, c.prompt, 0, c.lora, true)
		if (r.DiskTokens > 0) != c.loaded {
			t.Errorf("%d %s: %d tokens loaded from disk, want loaded %v", i, c.name, r.DiskTokens, c.loaded)
		}
		if c.loaded && slices.Equal(c.prompt, a) && !slices.Equal(r.Tokens, first.Tokens) {
			t.Errorf("%d %s: %v, want %v as first evaluated", i, c.name, r.Tokens, first.Tokens)
		}
	}
}
