package server

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/kvserve/kvserve/internal/engine"
)

// Embeddings (Options.Embeddings, llama-server's --embeddings):
//
//	POST /embedding, /embeddings   llama-server's shape: [{"index":i,"embedding":[[...]]}]
//	                               (one pooled vector, or one per token with pooling none)
//	POST /v1/embeddings            OpenAI's: {"object":"list","data":[{"object":"embedding",
//	                               "index":i,"embedding":[...] or base64}],"model","usage"}
//
// "input" (or llama-server's "content") is a string, an array of token ids
// (or of strings and ids mixed: one input), or an array of inputs (strings
// or token arrays) embedded in order. Each input must fit one slot's
// context; it runs between scheduler steps in a cache of its own (see
// engine.Scheduler.Embed), at most Slots inputs at a time. Vectors are
// pooled (Options.Pooling, else the file's "{arch}.pooling_type", else
// none, as llama.cpp) and normalized with "embd_normalize" (default 2,
// Euclidean; pooling none is not normalized), as llama-server does.

// maxEmbeddingInputs bounds the inputs of one embedding request (OpenAI's limit).
const maxEmbeddingInputs = 2048

// pooling is the server's pooling type.
func (s *Server) pooling() engine.Pooling {
	if s.o.Pooling != "" {
		if p, err := engine.ParsePooling(s.o.Pooling); err == nil {
			return p
		}
	}
	return s.eng.FilePooling()
}

// embeddingInputs reads the inputs of an embedding request: a string, an
// array of token ids or of ids and strings (one input), or an array whose
// items are each a string or such an array.
func (s *Server) embeddingInputs(raw json.RawMessage, key string) ([][]int, *apiError) {
	if kind(raw) == "an array" {
		items, err := arrayItems(raw, maxEmbeddingInputs+1)
		if _, over := err.(errTooMany); over {
			return nil, badRequest("%q holds more than %d inputs", key, maxEmbeddingInputs)
		}
		if err != nil {
			return nil, badRequest("%q %v", key, err)
		}
		if len(items) == 0 {
			return nil, badRequest("%q is an empty array", key)
		}
		single := false
		for _, it := range items {
			if kind(it) == "a number" {
				single = true
			}
		}
		if !single {
			var out [][]int
			for _, it := range items {
				toks, aerr := s.embeddingInput(it, key)
				if aerr != nil {
					return nil, aerr
				}
				out = append(out, toks)
			}
			return out, nil
		}
	}
	toks, aerr := s.embeddingInput(raw, key)
	if aerr != nil {
		return nil, aerr
	}
	return [][]int{toks}, nil
}

func (s *Server) embeddingInput(raw json.RawMessage, key string) ([]int, *apiError) {
	toks, aerr := s.promptValue(raw, key, 1)
	if aerr != nil {
		return nil, aerr
	}
	if len(toks) == 0 {
		return nil, badRequest("Input content cannot be empty")
	}
	if len(toks) > s.slotCtx {
		return nil, s.exceedContext(strconv.Itoa(len(toks)))
	}
	return toks, nil
}

// embedResult is one input's embedding.
type embedResult struct {
	vecs   [][]float32
	tokens int
}

// embedAll computes the embeddings of the inputs, normalized.
func (s *Server) embedAll(ctx context.Context, inputs [][]int, pool engine.Pooling, norm int) ([]embedResult, *apiError) {
	out := make([]embedResult, len(inputs))
	for i, toks := range inputs {
		if aerr := s.acquireEmbed(ctx); aerr != nil {
			return nil, aerr
		}
		vecs, err := s.sched.Embed(ctx, toks, pool)
		<-s.embedSem
		if err != nil {
			switch {
			case errors.Is(err, engine.ErrNoRankHead):
				return nil, errorf(http.StatusNotImplemented, TypeNotSupported, "%v", err)
			case errors.Is(err, engine.ErrClosed), ctx.Err() != nil:
				return nil, errorf(http.StatusServiceUnavailable, TypeUnavailable, "the request was cancelled: %v", err)
			}
			return nil, asAPIError(err)
		}
		if pool != engine.PoolNone {
			for _, v := range vecs {
				engine.NormalizeEmbedding(v, norm)
			}
		}
		out[i] = embedResult{vecs: vecs, tokens: len(toks)}
	}
	return out, nil
}

// acquireEmbed takes one of the Slots places for a running embedding,
// waiting up to QueueTimeout (503 after).
func (s *Server) acquireEmbed(ctx context.Context) *apiError {
	select {
	case s.embedSem <- struct{}{}:
		return nil
	default:
	}
	if s.o.QueueTimeout < 0 {
		return busy("every embedding place is busy (%d at a time)", cap(s.embedSem))
	}
	t := time.NewTimer(s.o.QueueTimeout)
	defer t.Stop()
	select {
	case s.embedSem <- struct{}{}:
		return nil
	case <-t.C:
		return busy("no embedding place became free within %s", s.o.QueueTimeout)
	case <-ctx.Done():
		return errorf(http.StatusServiceUnavailable, TypeUnavailable, "the request was cancelled")
	}
}

// handleEmbedding serves POST /embedding and /embeddings (llama-server's
// shape) and, with oai, POST /v1/embeddings (OpenAI's; a request giving
// "content" instead of "input" gets llama-server's shape, as llama-server
// answers).
func (s *Server) handleEmbedding(w http.ResponseWriter, r *http.Request, oai bool) {
	if !s.o.Embeddings {
		WriteError(w, errorf(http.StatusNotImplemented, TypeNotSupported, "This server does not support embeddings. Start it with `--embeddings`"))
		return
	}
	pool := s.pooling()
	if oai && pool == engine.PoolNone {
		WriteError(w, badRequest("Pooling type 'none' is not OAI compatible. Please use a different pooling type (start the server with --pooling mean, cls or last)"))
		return
	}
	o := &object{}
	if !ReadJSON(w, r, o) {
		return
	}
	key := "input"
	raw, ok := o.raw("input")
	if !ok {
		if raw, ok = o.raw("content"); !ok {
			WriteError(w, badRequest(`"input" or "content" must be provided`))
			return
		}
		key, oai = "content", false
	}
	b64 := false
	switch f := o.string("encoding_format", "float"); f {
	case "float":
	case "base64":
		b64 = true
	default:
		o.fail(`"encoding_format" must be "float" or "base64", not %q`, f)
	}
	norm := o.int("embd_normalize", 2, -1, math.MaxInt32)
	model := o.string("model", s.modelName)
	if o.err != nil {
		WriteError(w, o.err)
		return
	}
	inputs, aerr := s.embeddingInputs(raw, key)
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	res, aerr := s.embedAll(r.Context(), inputs, pool, norm)
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	if !oai {
		out := make([]map[string]any, len(res))
		for i, e := range res {
			out[i] = map[string]any{"index": i, "embedding": e.vecs}
		}
		WriteJSON(w, http.StatusOK, out)
		return
	}
	data := make([]map[string]any, len(res))
	n := 0
	for i, e := range res {
		d := map[string]any{"object": "embedding", "index": i}
		if b64 {
			buf := make([]byte, 4*len(e.vecs[0]))
			for j, v := range e.vecs[0] {
				binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(v))
			}
			d["embedding"] = base64.StdEncoding.EncodeToString(buf)
			d["encoding_format"] = "base64"
		} else {
			d["embedding"] = e.vecs[0]
		}
		data[i] = d
		n += e.tokens
	}
	WriteJSON(w, http.StatusOK, map[string]any{
		"object": "list", "model": model, "data": data,
		"usage": map[string]any{"prompt_tokens": n, "total_tokens": n},
	})
}
