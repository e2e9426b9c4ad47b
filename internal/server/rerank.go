package server

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/kvserve/kvserve/internal/engine"
)

// POST /rerank, /reranking, /v1/rerank, /v1/reranking (llama-server's
// --reranking: embeddings with rank pooling, on a model with a rank head).
// {"query": "...", "documents": ["...", ...], "top_n": N, "return_text":
// bool}; each document is scored with the query by the rank head, and
// the results come sorted by score, best first, top_n of them (default
// all): Jina's shape {"model", "object": "list", "usage", "results":
// [{"index", "relevance_score", "document": {"text"}}]}, or with TEI's
// "texts" instead of "documents" TEI's [{"index", "score", "text"}]. The
// pair's prompt is the model's rerank template (GGUF
// tokenizer.chat_template.rerank, "{query}" and "{document}" replaced),
// else [BOS] query [EOS] [SEP] document [EOS] with each special token
// where the vocabulary adds it, as llama-server builds it.

// rerankPrompt builds the tokens of one (query, document) pair.
func (s *Server) rerankPrompt(query, doc string) ([]int, *apiError) {
	tok := s.eng.Tok
	limit := s.slotCtx
	enc := func(text string, parseSpecial bool) ([]int, *apiError) {
		t, ok := tok.EncodeLimit(text, false, parseSpecial, limit)
		if !ok {
			return nil, s.exceedContext("more than " + strconv.Itoa(limit))
		}
		return t, nil
	}
	if tmpl, ok := s.eng.File.String("tokenizer.chat_template.rerank"); ok {
		p := strings.ReplaceAll(tmpl, "{query}", query)
		p = strings.ReplaceAll(p, "{document}", doc)
		return enc(p, true)
	}
	q, aerr := enc(query, false)
	if aerr != nil {
		return nil, aerr
	}
	d, aerr := enc(doc, false)
	if aerr != nil {
		return nil, aerr
	}
	eos := tok.EOS()
	if eos < 0 {
		eos = tok.SEP()
	}
	addSep, _ := s.eng.File.Bool("tokenizer.ggml.add_sep_token")
	var out []int
	if tok.AddBOS() {
		out = append(out, tok.BOS())
	}
	out = append(out, q...)
	if tok.AddEOS() && eos >= 0 {
		out = append(out, eos)
	}
	if addSep && tok.SEP() >= 0 {
		out = append(out, tok.SEP())
	}
	out = append(out, d...)
	if tok.AddEOS() && eos >= 0 {
		out = append(out, eos)
	}
	return out, nil
}

// handleRerank serves the rerank routes.
func (s *Server) handleRerank(w http.ResponseWriter, r *http.Request) {
	if !s.o.Embeddings || s.pooling() != engine.PoolRank {
		WriteError(w, errorf(http.StatusNotImplemented, TypeNotSupported, "This server does not support reranking. Start it with `--reranking`"))
		return
	}
	if !s.eng.HasRankHead() {
		WriteError(w, errorf(http.StatusNotImplemented, TypeNotSupported, "%v", engine.ErrNoRankHead))
		return
	}
	o := &object{}
	if !ReadJSON(w, r, o) {
		return
	}
	raw, ok := o.raw("query")
	if !ok {
		WriteError(w, badRequest(`"query" must be provided`))
		return
	}
	if kind(raw) != "a string" {
		WriteError(w, badRequest(`"query" must be a string`))
		return
	}
	var query string
	json.Unmarshal(raw, &query)
	key, tei := "documents", false
	if !o.has("documents") && o.has("texts") {
		key, tei = "texts", true
	}
	docs := o.strings(key, maxEmbeddingInputs, int(s.o.MaxBodyBytes))
	topN := o.int("top_n", len(docs), 0, maxEmbeddingInputs)
	returnText := o.bool("return_text", false)
	model := o.string("model", s.modelName)
	if o.err != nil {
		WriteError(w, o.err)
		return
	}
	if len(docs) == 0 {
		WriteError(w, badRequest(`"documents" must be a non-empty string array`))
		return
	}
	inputs := make([][]int, len(docs))
	for i, d := range docs {
		var aerr *apiError
		if inputs[i], aerr = s.rerankPrompt(query, d); aerr != nil {
			WriteError(w, aerr)
			return
		}
		if len(inputs[i]) == 0 {
			WriteError(w, badRequest("Input content cannot be empty"))
			return
		}
	}
	res, aerr := s.embedAll(r.Context(), inputs, engine.PoolRank, -1)
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	type ranked struct {
		index int
		score float64
	}
	rs := make([]ranked, len(res))
	n := 0
	for i, e := range res {
		rs[i] = ranked{i, float64(e.vecs[0][0])}
		n += e.tokens
	}
	sort.SliceStable(rs, func(a, b int) bool { return rs[a].score > rs[b].score })
	rs = rs[:min(topN, len(rs))]
	out := make([]map[string]any, len(rs))
	for i, x := range rs {
		if tei {
			out[i] = map[string]any{"index": x.index, "score": x.score}
			if returnText {
				out[i]["text"] = docs[x.index]
			}
		} else {
			out[i] = map[string]any{"index": x.index, "relevance_score": x.score}
			if returnText {
				out[i]["document"] = map[string]any{"text": docs[x.index]}
			}
		}
	}
	if tei {
		WriteJSON(w, http.StatusOK, out)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{
		"model": model, "object": "list", "results": out,
		"usage": map[string]any{"prompt_tokens": n, "total_tokens": n},
	})
}
