package server

import (
	"github.com/kvserve/kvserve/internal/grammar"
	"github.com/kvserve/kvserve/internal/sample"
)

// Defaults are what a completion request gets for the fields it does not
// give: llama-server's command-line defaults (--temp, --top-k, -n,
// --keep, --ignore-eos, --no-cache-prompt, ...). Options.Defaults nil
// means DefaultDefaults().
type Defaults struct {
	Sample      sample.Params
	NPredict    int  // -1: until end of generation or context
	NKeep       int  // tokens a context shift keeps (-1: the whole prompt)
	IgnoreEOS   bool // generate past end-of-generation tokens
	CachePrompt bool // reuse a slot's cached prefix (llama-server's --cache-prompt)
	// CacheReuse is the least chunk of a previous prompt that is reused
	// after a shifted prefix (llama-server's --cache-reuse; 0: off).
	// Requests set it with "n_cache_reuse".
	CacheReuse int
	// Grammar constrains the output of requests that give no "grammar",
	// "json_schema" or "response_format" of their own (llama-server's
	// --grammar, --grammar-file, -j, -jf; nil: none). A forced tool call
	// (tool_choice "required" or a named function) uses its own grammar.
	Grammar *grammar.Grammar
}

// DefaultDefaults returns llama-server's defaults.
func DefaultDefaults() Defaults {
	return Defaults{Sample: sample.DefaultParams(), NPredict: -1, CachePrompt: true}
}

// defaults returns the server's request defaults.
func (s *Server) defaults() Defaults {
	if s.o.Defaults != nil {
		return *s.o.Defaults
	}
	return DefaultDefaults()
}

// defaultGen returns the generation options of a request that gives no
// field.
func (s *Server) defaultGen(a api) genOptions {
	d := s.defaults()
	return genOptions{api: a, sample: d.Sample, nPredict: d.NPredict, slotID: -1, cachePrompt: d.CachePrompt,
		nKeep: d.NKeep, ignoreEOS: d.IgnoreEOS, cacheReuse: d.CacheReuse}
}
