package server

import (
	"net/http"
)

// handleTokenize serves POST /tokenize: content, add_special (default
// false), parse_special (default true), with_pieces (default false).
func (s *Server) handleTokenize(w http.ResponseWriter, r *http.Request) {
	o, aerr := readObject(r)
	if aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	if !o.has("content") {
		writeAPIError(w, badRequest(`"content" is required`))
		return
	}
	content := o.string("content", "")
	addSpecial := o.bool("add_special", false)
	parseSpecial := o.bool("parse_special", true)
	withPieces := o.bool("with_pieces", false)
	if o.err != nil {
		writeAPIError(w, o.err)
		return
	}
	toks := s.eng.Tok.Encode(content, addSpecial, parseSpecial)
	if !withPieces {
		if toks == nil {
			toks = []int{}
		}
		WriteJSON(w, http.StatusOK, map[string]any{"tokens": toks})
		return
	}
	out := make([]map[string]any, len(toks))
	for i, t := range toks {
		out[i] = map[string]any{"id": t, "piece": validUTF8OrBytes(s.eng.Tok.Piece(t, true))}
	}
	WriteJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

// handleDetokenize serves POST /detokenize: tokens → content.
func (s *Server) handleDetokenize(w http.ResponseWriter, r *http.Request) {
	o, aerr := readObject(r)
	if aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	items, ok := o.array("tokens")
	if o.err != nil {
		writeAPIError(w, o.err)
		return
	}
	if !ok {
		writeAPIError(w, badRequest(`"tokens" is required`))
		return
	}
	nv := s.eng.Model.NVocab
	toks := make([]int, len(items))
	for i, it := range items {
		v, err := parseInt(it)
		if err != nil {
			writeAPIError(w, badRequest(`"tokens"[%d] %v`, i, err))
			return
		}
		if v < 0 || v >= int64(nv) {
			writeAPIError(w, badRequest(`"tokens"[%d]: token id %d is out of range (the vocabulary has %d tokens)`, i, v, nv))
			return
		}
		toks[i] = int(v)
	}
	WriteJSON(w, http.StatusOK, map[string]any{"content": s.eng.Tok.Decode(toks, true)})
}

// handleApplyTemplate serves POST /apply-template: messages → prompt.
func (s *Server) handleApplyTemplate(w http.ResponseWriter, r *http.Request) {
	o, aerr := readObject(r)
	if aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	prompt, _, aerr := s.renderChat(o)
	if aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"prompt": prompt})
}
