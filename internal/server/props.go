package server

import (
	"net/http"
	"runtime"

	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/sample"
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
	for _, p := range []string{"/health", "/v1/health", "/models", "/v1/models"} {
		s.public[p] = true
	}
	s.HandleFunc("GET /health", health)
	s.HandleFunc("GET /v1/health", health)
	s.HandleFunc("GET /props", s.handleProps)
	s.HandleFunc("GET /models", s.handleModels)
	s.HandleFunc("GET /v1/models", s.handleModels)
	for _, p := range []string{"/completion", "/completions"} {
		s.HandleFunc("POST "+p, s.handleCompletion)
	}
	s.HandleFunc("POST /v1/completions", s.handleOAICompletion)
	s.HandleFunc("POST /chat/completions", s.handleChat)
	s.HandleFunc("POST /v1/chat/completions", s.handleChat)
	s.HandleFunc("POST /tokenize", s.handleTokenize)
	s.HandleFunc("POST /detokenize", s.handleDetokenize)
	s.HandleFunc("POST /apply-template", s.handleApplyTemplate)
	s.HandleFunc("GET /slots", s.handleSlots)
	s.HandleFunc("POST /slots/{id}", s.handleSlotAction)
	s.HandleFunc("GET /metrics", s.handleMetrics)
	s.cacheRoutes()
	s.webuiRoutes()
}

// cacheTypes describes the cache's current per-layer types: the common
// type name per K/V, or "mixed" when layers differ, beside the per-layer
// lists.
func (s *Server) cacheTypes() map[string]any {
	var cfg kvcache.Config
	if err := s.sched.Do(func(c *kvcache.Cache) error { cfg = c.Config(); return nil }); err != nil {
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
	return map[string]any{
		"cache_type_k": ck, "cache_type_v": cv,
		"cache_types": map[string]any{
			"k": k, "v": v, "rotate": cfg.Rotate, "page_tokens": cfg.PageTokens, "key_channels": cfg.KeyChannels.String(),
		},
	}
}

// handleProps serves GET /props.
func (s *Server) handleProps(w http.ResponseWriter, r *http.Request) {
	g := genOptions{sample: sample.DefaultParams(), nPredict: -1, slotID: -1, cachePrompt: true}
	src := ""
	if s.chat != nil {
		src = s.chat.source()
	}
	props := map[string]any{
		"default_generation_settings": map[string]any{
			"id": 0, "id_task": -1, "n_ctx": s.slotCtx, "speculative": false, "is_processing": false,
			"params": s.generationSettings(g), "prompt": "",
			"next_token": map[string]any{"has_next_token": true, "has_new_line": false, "n_remain": -1, "n_decoded": 0, "stopping_word": ""},
		},
		"total_slots":        s.o.Slots,
		"n_ctx":              s.slotCtx * s.o.Slots,
		"n_ctx_slot":         s.slotCtx,
		"model_path":         s.eng.Path,
		"model_alias":        s.modelName,
		"chat_template":      src,
		"chat_template_caps": map[string]any{},
		"modalities":         map[string]any{"vision": false, "audio": false},
		"build_info":         "kvserve " + Version + " (" + runtime.Version() + ")",
		"is_sleeping":        false,
	}
	for k, v := range s.cacheTypes() {
		props[k] = v
	}
	WriteJSON(w, http.StatusOK, props)
}

// handleSlots serves GET /slots (?fail_on_no_slot=1 answers 503 when no
// slot is idle).
func (s *Server) handleSlots(w http.ResponseWriter, r *http.Request) {
	infos := s.sched.Slots()
	out := make([]map[string]any, 0, len(infos))
	idle := 0
	for _, si := range infos {
		if !si.Processing {
			idle++
		}
		out = append(out, map[string]any{
			"id": si.ID, "id_task": -1, "n_ctx": s.slotCtx, "speculative": false,
			"is_processing":   si.Processing,
			"n_cached":        si.CachedToken,
			"n_prompt_tokens": si.Prompt,
			"next_token": map[string]any{
				"has_next_token": si.Processing, "n_decoded": si.Generated,
			},
		})
	}
	if r.URL.Query().Get("fail_on_no_slot") == "1" && idle == 0 {
		WriteError(w, busy("no slot available"))
		return
	}
	WriteJSON(w, http.StatusOK, out)
}
