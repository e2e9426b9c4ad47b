package cachetune

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/kvcache"
)

// Setting is a chosen allocation as cache options: on each side the most
// common type as the default, the other layers as overrides.
type Setting struct {
	TypeK       string `json:"type_k"`
	TypeV       string `json:"type_v"`
	LayersK     string `json:"layers_k,omitempty"` // engine.ParseLayerTypes syntax, "" when none
	LayersV     string `json:"layers_v,omitempty"`
	KeyChannels string `json:"key_channels"` // as tuned ("off", "centre", "scale")
	KeyEncode   string `json:"key_encode"`   // "mse" or "query"
	PageTokens  int    `json:"page_tokens"`
}

// Base is what the screen and the setting share beyond the types.
type Base struct {
	KeyChannels string
	KeyEncode   string
	PageTokens  int
}

// NewSetting turns an allocation into cache options. kinds orders ties
// between equally common types (the first listed wins).
func NewSetting(a *Allocation, kinds []Kind, b Base) Setting {
	s := Setting{KeyChannels: b.KeyChannels, KeyEncode: b.KeyEncode, PageTokens: b.PageTokens}
	s.TypeK, s.LayersK = side(a, kinds, "K")
	s.TypeV, s.LayersV = side(a, kinds, "V")
	return s
}

func side(a *Allocation, kinds []Kind, sd string) (def, layers string) {
	count := map[string]int{}
	var cs []Choice
	for _, c := range a.Choices {
		if c.Side == sd {
			count[c.Type]++
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return "f16", ""
	}
	for _, k := range kinds {
		if count[k.Name] > count[def] {
			def = k.Name
		}
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Layer < cs[j].Layer })
	var parts []string
	for i := 0; i < len(cs); {
		j := i
		for j+1 < len(cs) && cs[j+1].Layer == cs[j].Layer+1 && cs[j+1].Type == cs[i].Type {
			j++
		}
		if cs[i].Type != def {
			if j > i {
				parts = append(parts, fmt.Sprintf("%d-%d:%s", cs[i].Layer, cs[j].Layer, cs[i].Type))
			} else {
				parts = append(parts, fmt.Sprintf("%d:%s", cs[i].Layer, cs[i].Type))
			}
		}
		i = j + 1
	}
	return def, strings.Join(parts, ",")
}

// Options returns the setting as the engine's cache options.
func (s Setting) Options() engine.CacheOptions {
	o := engine.DefaultCacheOptions()
	o.TypeK, o.TypeV, o.LayersK, o.LayersV = s.TypeK, s.TypeV, s.LayersK, s.LayersV
	o.KeyChannels, o.KeyEncode, o.PageTokens = s.KeyChannels, s.KeyEncode, s.PageTokens
	return o
}

// Args returns the setting as kvserve serve's command-line flags.
func (s Setting) Args() []string {
	args := []string{"-ctk", s.TypeK, "-ctv", s.TypeV}
	if s.LayersK != "" {
		args = append(args, "--cache-type-k-layers", s.LayersK)
	}
	if s.LayersV != "" {
		args = append(args, "--cache-type-v-layers", s.LayersV)
	}
	if s.KeyChannels != "" && s.KeyChannels != "off" {
		args = append(args, "--cache-key-channels", s.KeyChannels)
	}
	if s.KeyEncode != "" && s.KeyEncode != "mse" {
		args = append(args, "--cache-key-encode", s.KeyEncode)
	}
	if s.PageTokens != 0 && s.PageTokens != DefaultPageTokens {
		args = append(args, "--cache-page-tokens", fmt.Sprint(s.PageTokens))
	}
	return args
}

// DefaultPageTokens is the cache's default page size (kvserve's
// --cache-page-tokens).
const DefaultPageTokens = 256

// MeansOverhead is the bits per value the per-page channel means add to
// quantized K (and, with value channels, V) pages: fields f16 values per
// channel and page (1 for centre, 2 for scale).
func MeansOverhead(keyChannels string, pageTokens int) (Overhead, error) {
	if pageTokens <= 0 {
		pageTokens = DefaultPageTokens
	}
	kc, err := kvcache.ParseKeyChannels(keyChannels)
	if err != nil {
		return Overhead{}, fmt.Errorf("--cache-key-channels: %w", err)
	}
	fields := map[kvcache.KeyChannels]float64{kvcache.KeyChannelsCentre: 1, kvcache.KeyChannelsScale: 2}[kc]
	return Overhead{K: fields * 16 / float64(pageTokens)}, nil
}
