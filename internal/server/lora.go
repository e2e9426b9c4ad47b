package server

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/model"
)

// LoRA adapters (Options.Lora; llama-server's --lora, --lora-scaled,
// --lora-init-without-apply):
//
//	GET  /lora-adapters   [{"id":0,"path":"a.gguf","scale":1}, ...]
//	POST /lora-adapters   [{"id":0,"scale":0.5}, ...] sets those scales and
//	                      turns every adapter not listed off (scale 0), as
//	                      llama-server; answers {"success":true}
//
// Adapters apply to every request at these scales, unless the request
// gives its own in a "lora" field (the same list; adapters it leaves out
// are off for it): requests with different scales share a batch, each
// token with its request's scales (model.Batch.Lora). A change applies from the next scheduler step: the prompt
// caches of idle slots are dropped (they were computed with the old
// scales and must not be reused); running requests keep their tokens so
// far. Cached tokens are keyed by the adapters and scales they were
// computed under (engine.AdapterSet: each applied adapter's content hash
// and scale, the request's own scales or the server's alike), so a prefix
// computed under one adapter or scale is never reused, shared or loaded
// from the disk tier for a request under another (a later change back, or
// a request asking for the same scales, reuses it). Slot files saved
// under other scales are not marked as such.

// LoraAdapter is a LoRA adapter file and its scale.
type LoraAdapter struct {
	Path  string
	Scale float32
}

// loadLoras loads and attaches the adapters.
func loadLoras(e *engine.Engine, specs []LoraAdapter) ([]*model.Lora, error) {
	var out []*model.Lora
	for _, l := range specs {
		a, err := e.LoadLora(l.Path, l.Scale)
		if err != nil {
			return nil, fmt.Errorf("--lora %s: %w", l.Path, err)
		}
		out = append(out, a)
	}
	return out, nil
}

func (s *Server) loraList() []map[string]any {
	out := make([]map[string]any, len(s.loras))
	for i, a := range s.loras {
		out[i] = map[string]any{"id": i, "path": a.Path, "scale": a.Scale()}
	}
	return out
}

func (s *Server) handleGetLora(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, s.loraList())
}

func (s *Server) handleSetLora(w http.ResponseWriter, r *http.Request) {
	body, aerr := readBody(r)
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	var raw json.RawMessage = body
	if kind(raw) == "an object" {
		// {"lora": [...]} as well as the bare array.
		o, aerr := parseObject(body)
		if aerr != nil {
			WriteError(w, aerr)
			return
		}
		if raw, _ = o.raw("lora"); raw == nil {
			WriteError(w, badRequest(`the body must be an array [{"id": N, "scale": X}, ...]`))
			return
		}
	}
	scales, aerr := s.parseLoraList(raw, "the body")
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	err := s.sched.Do(func(c *kvcache.Cache) error {
		changed := false
		for i, a := range s.loras {
			if a.Scale() != scales[i] {
				a.SetScale(scales[i])
				changed = true
			}
		}
		if changed {
			s.sched.AdaptersChanged()
			for id := range c.Config().Seqs {
				if !s.sched.SlotBusy(id) {
					c.Clear(id)
					s.sched.SetSlotTokens(id, nil)
				}
			}
		}
		return nil
	})
	if err != nil {
		WriteError(w, asAPIError(err))
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"success": true})
}

// parseLoraList reads a list [{"id": N, "scale": X}, ...] into the scale of
// every adapter loaded, by id; adapters the list leaves out get 0, as
// llama-server. what names the list in errors.
func (s *Server) parseLoraList(raw json.RawMessage, what string) ([]float32, *apiError) {
	items, err := arrayItems(raw, len(s.loras)*4+16)
	if err != nil {
		return nil, badRequest(`%s must be an array [{"id": N, "scale": X}, ...]: it %v`, what, err)
	}
	scales := make([]float32, len(s.loras))
	for i, it := range items {
		o, aerr := parseObject(it)
		if aerr != nil {
			return nil, badRequest(`%s[%d] must be an object {"id": N, "scale": X}`, what, i)
		}
		if !o.has("id") || !o.has("scale") {
			return nil, badRequest(`%s[%d] needs "id" and "scale"`, what, i)
		}
		id := o.int("id", 0, math.MinInt32, math.MaxInt32)
		sc := o.float("scale", 0, -1e6, 1e6)
		if o.err != nil {
			return nil, badRequest("%s[%d]: %s", what, i, o.err.Message)
		}
		if id < 0 || id >= len(s.loras) {
			return nil, badRequest("%s[%d]: no LoRA adapter has id %d (%d loaded)", what, i, id, len(s.loras))
		}
		scales[id] = float32(sc)
	}
	return scales, nil
}

// requestLora reads a completion request's "lora" field: the scales of
// the adapters for this request only (nil: the field is absent, the
// adapters' current scales apply).
func (s *Server) requestLora(o *object) []float32 {
	raw, ok := o.raw("lora")
	if !ok || o.err != nil {
		return nil
	}
	scales, aerr := s.parseLoraList(raw, `"lora"`)
	if aerr != nil {
		o.err = aerr
		return nil
	}
	if len(scales) == 0 {
		return nil // no adapter loaded: nothing to scale (and the cache stays reusable)
	}
	return scales
}

// loraSettings is llama-server's "lora" list of a request's settings: the
// scales it runs with.
func (s *Server) loraSettings(scales []float32) []any {
	out := make([]any, len(s.loras))
	for i, a := range s.loras {
		sc := a.Scale()
		if scales != nil {
			sc = scales[i]
		}
		out[i] = map[string]any{"id": i, "scale": sc}
	}
	return out
}
