// Command windowcache measures what sliding-window layers save: it builds
// the KV cache of a model shape (a kvserve synth preset's configuration,
// read through the model's own loader) for one sequence, stores N positions
// of keys and values with the window layers releasing pages as the forward
// pass makes them do, and reports the bytes the cache accounts and the
// process's RSS — once as kvserve runs (window layers keep their window)
// and once with every page kept (--swa-full, what a cache without window
// support holds).
//
//	go run ./scripts/windowcache [-preset gemma-3-4b] [-ctx 32768] [-type f16]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"strings"

	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/model"
	"github.com/kvserve/kvserve/internal/synth"
	"github.com/kvserve/kvserve/internal/tensor"
	"github.com/kvserve/kvserve/internal/testassets"
)

func main() {
	preset := flag.String("preset", "gemma-3-4b", "kvserve synth preset")
	ctx := flag.Int("ctx", 32768, "positions to store")
	typ := flag.String("type", "f16", "cache type")
	keepAll := flag.Bool("swa-full", false, "keep every page (run once with and once without)")
	flag.Parse()
	p, err := synth.Lookup(*preset)
	if err != nil {
		log.Fatal(err)
	}
	shared, _ := testassets.Find()
	ft, _ := synth.ParseFileType("f16")
	kvs, err := synth.Metadata(&synth.Options{Preset: p, Type: ft, Vocab: synth.VocabSource{Shared: shared}})
	if err != nil {
		log.Fatal(err)
	}
	var buf bytes.Buffer
	if err := gguf.Write(&buf, kvs, nil); err != nil {
		log.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	cfg, _, err := model.ConfigFromGGUF(f)
	if err != nil {
		log.Fatal(err)
	}
	t, err := kvcache.ParseType(*typ)
	if err != nil {
		log.Fatal(err)
	}
	types := make([]tensor.Type, cfg.NLayer)
	for i := range types {
		types[i] = t
	}
	c, err := kvcache.New(kvcache.Config{Layers: cfg.NLayer, KVHeads: cfg.NHeadKV, HeadDimK: cfg.HeadDim, HeadDimV: cfg.HeadDimV,
		Seqs: 1, Ctx: *ctx, Threads: 1, TypeK: types, TypeV: types, Attn: cfg.Attn, KeepWindowPages: *keepAll})
	if err != nil {
		log.Fatal(err)
	}
	windows := 0
	for _, a := range cfg.Attn {
		if a.Window > 0 {
			windows++
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	k := make([]float32, cfg.NHeadKV*cfg.HeadDim)
	v := make([]float32, cfg.NHeadKV*cfg.HeadDimV)
	for i := range k {
		k[i] = float32(r.NormFloat64())
	}
	copy(v, k)
	rss0 := rss()
	const batch = 512 // the forward pass releases pages after each batch
	for pos := 0; pos < *ctx; pos++ {
		for l := 0; l < cfg.NLayer; l++ {
			c.Store(l, 0, pos, k, v)
		}
		if (pos+1)%batch == 0 || pos+1 == *ctx {
			c.Release(0)
		}
	}
	debug.FreeOSMemory()
	fmt.Printf("%s (%d layers, %d with a window of %d), %d positions, %s cache, swa-full=%v: cache %.1f MiB (capacity %.1f MiB), RSS +%.1f MiB\n",
		*preset, cfg.NLayer, windows, cfg.Attn[0].Window, *ctx, t, *keepAll, mib(c.Bytes()), mib(c.Capacity()), mib(rss()-rss0))
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// rss reads the process's resident set size from /proc.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			var kb int64
			fmt.Sscanf(strings.TrimPrefix(l, "VmRSS:"), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}
