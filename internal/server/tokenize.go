package server

import (
	"net/http"
)

// tokenizeRequest is a decoded POST /tokenize.
type tokenizeRequest struct {
	content                              string
	addSpecial, parseSpecial, withPieces bool
}

// decodeTokenize reads the body of POST /tokenize: content, add_special
// (default false), parse_special (default true), with_pieces (default
// false).
func decodeTokenize(body []byte) (tokenizeRequest, *apiError) {
	var t tokenizeRequest
	o, aerr := parseObject(body)
	if aerr != nil {
		return t, aerr
	}
	if !o.has("content") {
		return t, badRequest(`"content" is required`)
	}
	t.content = o.string("content", "")
	t.addSpecial = o.bool("add_special", false)
	t.parseSpecial = o.bool("parse_special", true)
	t.withPieces = o.bool("with_pieces", false)
	return t, o.err
}

// handleTokenize serves POST /tokenize. An answer that would pass
// MaxResponseBytes is refused with 413 (tokenizing stops there).
func (s *Server) handleTokenize(w http.ResponseWriter, r *http.Request) {
	body, aerr := readBody(r)
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	t, aerr := decodeTokenize(body)
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	// Bytes per token in the answer, from above: an id and a comma; with
	// pieces an object holding the piece (JSON-escaped, or as numbers).
	per := int64(8)
	if t.withPieces {
		per = 32 + 6*int64(max(s.eng.Tok.MaxTokenBytes(), 8))
	}
	limit := int(min(s.o.MaxResponseBytes/per, 1<<30))
	toks, ok := s.eng.Tok.EncodeLimit(t.content, t.addSpecial, t.parseSpecial, limit)
	if !ok {
		WriteError(w, errorf(http.StatusRequestEntityTooLarge, TypeInvalidRequest,
			"the text has more than %d tokens: the answer would pass the server's response limit of %d bytes (--max-response-mib); send less text at a time", limit, s.o.MaxResponseBytes))
		return
	}
	if !t.withPieces {
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

// decodeDetokenize reads the body of POST /detokenize: "tokens", ids in
// the vocabulary (at most maxTokens of them).
func decodeDetokenize(body []byte, nVocab, maxTokens int) ([]int, *apiError) {
	o, aerr := parseObject(body)
	if aerr != nil {
		return nil, aerr
	}
	items, ok := o.array("tokens", maxTokens)
	if o.err != nil {
		return nil, o.err
	}
	if !ok {
		return nil, badRequest(`"tokens" is required`)
	}
	toks := make([]int, len(items))
	for i, it := range items {
		v, err := parseInt(it)
		if err != nil {
			return nil, badRequest(`"tokens"[%d] %v`, i, err)
		}
		if v < 0 || v >= int64(nVocab) {
			return nil, badRequest(`"tokens"[%d]: token id %d is out of range (the vocabulary has %d tokens)`, i, v, nVocab)
		}
		toks[i] = int(v)
	}
	return toks, nil
}

// handleDetokenize serves POST /detokenize: tokens → content. An answer
// that would pass MaxResponseBytes is refused with 413.
func (s *Server) handleDetokenize(w http.ResponseWriter, r *http.Request) {
	body, aerr := readBody(r)
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	toks, aerr := decodeDetokenize(body, s.eng.Model.NVocab, int(min(s.o.MaxBodyBytes/2+1, 1<<30)))
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	n := int64(0)
	for _, t := range toks {
		n += int64(len(s.eng.Tok.Piece(t, true)))
	}
	if n > s.o.MaxResponseBytes {
		WriteError(w, errorf(http.StatusRequestEntityTooLarge, TypeInvalidRequest,
			"the text of these %d tokens (%d bytes) would pass the server's response limit of %d bytes (--max-response-mib)", len(toks), n, s.o.MaxResponseBytes))
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"content": s.eng.Tok.Decode(toks, true)})
}

// handleApplyTemplate serves POST /apply-template: messages → prompt.
func (s *Server) handleApplyTemplate(w http.ResponseWriter, r *http.Request) {
	o := &object{}
	if !ReadJSON(w, r, o) {
		return
	}
	prompt, _, aerr := s.renderChat(o)
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"prompt": prompt})
}
