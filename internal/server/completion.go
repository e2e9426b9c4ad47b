package server

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/sample"
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

// maxPrompts bounds the prompts of one /completion request.
const maxPrompts = 64

// prompts reads /completion's prompt, which may hold several prompts
// (an array whose items are strings, token arrays or objects, as
// llama-server takes): each is tokenized as prompt reads one.
func (s *Server) prompts(o *object, key string) ([][]int, *apiError) {
	raw, ok := o.raw(key)
	if !ok {
		return nil, badRequest("%q is required", key)
	}
	if kind(raw) == "an array" {
		if items, err := arrayItems(raw, maxPrompts+1); err == nil && len(items) > 1 && severalPrompts(items) {
			if len(items) > maxPrompts {
				return nil, badRequest("%q holds more than %d prompts", key, maxPrompts)
			}
			out := make([][]int, len(items))
			for i, it := range items {
				p, aerr := s.promptValue(it, fmt.Sprintf("%s[%d]", key, i), 1)
				if aerr != nil {
					return nil, aerr
				}
				out[i] = p
			}
			return out, nil
		}
	}
	p, aerr := s.promptValue(raw, key, 0)
	return [][]int{p}, aerr
}

// severalPrompts reports whether a prompt array is a list of prompts
// (some item is an array or object, or it holds only strings) rather than
// one prompt of token ids and strings.
func severalPrompts(items []json.RawMessage) bool {
	for _, it := range items {
		switch kind(it) {
		case "an array", "an object":
			return true
		case "a number":
			return false
		}
	}
	return true
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
	reqs, g, aerr := s.decodeCompletions(body, a)
	if aerr != nil {
		return nil, g, aerr
	}
	return reqs[0], g, nil
}

// decodeCompletions is decodeCompletion for a request that may hold
// several prompts (/completion): one engine request per prompt.
func (s *Server) decodeCompletions(body []byte, a api) ([]*engine.Request, genOptions, *apiError) {
	o, aerr := parseObject(body)
	if aerr != nil {
		return nil, genOptions{}, aerr
	}
	g := s.parseGen(o, a)
	if o.err != nil {
		return nil, g, o.err
	}
	var all [][]int
	switch a {
	case apiOAIChat:
		prompt, plan, aerr := s.renderChat(o)
		if aerr != nil {
			return nil, g, aerr
		}
		if aerr = g.usePlan(plan); aerr != nil {
			return nil, g, aerr
		}
		g.turnEnd = s.turnEnd(s.chat)
		toks, aerr := s.encodePrompt(prompt, true, 0)
		if aerr != nil {
			return nil, g, aerr
		}
		all = [][]int{toks}
	case apiNative:
		if all, aerr = s.prompts(o, "prompt"); aerr != nil {
			return nil, g, aerr
		}
	case apiOAIText:
		// OpenAI's prompt: a string, a token array, or a list of them
		// (one choice each).
		if all, aerr = s.prompts(o, "prompt"); aerr != nil {
			return nil, g, aerr
		}
	default:
		toks, aerr := s.prompt(o, "prompt")
		if aerr != nil {
			return nil, g, aerr
		}
		all = [][]int{toks}
	}
	reqs := make([]*engine.Request, len(all))
	for i, toks := range all {
		if reqs[i], aerr = s.request(toks, g); aerr != nil {
			return nil, g, aerr
		}
	}
	return reqs, g, nil
}

// serveCompletion reads, decodes, admits and runs a completion request of
// any of the three APIs, and answers it.
func (s *Server) serveCompletion(w http.ResponseWriter, r *http.Request, a api) {
	body, aerr := readBody(r)
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	reqs, g, aerr := s.decodeCompletions(body, a)
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	if a == apiNative && len(reqs) > 1 {
		s.serveMulti(w, r, reqs, g)
		return
	}
	if len(reqs) > 1 || g.n > 1 {
		s.serveChoices(w, r, reqs, g)
		return
	}
	req := reqs[0]
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
	stages := p.Samplers
	if stages == nil {
		stages = sample.DefaultStages()
	}
	typ := p.TypicalP
	if typ == 0 {
		typ = 1
	}
	dryLastN := p.DRYPenaltyLastN
	if dryLastN == -1 {
		dryLastN = s.eng.Model.NCtxTrain // llama-server reports the resolved window
	}
	breakers := p.DRYSequenceBreakers
	if breakers == nil {
		breakers = []string{}
	}
	bias := make([][2]any, 0, len(p.LogitBias))
	for _, b := range p.LogitBias {
		var v any = b.Bias
		if math.IsInf(float64(b.Bias), -1) {
			v = false
		}
		bias = append(bias, [2]any{b.Token, v})
	}
	stop := g.stop
	if stop == nil {
		stop = []string{}
	}
	return map[string]any{
		"n_ctx":                 s.slotCtx,
		"model":                 s.modelName,
		"n_predict":             g.nPredict,
		"max_tokens":            g.nPredict,
		"seed":                  p.Seed,
		"temperature":           p.Temperature,
		"top_k":                 p.TopK,
		"top_p":                 p.TopP,
		"min_p":                 p.MinP,
		"min_keep":              p.MinKeep,
		"repeat_last_n":         p.RepeatLastN,
		"repeat_penalty":        p.RepeatPenalty,
		"presence_penalty":      p.PresencePenalty,
		"frequency_penalty":     p.FrequencyPenalty,
		"stop":                  stop,
		"ignore_eos":            g.ignoreEOS,
		"stream":                g.stream,
		"n_probs":               g.nProbs,
		"cache_prompt":          g.cachePrompt,
		"n_keep":                g.nKeep,
		"samplers":              sample.StageNames(stages),
		"typical_p":             typ,
		"dynatemp_range":        p.DynatempRange,
		"dynatemp_exponent":     p.DynatempExponent,
		"xtc_probability":       p.XTCProbability,
		"xtc_threshold":         p.XTCThreshold,
		"top_n_sigma":           p.TopNSigma,
		"mirostat":              p.Mirostat,
		"mirostat_tau":          p.MirostatTau,
		"mirostat_eta":          p.MirostatEta,
		"dry_multiplier":        p.DRYMultiplier,
		"dry_base":              p.DRYBase,
		"dry_allowed_length":    p.DRYAllowedLength,
		"dry_penalty_last_n":    dryLastN,
		"dry_sequence_breakers": breakers,
		"logit_bias":            bias,
		"post_sampling_probs":   p.PostSamplingProbs,
		"n_discard":             0,
		"timings_per_token":     g.timingsPerToken,
		"t_max_predict_ms":      g.maxPredictMs,
		"n_indent":              g.nIndent,
		"lora":                  s.loraSettings(g.lora),
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
		"tokens_cached":       res.SlotTokens,
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
		m["completion_probabilities"] = s.nativeProbs(out, g)
	}
	if len(g.fields) > 0 {
		return nestedFields(m, g.fields)
	}
	return m
}

// nestedFields keeps the values at the given paths ("a/b" is m["a"]["b"]),
// keyed by their paths, as llama-server's response_fields does; a path
// that is not there is left out.
func nestedFields(m map[string]any, paths []string) map[string]any {
	out := map[string]any{}
	for _, p := range paths {
		var cur any = m
		ok := true
		for _, k := range strings.Split(p, "/") {
			mm, isMap := cur.(map[string]any)
			if !isMap {
				ok = false
				break
			}
			if cur, ok = mm[k]; !ok {
				break
			}
		}
		if ok {
			out[p] = cur
		}
	}
	return out
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
			"id_slot":          st.slot,
			"tokens_predicted": n,
			"tokens_evaluated": len(req.Prompt),
		}
		if g.nProbs > 0 {
			chunk["completion_probabilities"] = s.nativeProbs(st.tokens, g)
		}
		if st.timings != nil {
			chunk["timings"] = timings(st.timings)
		}
		if ev.data(chunk) != nil {
			return // the client went away: close() cancels the request
		}
	}
}
