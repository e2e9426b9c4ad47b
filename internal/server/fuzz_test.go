package server

import "testing"

// FuzzRequestParsing: any body gives a parsed request or a 400, never a
// panic.
func FuzzRequestParsing(f *testing.F) {
	for _, seed := range []string{
		`{"prompt":"x","n_predict":5,"temperature":0.5,"stop":["a","b"],"seed":-1}`,
		`{"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"logprobs":true,"top_logprobs":2}`,
		`{"n":1,"response_format":{"type":"text"},"stream_options":{"include_usage":true}}`,
		`{"seed":18446744073709551615,"top_k":1e3,"n_predict":-2}`,
		`{"logit_bias":{},"tools":[],"echo":false,"typical_p":1}`,
		`{"logit_bias":[[5,false],["hi",-2]],"samplers":["top_k","temp"],"mirostat":2,"dry_multiplier":0.8}`,
		`{"logit_bias":{"12":1.5},"samplers":"kt","post_sampling_probs":true,"dry_sequence_breakers":["\n"]}`,
		`{`, `[]`, `null`, `{"a":{"b":[1,2,{"c":null}]}}`,
	} {
		f.Add([]byte(seed))
	}
	s := New(Options{Slots: 4, Logger: quietLog})
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := parseObject(body)
		if err != nil {
			if err.Status != 400 || err.Message == "" {
				t.Fatalf("bad error %+v", err)
			}
			return
		}
		for _, a := range []api{apiNative, apiOAIText, apiOAIChat} {
			oc := &object{m: o.m}
			g := s.parseGen(oc, a)
			if oc.err == nil && (g.slotID < -1 || g.slotID >= 4 || g.nProbs < 0 || g.nPredict < -1) {
				t.Fatalf("accepted out-of-range values: %+v", g)
			}
			if oc.err != nil && oc.err.Status != 400 {
				t.Fatalf("bad error %+v", oc.err)
			}
		}
		parseMessages(&object{m: o.m})
		checkSlotFilename(string(body))
	})
}
