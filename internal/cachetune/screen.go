package cachetune

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/perplexity"
)

// Options configure a Session's runs (those of kvserve perplexity).
type Options struct {
	Ctx    int // tokens per chunk
	Chunks int // chunks of the screen
	// BaseChunks is the chunks of the f16 base run: at least Chunks and
	// any verification's.
	BaseChunks int
	Batch      int // prompt micro-batch
	// Cache holds the settings every run shares (key channels, key
	// encoding, page size, rotation); its types are replaced per run.
	Cache    engine.CacheOptions
	Progress io.Writer // one line per run (nil: quiet)
}

// Session measures cache settings against one f16 base run of a text.
type Session struct {
	e       *engine.Engine
	tokens  []int
	o       Options
	base    string // the base file (a temporary file, removed by Close)
	BasePPL float64
	// BaseChunks is the chunks the base holds (fewer than asked when the
	// text is short).
	BaseChunks int
}

// NewSession tokenizes text and creates the temporary file (in $TMPDIR)
// that RunBase fills with the f16 base's log-probabilities: every scored
// position's whole distribution, BaseChunks × Ctx/2 × (2 × vocabulary +
// 12) bytes, e.g. 3.1 GB for 10 chunks of 2048 at a 152k vocabulary.
// Close removes it.
func NewSession(e *engine.Engine, text string, o Options) (*Session, error) {
	if o.Ctx < 2 {
		return nil, fmt.Errorf("context of %d tokens is too small", o.Ctx)
	}
	if o.Chunks < 1 {
		return nil, fmt.Errorf("the screen needs at least one chunk, not %d", o.Chunks)
	}
	o.BaseChunks = max(o.BaseChunks, o.Chunks)
	if o.Batch <= 0 {
		o.Batch = engine.DefaultBatch
	}
	s := &Session{e: e, tokens: e.Tok.Encode(text, true, true), o: o}
	if len(s.tokens) < o.Ctx {
		return nil, fmt.Errorf("text has %d tokens: need at least %d for one chunk of -c %d", len(s.tokens), o.Ctx, o.Ctx)
	}
	f, err := os.CreateTemp("", "kvserve-tune-base-*")
	if err != nil {
		return nil, err
	}
	s.base = f.Name()
	return s, f.Close()
}

// BasePath is the base file's path (for a signal handler to remove).
func (s *Session) BasePath() string { return s.base }

// RunBase runs the f16 cache once over BaseChunks chunks (fewer when the
// text is shorter), saving its log-probabilities.
func (s *Session) RunBase() error {
	f, err := os.Create(s.base)
	if err != nil {
		return err
	}
	base := engine.DefaultCacheOptions()
	base.PageTokens = s.o.Cache.PageTokens
	start := time.Now()
	res, err := s.run(base, s.o.BaseChunks, nil, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("f16 base run: %w", err)
	}
	s.BasePPL, s.BaseChunks = res.PPL, res.Chunks
	size := int64(0)
	if st, err := os.Stat(s.base); err == nil {
		size = st.Size()
	}
	s.progress("f16 base: %d chunks of %d tokens, PPL %.4f, %.0f s (%.0f MB in %s)", res.Chunks, s.o.Ctx, res.PPL, time.Since(start).Seconds(), float64(size)/1e6, s.base)
	return nil
}

// Tokens is the text's length in tokens.
func (s *Session) Tokens() int { return len(s.tokens) }

// Close removes the base file.
func (s *Session) Close() {
	if s.base != "" {
		os.Remove(s.base)
		s.base = ""
	}
}

func (s *Session) progress(format string, a ...any) {
	if s.o.Progress != nil {
		fmt.Fprintf(s.o.Progress, format+"\n", a...)
	}
}

// Layers returns the layers that hold a KV cache (all but the recurrent
// layers of hybrid models).
func Layers(e *engine.Engine) []int {
	var out []int
	for l := 0; l < e.Model.NLayer; l++ {
		if e.Model.Recurrent == nil || !e.Model.Recurrent[l] {
			out = append(out, l)
		}
	}
	return out
}

// Screen measures, for every attention layer's K and then V cache, the
// mean KL divergence against the f16 base with cb2 on that cache alone
// (the rest f16) over the session's Chunks.
func (s *Session) Screen() ([]Item, error) {
	m := s.e.Model
	var items []Item
	layers := Layers(s.e)
	for _, sd := range []string{"K", "V"} {
		w := float64(m.NHeadKV * m.HeadDim)
		if sd == "V" {
			w = float64(m.NHeadKV * m.HeadDimV)
		}
		for i, l := range layers {
			co := s.o.Cache
			co.TypeK, co.TypeV, co.LayersK, co.LayersV = "f16", "f16", "", ""
			spec := fmt.Sprintf("%d:%s", l, ScreenType)
			if sd == "K" {
				co.LayersK = spec
			} else {
				co.LayersV = spec
			}
			start := time.Now()
			res, err := s.Measure(co, s.o.Chunks)
			if err != nil {
				return nil, fmt.Errorf("screen, %s cache of layer %d: %w", sd, l, err)
			}
			items = append(items, Item{Side: sd, Layer: l, KLD: res.KL.MeanKLD, Weight: w})
			s.progress("screen %s %d/%d: layer %d, %s on its %s cache: KLD %.4g (%.0f s)", sd, i+1, len(layers), l, ScreenType, sd, res.KL.MeanKLD, time.Since(start).Seconds())
		}
	}
	return items, nil
}

// Measure runs the cache options over chunks chunks (at most the base's)
// and compares them with the f16 base.
func (s *Session) Measure(co engine.CacheOptions, chunks int) (*perplexity.Result, error) {
	if chunks < 1 || chunks > s.BaseChunks {
		return nil, fmt.Errorf("%d chunks asked, the base holds %d", chunks, s.BaseChunks)
	}
	f, err := os.Open(s.base)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	res, err := s.run(co, chunks, f, nil)
	if err != nil {
		return nil, err
	}
	if res.KL == nil || res.KL.N == 0 {
		return nil, fmt.Errorf("no position was compared with the base")
	}
	return res, nil
}

func (s *Session) run(co engine.CacheOptions, chunks int, base io.Reader, baseOut io.Writer) (*perplexity.Result, error) {
	e := s.e
	cache, err := e.NewCache(co, 1, s.o.Ctx)
	if err != nil {
		return nil, err
	}
	defer cache.Close()
	o := perplexity.Options{Ctx: s.o.Ctx, Chunks: chunks, BOS: e.BOS(), TopK: 0, Vocab: e.Model.NVocab, KLBase: base, KLBaseOut: baseOut}
	return perplexity.Run(s.tokens, e.ChunkEvaluator(cache, min(s.o.Batch, s.o.Ctx)), o)
}
