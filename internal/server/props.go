package server

import (
	"net/http"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/tensor"
)

// routesInit registers the built-in routes.
func (s *Server) routesInit() {
	health := func(w http.ResponseWriter, r *http.Request) {
		switch s.state.Load() {
		case stateReady:
			WriteJSON(w, http.StatusOK, map[string]any{"status": "ok"})
		case stateFailed:
			WriteError(w, errorf(http.StatusInternalServerError, TypeServer, "the model failed to load: %v", s.loadErr))
		default:
			WriteError(w, errorf(http.StatusServiceUnavailable, TypeUnavailable, "Loading model"))
		}
	}
	for _, p := range []string{"/health", "/v1/health", "/models", "/v1/models", "/api/tags"} {
		s.public[p] = true
	}
	s.HandleFunc("GET /health", health)
	s.HandleFunc("GET /v1/health", health)
	s.HandleFunc("GET /props", s.handleProps)
	s.HandleFunc("GET /models", s.handleModels)
	s.HandleFunc("GET /v1/models", s.handleModels)
	s.HandleFunc("GET /api/tags", s.handleModels) // llama-server's Ollama-style routes
	s.HandleFunc("POST /api/show", s.handleAPIShow)
	s.HandleFunc("POST /api/chat", s.handleChat)
	for _, p := range []string{"/completion", "/completions"} {
		s.HandleFunc("POST "+p, s.handleCompletion)
	}
	s.HandleFunc("POST /v1/completions", s.handleOAICompletion)
	s.HandleFunc("POST /chat/completions", s.handleChat)
	s.HandleFunc("POST /v1/chat/completions", s.handleChat)
	s.HandleFunc("POST /tokenize", s.handleTokenize)
	s.HandleFunc("POST /detokenize", s.handleDetokenize)
	s.HandleFunc("POST /apply-template", s.handleApplyTemplate)
	if !s.o.NoSlots {
		s.HandleFunc("GET /slots", s.handleSlots)
	}
	s.HandleFunc("POST /slots/{id}", s.handleSlotAction)
	s.HandleFunc("GET /metrics", s.handleMetrics)
	s.extraRoutes()
	s.cacheRoutes()
	s.webuiRoutes()
}

// cacheTypes describes the cache's current per-layer types: the common
// type name per K/V, or "mixed" when layers differ, beside the per-layer
// lists.
func (s *Server) cacheTypes() map[string]any {
	var cfg kvcache.Config
	var rs, qs map[string]any
	if err := s.sched.Do(func(c *kvcache.Cache) error { cfg, rs, qs = c.Config(), recurrentState(c), queryStat(c); return nil }); err != nil {
		return nil
	}
	names := func(ts []tensor.Type) ([]string, string) {
		out := make([]string, len(ts))
		common := ""
		for i, t := range ts {
			out[i] = t.String()
			if i == 0 {
				common = out[i]
			} else if out[i] != common {
				common = "mixed"
			}
		}
		return out, common
	}
	k, ck := names(cfg.TypeK)
	v, cv := names(cfg.TypeV)
	out := map[string]any{
		"cache_type_k": ck, "cache_type_v": cv,
		"cache_types": map[string]any{
			"k": k, "v": v, "rotate": cfg.Rotate, "page_tokens": cfg.PageTokens, "key_channels": cfg.KeyChannels.String(),
			"key_encode": keyEncodeName(cfg.KeyQuery),
		},
	}
	if rs != nil {
		out["recurrent_state"] = rs
	}
	if qs != nil {
		out["query_stat"] = qs
	}
	return out
}

// cacheHeld is what a slot's (or the whole cache's) pages hold, beside
// the types its new tokens are written in: a policy or a slot-scoped
// requantization moves pages, and a slot's write types, away from the
// configured types.
type cacheHeld struct {
	Tokens int   `json:"tokens"`
	Bytes  int64 `json:"bytes"`
	// TypeK, TypeV: the type every held page has, "mixed", or "none"
	// when nothing is held.
	TypeK        string           `json:"type_k"`
	TypeV        string           `json:"type_v"`
	BytesByK     map[string]int64 `json:"bytes_by_type_k"`
	BytesByV     map[string]int64 `json:"bytes_by_type_v"`
	WriteTypeK   string           `json:"write_type_k"` // new tokens' type: one type, or "mixed" across layers (or slots)
	WriteTypeV   string           `json:"write_type_v"`
	writeK       typeNames
	writeV       typeNames
	heldK, heldV typeNames
}

// typeNames collects type names into one name: the common one, "mixed",
// or "" when empty.
type typeNames string

func (n *typeNames) add(t string) {
	switch *n {
	case "":
		*n = typeNames(t)
	case typeNames(t), "mixed":
	default:
		*n = "mixed"
	}
}

// add adds sequence seq's pages and write types to h. Call within Do.
func (h *cacheHeld) add(c *kvcache.Cache, seq int) {
	if h.BytesByK == nil {
		h.BytesByK, h.BytesByV = map[string]int64{}, map[string]int64{}
	}
	h.Tokens += c.Len(seq)
	k, v := c.SeqBytesByType(seq)
	for _, side := range []struct {
		m   map[tensor.Type]int64
		out map[string]int64
		n   *typeNames
	}{{k, h.BytesByK, &h.heldK}, {v, h.BytesByV, &h.heldV}} {
		for t, b := range side.m {
			side.out[t.String()] += b
			h.Bytes += b
			side.n.add(t.String())
		}
	}
	for l := 0; l < c.Config().Layers; l++ {
		wk, wv := c.WriteTypes(seq, l)
		h.writeK.add(wk.String())
		h.writeV.add(wv.String())
	}
	h.TypeK, h.TypeV = orNone(h.heldK), orNone(h.heldV)
	h.WriteTypeK, h.WriteTypeV = string(h.writeK), string(h.writeV)
}

func orNone(n typeNames) string {
	if n == "" {
		return "none"
	}
	return string(n)
}

// cacheHeldBySlot reads what every slot holds, and their total.
func (s *Server) cacheHeldBySlot() (total cacheHeld, slots []cacheHeld) {
	s.sched.Do(func(c *kvcache.Cache) error {
		n := c.Config().Seqs
		slots = make([]cacheHeld, n)
		for seq := 0; seq < n; seq++ {
			slots[seq].add(c, seq)
			total.add(c, seq)
		}
		return nil
	})
	return total, slots
}

// warnings lists what the server was started with that may not work as
// meant (a context beyond the model's training context).
func (s *Server) warnings() []string {
	out := []string{}
	if w := s.eng.ContextWarning(s.slotCtx); w != "" {
		out = append(out, w)
	}
	return out
}

// handleProps serves GET /props.
func (s *Server) handleProps(w http.ResponseWriter, r *http.Request) {
	g := s.defaultGen(apiNative)
	src := ""
	if s.chat != nil {
		src = s.chat.source()
	}
	props := map[string]any{
		"default_generation_settings": map[string]any{
			"id": 0, "id_task": -1, "n_ctx": s.slotCtx, "speculative": s.sched.Speculative() != nil, "is_processing": false,
			"params": s.generationSettings(g), "prompt": "",
			"next_token": map[string]any{"has_next_token": true, "has_new_line": false, "n_remain": -1, "n_decoded": 0, "stopping_word": ""},
		},
		"total_slots":        s.o.Slots,
		"n_ctx":              s.slotCtx * s.o.Slots,
		"n_ctx_slot":         s.slotCtx,
		"n_ctx_train":        s.eng.Model.NCtxTrain,
		"warnings":           s.warnings(),
		"model_path":         s.eng.Path,
		"model_alias":        s.modelName,
		"chat_template":      src,
		"chat_template_caps": map[string]any{},
		"modalities":         map[string]any{"vision": false, "audio": false},
		"build_info":         "kvserve " + Version + " (" + runtime.Version() + ")",
		"endpoint_slots":     !s.o.NoSlots,
		"endpoint_props":     false,
		"endpoint_metrics":   s.o.Metrics,
		"webui":              !s.o.NoWebUI,
		"bos_token":          s.tokenText(s.eng.BOS()),
		"eos_token":          s.tokenText(s.eng.Tok.EOS()),
		"is_sleeping":        false,
	}
	for k, v := range s.cacheTypes() {
		props[k] = v
	}
	if sp := s.sched.Speculative(); sp != nil {
		// kvserve's: how the server drafts.
		d := map[string]any{"type": "ngram", "n_max": sp.Max, "n_min": sp.Min, "ngram": sp.NGram}
		if sp.Draft != nil {
			d = map[string]any{"type": "draft", "draft_model": filepath.Base(sp.Draft.Path), "n_max": sp.Max, "n_min": sp.Min, "p_min": sp.PMin}
		}
		props["speculative"] = d
	}
	held, _ := s.cacheHeldBySlot()
	props["cache_held"] = held
	WriteJSON(w, http.StatusOK, props)
}

// handleSlots serves GET /slots (?fail_on_no_slot=1 answers 503 when no
// slot is idle).
func (s *Server) handleSlots(w http.ResponseWriter, r *http.Request) {
	infos := s.sched.Slots()
	_, held := s.cacheHeldBySlot()
	out := make([]map[string]any, 0, len(infos))
	idle := 0
	for _, si := range infos {
		if !si.Processing {
			idle++
		}
		slot := map[string]any{
			"id": si.ID, "id_task": -1, "n_ctx": s.slotCtx, "speculative": s.sched.Speculative() != nil,
			"is_processing":   si.Processing,
			"n_cached":        si.CachedToken,
			"n_prompt_tokens": si.Prompt,
			"next_token": map[string]any{
				"has_next_token": si.Processing, "n_decoded": si.Generated,
			},
		}
		if si.ID < len(held) {
			slot["cache"] = held[si.ID]
		}
		out = append(out, slot)
	}
	if f := r.URL.Query().Get("fail_on_no_slot"); (f == "1" || strings.EqualFold(f, "true")) && idle == 0 {
		WriteError(w, busy("no slot available"))
		return
	}
	WriteJSON(w, http.StatusOK, out)
}

// tokenText is a special token's text ("" for none).
func (s *Server) tokenText(id int) string {
	if id < 0 || id >= s.eng.Model.NVocab {
		return ""
	}
	return string(s.eng.Tok.Piece(id, true))
}

// keyEncodeName is --cache-key-encode's value for a cache's KeyQuery.
func keyEncodeName(query bool) string {
	if query {
		return "query"
	}
	return "mse"
}
