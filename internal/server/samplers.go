package server

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/kvserve/kvserve/internal/sample"
)

// maxLogitBias bounds the entries of "logit_bias".
const maxLogitBias = 4096

// parseSamplers reads llama-server's sampler fields beyond the default
// chain: typical_p, dynatemp_*, xtc_*, top_n_sigma, mirostat*, dry_*,
// logit_bias, samplers and post_sampling_probs.
func (s *Server) parseSamplers(o *object, p *sample.Params) {
	const big = 1e30
	f32 := func(key string, def float32) float32 { return float32(o.float(key, float64(def), -big, big)) }
	if o.has("typical_p") {
		p.TypicalP = f32("typical_p", p.TypicalP)
		if p.TypicalP <= 0 {
			p.TypicalP = math.SmallestNonzeroFloat32 // llama.cpp's 0 keeps one token; sample's 0 means off
		}
	}
	p.DynatempRange = f32("dynatemp_range", p.DynatempRange)
	p.DynatempExponent = f32("dynatemp_exponent", p.DynatempExponent)
	p.XTCProbability = f32("xtc_probability", p.XTCProbability)
	p.XTCThreshold = f32("xtc_threshold", p.XTCThreshold)
	p.TopNSigma = f32("top_n_sigma", p.TopNSigma)
	p.Mirostat = o.int("mirostat", p.Mirostat, 0, 2)
	p.MirostatTau = f32("mirostat_tau", p.MirostatTau)
	p.MirostatEta = f32("mirostat_eta", p.MirostatEta)
	p.DRYMultiplier = f32("dry_multiplier", p.DRYMultiplier)
	p.DRYBase = f32("dry_base", p.DRYBase)
	p.DRYAllowedLength = o.int("dry_allowed_length", p.DRYAllowedLength, 0, math.MaxInt32)
	p.DRYPenaltyLastN = o.int("dry_penalty_last_n", p.DRYPenaltyLastN, -1, math.MaxInt32)
	if o.has("dry_sequence_breakers") {
		br := o.strings("dry_sequence_breakers", 64, 256)
		if o.err == nil && len(br) == 0 {
			o.fail(`"dry_sequence_breakers" must not be empty`)
		}
		p.DRYSequenceBreakers = br
	}
	p.PostSamplingProbs = o.bool("post_sampling_probs", p.PostSamplingProbs)
	if raw, ok := o.raw("samplers"); ok && o.err == nil {
		var st []sample.Stage
		var err error
		if kind(raw) == "a string" {
			st, err = sample.ParseStageChars(o.string("samplers", ""))
		} else {
			names := o.strings("samplers", 32, 32)
			if o.err != nil {
				return
			}
			st, err = sample.ParseStages(names)
		}
		if err != nil {
			o.fail(`"samplers": %s`, strings.TrimPrefix(err.Error(), sample.ErrInvalidParams.Error()+": "))
			return
		}
		p.Samplers = st
	}
	if o.has("logit_bias") && o.err == nil {
		p.LogitBias = s.parseLogitBias(o)
	}
}

// parseLogitBias reads "logit_bias" in llama-server's forms: an array of
// [token, bias] pairs or an object {token: bias}, where a token is an id
// (a number, or a string of digits as OpenAI sends) or a text whose every
// token gets the bias, and the bias is a number or false (banned).
func (s *Server) parseLogitBias(o *object) []sample.LogitBias {
	raw, _ := o.raw("logit_bias")
	nv, encode := math.MaxInt32, func(string) []int { return nil }
	if s.eng != nil { // (parsing tests run without a model)
		nv, encode = s.eng.Model.NVocab, func(t string) []int { return s.eng.Tok.Encode(t, false, false) }
	}
	var out []sample.LogitBias
	add := func(key any, bias any) bool {
		var b float32
		switch v := bias.(type) {
		case bool:
			if v {
				o.fail(`"logit_bias": a bias is a number, or false to ban the token; true means nothing`)
				return false
			}
			b = float32(math.Inf(-1))
		case float64:
			if math.IsInf(v, 0) || math.IsNaN(v) {
				o.fail(`"logit_bias": bias %v is not finite`, v)
				return false
			}
			b = float32(v)
		default:
			o.fail(`"logit_bias": a bias must be a number or false, not %T`, bias)
			return false
		}
		var ids []int
		switch k := key.(type) {
		case float64:
			if k != math.Trunc(k) {
				o.fail(`"logit_bias": token %v is not an integer`, k)
				return false
			}
			ids = []int{int(k)}
		case string:
			if id, err := strconv.Atoi(k); err == nil {
				ids = []int{id}
			} else {
				ids = encode(k)
			}
		default:
			o.fail(`"logit_bias": a token must be an id or a string, not %T`, key)
			return false
		}
		for _, id := range ids {
			if id < 0 || id >= nv {
				o.fail(`"logit_bias": token id %d is out of range (the vocabulary has %d tokens)`, id, nv)
				return false
			}
			out = append(out, sample.LogitBias{Token: int32(id), Bias: b})
		}
		return true
	}
	switch kind(raw) {
	case "an array":
		items, err := arrayItems(raw, maxLogitBias)
		if err != nil {
			o.fail(`"logit_bias" %v`, err)
			return nil
		}
		for i, it := range items {
			var pair []any
			if err := json.Unmarshal(it, &pair); err != nil || len(pair) != 2 {
				o.fail(`"logit_bias"[%d] must be a [token, bias] pair`, i)
				return nil
			}
			if !add(pair[0], pair[1]) {
				return nil
			}
		}
	case "an object":
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			o.fail(`"logit_bias": %s`, jsonErr(err))
			return nil
		}
		if len(m) > maxLogitBias {
			o.fail(`"logit_bias" has more than %d entries`, maxLogitBias)
			return nil
		}
		for k, v := range m {
			if !add(k, v) {
				return nil
			}
		}
	default:
		o.fail(`"logit_bias" must be an array of [token, bias] pairs or an object, not %s`, kind(raw))
	}
	return out
}

// breakerCache holds DRY's processed sequence breakers by breaker list
// (processing scans the whole vocabulary).
type breakerCache struct {
	mu sync.Mutex
	m  map[string]sample.Breakers
}

// dryBreakers returns the processed breakers for p's sequence breakers.
func (s *Server) dryBreakers(strs []string) sample.Breakers {
	key := strings.Join(strs, "\x00")
	s.breakers.mu.Lock()
	defer s.breakers.mu.Unlock()
	if b, ok := s.breakers.m[key]; ok {
		return b
	}
	tok := s.eng.Tok
	b := sample.DRYBreakers(strs, s.eng.Model.NVocab, func(id int) string { return string(tok.Piece(id, true)) },
		func(t string) []int { return tok.Encode(t, false, false) })
	if s.breakers.m == nil || len(s.breakers.m) >= 64 {
		s.breakers.m = map[string]sample.Breakers{}
	}
	s.breakers.m[key] = b
	return b
}

// nativeProbs is /completion's completion_probabilities: log-probabilities
// of the plain softmax, or with post_sampling_probs llama-server's
// probabilities after the sampler chain ("prob", "top_probs").
func (s *Server) nativeProbs(toks []tokenOut, g genOptions) any {
	if !g.sample.PostSamplingProbs {
		return s.probEntries(toks)
	}
	type top struct {
		ID    int     `json:"id"`
		Token string  `json:"token"`
		Prob  float64 `json:"prob"`
		Bytes []int   `json:"bytes"`
	}
	type entry struct {
		ID       int     `json:"id"`
		Token    string  `json:"token"`
		Prob     float64 `json:"prob"`
		Bytes    []int   `json:"bytes"`
		TopProbs []top   `json:"top_probs"`
	}
	out := make([]entry, 0, len(toks))
	for _, t := range toks {
		txt, bs := s.piece(t.id)
		e := entry{ID: t.id, Token: txt, Prob: math.Exp(t.logprob), Bytes: bs, TopProbs: []top{}}
		for _, tp := range t.top {
			tt, tb := s.piece(tp.ID)
			e.TopProbs = append(e.TopProbs, top{ID: tp.ID, Token: tt, Prob: tp.Prob, Bytes: tb})
		}
		out = append(out, e)
	}
	return out
}
