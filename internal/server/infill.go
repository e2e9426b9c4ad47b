package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/kvserve/kvserve/internal/engine"
)

// POST /infill: fill-in-the-middle code completion, as llama-server's.
// Fields: "input_prefix", "input_suffix" (text before and after the
// cursor), "input_extra" (context files, [{"filename", "text"}]), "prompt"
// (text put after the prefix), and every /completion field; the answer is
// /completion's (streamed with "stream"). The prompt is built from the
// model's FIM tokens (GGUF keys tokenizer.ggml.fim_{pre,suf,mid,rep,sep}_token_id,
// else the token texts llama.cpp recognizes, "<|fim_prefix|>", "<PRE>", ...):
//
//	[FIM_REP "myproject\n"] ([FIM_SEP filename "\n"] | "\n\n--- snippet ---\n\n") text ... [FIM_SEP "filename\n"]
//	[BOS] FIM_PRE prefix prompt FIM_SUF suffix FIM_MID
//
// with the prefix cut to its last 3/4 of a batch, the suffix to what is
// left of a quarter batch, and the context files to their last tokens that
// leave room for the batch and twice n_predict, as llama-server does. A
// model without prefix, suffix and middle tokens gets 501
// not_supported_error naming the missing ones.

// fimTokens are a model's fill-in-the-middle tokens (-1: none).
type fimTokens struct{ pre, suf, mid, rep, sep int }

// fim finds the model's FIM tokens.
func (s *Server) fim() fimTokens {
	e := s.eng
	find := func(keys []string, texts []string) int {
		for _, k := range keys {
			if v, ok := e.File.Int("tokenizer.ggml." + k); ok && v >= 0 && int(v) < e.Model.NVocab {
				return int(v)
			}
		}
		for _, t := range texts {
			if id, ok := e.Tok.TokenID(t); ok {
				return id
			}
		}
		return -1
	}
	return fimTokens{
		pre: find([]string{"fim_pre_token_id", "prefix_token_id"}, []string{"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>"}),
		suf: find([]string{"fim_suf_token_id", "suffix_token_id"}, []string{"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>"}),
		mid: find([]string{"fim_mid_token_id", "middle_token_id"}, []string{"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>"}),
		rep: find([]string{"fim_rep_token_id"}, []string{"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"}),
		sep: find([]string{"fim_sep_token_id"}, []string{"<|file_sep|>"}),
	}
}

// maxInfillExtra bounds "input_extra".
const maxInfillExtra = 1024

// infillPrompt builds the prompt tokens of an infill request.
func (s *Server) infillPrompt(o *object, g genOptions) ([]int, *apiError) {
	f := s.fim()
	var missing []string
	for _, m := range []struct {
		id   int
		what string
	}{{f.pre, "prefix"}, {f.suf, "suffix"}, {f.mid, "middle"}} {
		if m.id < 0 {
			missing = append(missing, m.what+" token is missing")
		}
	}
	if len(missing) > 0 {
		return nil, errorf(http.StatusNotImplemented, TypeNotSupported, "Infill is not supported by this model: %s", strings.Join(missing, ", "))
	}
	prefix := o.string("input_prefix", "")
	suffix := o.string("input_suffix", "")
	if o.err != nil {
		return nil, o.err
	}
	tok := s.eng.Tok
	limit := s.maxPrompt()
	enc := func(text string, parseSpecial bool) ([]int, *apiError) {
		t, ok := tok.EncodeLimit(text, false, parseSpecial, limit)
		if !ok {
			return nil, s.exceedContext("more than " + strconv.Itoa(limit))
		}
		return t, nil
	}
	var extra []int
	if f.rep >= 0 {
		t, _ := enc("myproject\n", false)
		extra = append(append(extra, f.rep), t...)
	}
	if items, ok := o.array("input_extra", maxInfillExtra); ok {
		for i, it := range items {
			co, err := parseObject(it)
			if err != nil {
				return nil, badRequest(`"input_extra"[%d] must be an object {"filename": string, "text": string}`, i)
			}
			raw, has := co.raw("text")
			if !has || kind(raw) != "a string" {
				return nil, badRequest(`"input_extra"[%d] must contain a "text" field with a string value`, i)
			}
			var text string
			json.Unmarshal(raw, &text)
			name := co.string("filename", "tmp")
			if co.err != nil {
				return nil, badRequest(`"input_extra"[%d]: "filename" must be a string`, i)
			}
			if f.sep >= 0 {
				t, aerr := enc(name+"\n", false)
				if aerr != nil {
					return nil, aerr
				}
				extra = append(append(extra, f.sep), t...)
			} else {
				t, _ := enc("\n\n--- snippet ---\n\n", false)
				extra = append(extra, t...)
			}
			t, aerr := enc(text, false)
			if aerr != nil {
				return nil, aerr
			}
			if extra = append(extra, t...); len(extra) > limit {
				return nil, s.exceedContext("more than " + strconv.Itoa(limit))
			}
		}
	}
	if o.err != nil {
		return nil, o.err
	}
	if f.sep >= 0 {
		t, _ := enc("filename\n", false)
		extra = append(append(extra, f.sep), t...)
	}
	var prompt []int
	if raw, ok := o.raw("prompt"); ok && !isNull(raw) {
		var aerr *apiError
		if kind(raw) == "a string" {
			var str string
			json.Unmarshal(raw, &str)
			prompt, aerr = enc(str, true)
		} else {
			prompt, aerr = s.promptValue(raw, "prompt", 0)
		}
		if aerr != nil {
			return nil, aerr
		}
	}
	pre, aerr := enc(prefix, false)
	if aerr != nil {
		return nil, aerr
	}
	suf, aerr := enc(suffix, false)
	if aerr != nil {
		return nil, aerr
	}
	nBatch := s.o.Batch
	if nBatch <= 0 {
		nBatch = engine.DefaultBatch
	}
	takePre := min(len(pre), 3*(nBatch/4))
	takeSuf := min(len(suf), max(0, nBatch/4-(2+len(prompt))))
	takeExtra := min(max(0, s.slotCtx-nBatch-2*g.nPredict), len(extra))
	pre = pre[len(pre)-takePre:]
	suf = suf[:takeSuf]
	out := make([]int, 0, takeExtra+takePre+takeSuf+len(prompt)+5)
	out = append(out, extra[len(extra)-takeExtra:]...)
	if tok.AddBOS() {
		out = append(out, tok.BOS())
	}
	out = append(out, f.pre)
	out = append(out, pre...)
	out = append(out, prompt...)
	out = append(out, f.suf)
	out = append(out, suf...)
	out = append(out, f.mid)
	return out, nil
}

// handleInfill serves POST /infill.
func (s *Server) handleInfill(w http.ResponseWriter, r *http.Request) {
	o := &object{}
	if !ReadJSON(w, r, o) {
		return
	}
	g := s.parseGen(o, apiNative)
	if o.err != nil {
		WriteError(w, o.err)
		return
	}
	toks, aerr := s.infillPrompt(o, g)
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	req, aerr := s.request(toks, g)
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
	s.answerNative(w, rn, req, g)
}
