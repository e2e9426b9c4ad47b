package engine

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/model"
	"github.com/kvserve/kvserve/internal/tensor"
)

// CacheOptions are the user's cache settings, as given on the command line.
type CacheOptions struct {
	TypeK, TypeV     string // e.g. "f16", "q8_0"
	LayersK, LayersV string // per-layer overrides, e.g. "0-1:f16,7:q8_0"
	Rotate           string // "on", "off" or "" (default: on)
	PageTokens       int
	SWAFull          bool   // keep sliding-window layers' pages (llama.cpp's --swa-full)
	KeyChannels      string // "off", "centre" or "scale" (kvcache.KeyChannels)
	ValueChannels    string // "off" or "centre" (kvcache.Config.ValueChannels)
	KeyEncode        string // "mse" (default) or "query" (kvcache.Config.KeyQuery)
	// CtxCheckpoints is how many recurrent-state checkpoints a hybrid
	// model's cache keeps per slot (at page boundaries; llama.cpp's
	// --ctx-checkpoints). Ignored for attention-only models.
	CtxCheckpoints int
}

// DefaultCtxCheckpoints is the default number of state checkpoints per slot.
const DefaultCtxCheckpoints = 3

// DefaultCacheOptions match llama.cpp's defaults (f16 K and V).
func DefaultCacheOptions() CacheOptions {
	return CacheOptions{TypeK: "f16", TypeV: "f16", Rotate: "on", CtxCheckpoints: DefaultCtxCheckpoints}
}

// cacheConfig is the cache configuration for m with these options.
func (e *Engine) cacheConfig(o CacheOptions, seqs, ctx int) (kvcache.Config, error) {
	m := e.Model
	k, v, rotate, err := o.LayerTypes(m)
	if err != nil {
		return kvcache.Config{}, err
	}
	kc, err := kvcache.ParseKeyChannels(o.KeyChannels)
	if err != nil {
		return kvcache.Config{}, fmt.Errorf("--cache-key-channels: %w", err)
	}
	vc, err := kvcache.ParseKeyChannels(o.ValueChannels)
	if err != nil || vc == kvcache.KeyChannelsScale {
		return kvcache.Config{}, fmt.Errorf("--cache-value-channels must be off or centre, not %q", o.ValueChannels)
	}
	var keyQuery bool
	switch o.KeyEncode {
	case "", "mse":
	case "query":
		keyQuery = true
	default:
		return kvcache.Config{}, fmt.Errorf("--cache-key-encode must be mse or query, not %q", o.KeyEncode)
	}
	if o.CtxCheckpoints < 0 || o.CtxCheckpoints > 64 {
		return kvcache.Config{}, fmt.Errorf("--ctx-checkpoints must be 0 to 64, not %d", o.CtxCheckpoints)
	}
	cfg := kvcache.Config{KeyChannels: kc, ValueChannels: vc == kvcache.KeyChannelsCentre, KeyQuery: keyQuery,
		Layers: m.NLayer, KVHeads: m.NHeadKV, HeadDimK: m.HeadDim, HeadDimV: m.HeadDimV,
		Seqs: seqs, Ctx: ctx, PageTokens: o.PageTokens, Threads: e.Pool.Threads(),
		TypeK: k, TypeV: v, Rotate: rotate, Attn: m.CacheAttn(), KeepWindowPages: o.SWAFull,
	}
	if m.Recurrent != nil {
		cfg.Recurrent = m.Recurrent
		cfg.ConvState, cfg.SSMState = m.SSM.ConvStateFloats(), m.SSM.StateFloats()
		cfg.Checkpoints = o.CtxCheckpoints
	}
	return cfg, nil
}

// LayerTypes resolves the options into per-layer K and V types for m,
// checking every type against the model's head dimensions.
func (o CacheOptions) LayerTypes(m *model.Model) (k, v []tensor.Type, rotate bool, err error) {
	k, err = layerTypes(o.TypeK, o.LayersK, m.NLayer, m.HeadDim, "K")
	if err != nil {
		return nil, nil, false, err
	}
	v, err = layerTypes(o.TypeV, o.LayersV, m.NLayer, m.HeadDimV, "V")
	if err != nil {
		return nil, nil, false, err
	}
	switch strings.ToLower(o.Rotate) {
	case "", "on", "true", "1":
		rotate = true
	case "off", "false", "0":
	default:
		return nil, nil, false, fmt.Errorf("--cache-rotate must be on or off, not %q", o.Rotate)
	}
	return k, v, rotate, nil
}

func layerTypes(def, overrides string, nLayer, headDim int, which string) ([]tensor.Type, error) {
	if def == "" {
		def = "f16"
	}
	t, err := kvcache.ParseType(def)
	if err != nil {
		return nil, fmt.Errorf("cache type %s: %w", which, err)
	}
	if err := kvcache.CheckType(t, headDim); err != nil {
		return nil, fmt.Errorf("cache type %s: %w", which, err)
	}
	types := make([]tensor.Type, nLayer)
	for i := range types {
		types[i] = t
	}
	if overrides == "" {
		return types, nil
	}
	flag := "--cache-type-" + strings.ToLower(which) + "-layers"
	spec, err := ParseLayerTypes(overrides, nLayer)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	for l, t := range spec {
		if err := kvcache.CheckType(t, headDim); err != nil {
			return nil, fmt.Errorf("%s: layer %d: %w", flag, l, err)
		}
		types[l] = t
	}
	return types, nil
}

// ParseLayerTypes parses "0-1:f16,7:q8_0" (kvcache.ParseLayerTypeRanges)
// into a map from layer to type, every layer below nLayer; items may
// overlap, a later one wins.
func ParseLayerTypes(s string, nLayer int) (map[int]tensor.Type, error) {
	items, err := kvcache.ParseLayerTypeRanges(s)
	if err != nil {
		return nil, err
	}
	out := map[int]tensor.Type{}
	for _, it := range items {
		if it.To >= nLayer {
			return nil, fmt.Errorf("layer range %q is outside 0-%d", it.Layers, nLayer-1)
		}
		for l := it.From; l <= it.To; l++ {
			out[l] = it.Type
		}
	}
	return out, nil
}

// ParseLayers parses a layer list such as "0-3,7" (inclusive ranges).
func ParseLayers(s string, nLayer int) ([]int, error) {
	var out []int
	seen := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(strings.TrimSpace(lo))
		if err != nil {
			return nil, fmt.Errorf("layer %q is not a number", lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(strings.TrimSpace(hi)); err != nil {
				return nil, fmt.Errorf("layer %q is not a number", hi)
			}
		}
		if a < 0 || b >= nLayer || a > b {
			return nil, fmt.Errorf("layer range %q is outside 0-%d", part, nLayer-1)
		}
		for l := a; l <= b; l++ {
			if !seen[l] {
				seen[l] = true
				out = append(out, l)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty layer list %q", s)
	}
	return out, nil
}

// NewCache builds a cache for seqs sequences of up to ctx tokens.
func (e *Engine) NewCache(o CacheOptions, seqs, ctx int) (*kvcache.Cache, error) {
	cfg, err := e.cacheConfig(o, seqs, ctx)
	if err != nil {
		return nil, err
	}
	return kvcache.New(cfg)
}
