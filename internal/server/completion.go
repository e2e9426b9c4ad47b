package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/kvserve/kvserve/internal/engine"
)

// prompt reads a completion prompt: a string, an array of token ids, a
// mixed array of strings and token ids (llama-server's form: strings are
// tokenized with special tokens parsed, BOS added only when the first
// element is a string and the model adds one), a one-element array
// holding any of those, or {"prompt_string": ...}. Several prompts in
// one request are refused, and so is a prompt that cannot fit a slot's
// context (before it is tokenized).
func (s *Server) prompt(o *object, key string) ([]int, *apiError) {
	raw, ok := o.raw(key)
	if !ok {
		return nil, badRequest("%q is required", key)
	}
	return s.promptValue(raw, key, 0)
}

func (s *Server) promptValue(raw json.RawMessage, key string, depth int) ([]int, *apiError) {
	switch kind(raw) {
	case "a string":
		var str string
		json.Unmarshal(raw, &str)
		return s.encodePrompt(str, true, 0)
	case "an object":
		po, err := parseObject(raw)
		if err != nil {
			return nil, badRequest("%q: %s", key, err.Message)
		}
		if po.nonEmpty("multimodal_data") {
			return nil, badRequest("multimodal prompts are not supported")
		}
		str := po.string("prompt_string", "")
		if po.err != nil {
			return nil, badRequest("%q: %s", key, po.err.Message)
		}
		return s.encodePrompt(str, true, 0)
	case "an array":
		items, err := arrayItems(raw, s.maxPrompt()+1)
		if _, over := err.(errTooMany); over {
			return nil, s.exceedContext(fmt.Sprintf("more than %d", s.maxPrompt()))
		}
		if err != nil {
			return nil, badRequest("%q %v", key, err)
		}
		if len(items) == 0 {
			return nil, badRequest("%q is an empty array", key)
		}
		hasNum, nested, nStr := false, false, 0
		for _, it := range items {
			switch kind(it) {
			case "a number":
				hasNum = true
			case "a string":
				nStr++
			case "an array", "an object":
				nested = true
			default:
				return nil, badRequest("%q may hold only strings and token ids, not %s", key, kind(it))
			}
		}
		if !hasNum && !nested && nStr == 1 || nested && len(items) == 1 {
			if depth > 0 {
				return nil, badRequest("%q: nested prompt arrays are not supported", key)
			}
			return s.promptValue(items[0], key, depth+1)
		}
		if nested || !hasNum {
			return nil, badRequest("%q holds %d prompts; kvserve serves one prompt per request", key, len(items))
		}
		var toks []int
		for i, it := range items {
			if kind(it) == "a string" {
				var str string
				json.Unmarshal(it, &str)
				t, aerr := s.encodePrompt(str, i == 0, len(toks))
				if aerr != nil {
					return nil, aerr
				}
				toks = append(toks, t...)
				continue
			}
			v, err := parseInt(it)
			if err != nil {
				return nil, badRequest("%q[%d]: a token id %v", key, i, err)
			}
			if v < 0 || v >= int64(s.eng.Model.NVocab) {
				return nil, badRequest("%q[%d]: token id %d is out of range (the vocabulary has %d tokens)", key, i, v, s.eng.Model.NVocab)
			}
			toks = append(toks, int(v))
		}
		return toks, nil
	}
	return nil, badRequest("%q must be a string or an array of token ids, not %s", key, kind(raw))
}

// decodeCompletion turns the body of a completion request (a = which
// API: /completion, /v1/completions or /v1/chat/completions) into the
// engine request and its generation options, or the error to answer.
func (s *Server) decodeCompletion(body []byte, a api) (*engine.Request, genOptions, *apiError) {
	o, aerr := parseObject(body)
	if aerr != nil {
		return nil, genOptions{}, aerr
	}
	g := s.parseGen(o, a)
	if o.err != nil {
		return nil, g, o.err
	}
	var toks []int
	if a == apiOAIChat {
		prompt, plan, aerr := s.renderChat(o)
		if aerr != nil {
			return nil, g, aerr
		}
		if aerr = g.usePlan(plan); aerr != nil {
			return nil, g, aerr
		}
		g.turnEnd = s.turnEnd(s.chat)
		if toks, aerr = s.encodePrompt(prompt, true, 0); aerr != nil {
			return nil, g, aerr
		}
	} else if toks, aerr = s.prompt(o, "prompt"); aerr != nil {
		return nil, g, aerr
	}
	req, aerr := s.request(toks, g)
	return req, g, aerr
}

// serveCompletion reads, decodes, admits and runs a completion request of
// any of the three APIs, and answers it.
func (s *Server) serveCompletion(w http.ResponseWriter, r *http.Request, a api) {
	body, aerr := readBody(r)
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	req, g, aerr := s.decodeCompletion(body, a)
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	rn, aerr := s.start(r.Context(), req)
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	defer rn.close()
	if a == apiNative {
		s.answerNative(w, rn, req, g)
	} else {
		s.answerOAI(w, rn, g)
	}
}

// generationSettings is llama-server's generation_settings object.
func (s *Server) generationSettings(g genOptions) map[string]any {
	p := g.sample
	stop := g.stop
	if stop == nil {
		stop = []string{}
	}
	return map[string]any{
		"n_ctx":             s.slotCtx,
		"model":             s.modelName,
		"n_predict":         g.nPredict,
		"max_tokens":        g.nPredict,
		"seed":              p.Seed,
		"temperature":       p.Temperature,
		"top_k":             p.TopK,
		"top_p":             p.TopP,
		"min_p":             p.MinP,
		"min_keep":          p.MinKeep,
		"repeat_last_n":     p.RepeatLastN,
		"repeat_penalty":    p.RepeatPenalty,
		"presence_penalty":  p.PresencePenalty,
		"frequency_penalty": p.FrequencyPenalty,
		"stop":              stop,
		"ignore_eos":        g.ignoreEOS,
		"stream":            g.stream,
		"n_probs":           g.nProbs,
		"cache_prompt":      g.cachePrompt,
		"n_keep":            g.nKeep,
		"samplers":          []string{"penalties", "top_k", "top_p", "min_p", "temperature"},
	}
}

// handleCompletion serves POST /completion (llama-server's native API).
func (s *Server) handleCompletion(w http.ResponseWriter, r *http.Request) {
	s.serveCompletion(w, r, apiNative)
}

// answerNative answers a running /completion request.
func (s *Server) answerNative(w http.ResponseWriter, rn *run, req *engine.Request, g genOptions) {
	if g.stream {
		s.streamNative(w, rn, req, g)
		return
	}
	text, out, res, aerr := s.collect(rn)
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	WriteJSON(w, http.StatusOK, s.nativeFinal(req, g, text, out, res, false))
}

// nativeFinal is /completion's final response (also the last event of a
// stream, where content holds only the text not sent before).
func (s *Server) nativeFinal(req *engine.Request, g genOptions, text string, out []tokenOut, res *engine.Result, stream bool) map[string]any {
	toks := []int{}
	if g.returnTokens && !stream {
		toks = tokenIDs(out)
	}
	m := map[string]any{
		"index":               0,
		"content":             text,
		"tokens":              toks,
		"id_slot":             res.SlotID,
		"stop":                true,
		"model":               s.modelName,
		"tokens_predicted":    res.PredictedTokens,
		"tokens_evaluated":    res.PromptTokens,
		"tokens_cached":       res.CachedTokens,
		"generation_settings": s.generationSettings(g),
		"prompt":              s.eng.Tok.Decode(req.Prompt, true),
		"has_new_line":        strings.Contains(res.Text, "\n"),
		"truncated":           res.Truncated,
		"context_shifts":      res.ContextShifts,
		"stop_type":           res.StopType,
		"stopping_word":       res.StoppingWord,
		"timings":             timings(res),
	}
	if g.nProbs > 0 && !stream {
		m["completion_probabilities"] = s.probEntries(out)
	}
	return m
}

// streamNative streams /completion: one event per generated token with
// content, tokens, stop=false (and completion_probabilities when
// n_probs > 0), then the final response with stop=true. No [DONE]
// follows (as llama-server's native API).
func (s *Server) streamNative(w http.ResponseWriter, rn *run, req *engine.Request, g genOptions) {
	ev := newSSE(w)
	n := 0
	for {
		st, aerr := s.next(rn)
		if aerr != nil {
			ev.error(aerr)
			return
		}
		if st.res != nil {
			ev.data(s.nativeFinal(req, g, st.text, nil, st.res, true))
			return
		}
		if len(st.tokens) == 0 {
			continue
		}
		n += len(st.tokens)
		chunk := map[string]any{
			"index":            0,
			"content":          st.text,
			"tokens":           tokenIDs(st.tokens),
			"stop":             false,
			"id_slot":          -1,
			"tokens_predicted": n,
			"tokens_evaluated": len(req.Prompt),
		}
		if g.nProbs > 0 {
			chunk["completion_probabilities"] = s.probEntries(st.tokens)
		}
		if ev.data(chunk) != nil {
			return // the client went away: close() cancels the request
		}
	}
}
