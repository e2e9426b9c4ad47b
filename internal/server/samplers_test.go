package server

import "testing"

// llama-server's sampler fields reach the sampler chain: a banned token
// (logit_bias false) never appears, a +bias token is forced, the
// "samplers" order is reported, and post_sampling_probs reports the
// chain's probabilities (summing to at most 1, the chosen token among
// them for top_k 1).
func TestSamplerFields(t *testing.T) {
	_, ts := newTestServer(t, Options{})
	greedy := postOK(t, ts.URL+"/completion", map[string]any{"prompt": "Once upon a time", "n_predict": 4, "temperature": 0, "return_tokens": true})
	toks := greedy["tokens"].([]any)
	first := int(num(toks[0]))
	r := postOK(t, ts.URL+"/completion", map[string]any{"prompt": "Once upon a time", "n_predict": 4, "temperature": 0,
		"return_tokens": true, "logit_bias": [][2]any{{first, false}}})
	for _, tk := range r["tokens"].([]any) {
		if int(num(tk)) == first {
			t.Fatalf("banned token %d generated: %v", first, r["tokens"])
		}
	}
	forced := first + 1
	r = postOK(t, ts.URL+"/completion", map[string]any{"prompt": "Once upon a time", "n_predict": 3, "temperature": 0,
		"return_tokens": true, "logit_bias": map[string]any{itoa(forced): 1000}})
	for _, tk := range r["tokens"].([]any) {
		if int(num(tk)) != forced {
			t.Fatalf("forced token %d not generated: %v", forced, r["tokens"])
		}
	}
	// Every sampler at once, with a custom order and post-sampling
	// probabilities.
	r = postOK(t, ts.URL+"/completion", map[string]any{"prompt": "Once upon a time", "n_predict": 6, "seed": 3,
		"typical_p": 0.9, "dynatemp_range": 0.3, "xtc_probability": 0.5, "xtc_threshold": 0.1, "top_n_sigma": 2,
		"dry_multiplier": 0.8, "dry_sequence_breakers": []string{"\n", "."}, "repeat_penalty": 1.1,
		"samplers": []string{"dry", "top_k", "penalties", "typ_p", "top_p", "min_p", "xtc", "temperature", "top_n_sigma"},
		"n_probs":  3, "post_sampling_probs": true})
	gs := r["generation_settings"].(map[string]any)
	if s := gs["samplers"].([]any); len(s) != 9 || s[0] != "dry" || s[2] != "penalties" {
		t.Errorf("samplers %v", s)
	}
	probs := r["completion_probabilities"].([]any)
	if len(probs) != int(num(r["tokens_predicted"])) {
		t.Fatalf("%d probability entries for %v tokens", len(probs), r["tokens_predicted"])
	}
	for _, e := range probs {
		m := e.(map[string]any)
		tops := m["top_probs"].([]any)
		sum := 0.0
		for _, tp := range tops {
			sum += num(tp.(map[string]any)["prob"])
		}
		if len(tops) == 0 || sum > 1+1e-5 || num(m["prob"]) <= 0 || num(m["prob"]) > 1 {
			t.Errorf("post-sampling entry %v", m)
		}
	}
	// Mirostat 2 and the one-letter sampler sequence.
	for _, body := range []map[string]any{
		{"prompt": "Hello", "n_predict": 4, "mirostat": 2, "mirostat_tau": 4, "seed": 1},
		{"prompt": "Hello", "n_predict": 4, "mirostat": 1, "seed": 1},
		{"prompt": "Hello", "n_predict": 4, "samplers": "kt", "seed": 1},
	} {
		r := postOK(t, ts.URL+"/completion", body)
		if num(r["tokens_predicted"]) != 4 && r["stop_type"] != "eos" {
			t.Errorf("%v: %v", body, r)
		}
	}
}
