package server

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/sample"
)

// serveMulti answers a /completion request holding several prompts, as
// llama-server does: each prompt runs as its own request (in parallel as
// slots allow); the answer is an array of the results, each with its
// "index", or with "stream", the chunks of all of them as they come, each
// with its "index". The first error ends the whole request.
func (s *Server) serveMulti(w http.ResponseWriter, r *http.Request, reqs []*engine.Request, g genOptions) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if g.stream {
		s.streamMulti(ctx, w, reqs, g)
		return
	}
	results := make([]any, len(reqs))
	errs := make([]*apiError, len(reqs))
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rn, aerr := s.start(ctx, req)
			if aerr != nil {
				errs[i] = aerr
				cancel()
				return
			}
			defer rn.close()
			text, out, res, aerr := s.collect(rn)
			if aerr != nil {
				errs[i] = aerr
				cancel()
				return
			}
			m := s.nativeFinal(req, g, text, out, res, false)
			m["index"] = i
			results[i] = m
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil && !(e.Status == http.StatusServiceUnavailable && e.Message == "request cancelled") {
			WriteError(w, e)
			return
		}
	}
	for _, e := range errs {
		if e != nil {
			WriteError(w, e)
			return
		}
	}
	WriteJSON(w, http.StatusOK, results)
}

// streamMulti streams several prompts' chunks, interleaved.
func (s *Server) streamMulti(ctx context.Context, w http.ResponseWriter, reqs []*engine.Request, g genOptions) {
	type msg struct {
		data map[string]any
		err  *apiError
		done bool
	}
	ch := make(chan msg)
	send := func(m msg) bool {
		select {
		case ch <- m:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for i, req := range reqs {
		go func() {
			rn, aerr := s.start(ctx, req)
			if aerr != nil {
				send(msg{err: aerr})
				return
			}
			defer rn.close()
			n := 0
			for {
				st, aerr := s.next(rn)
				if aerr != nil {
					send(msg{err: aerr})
					return
				}
				if st.res != nil {
					m := s.nativeFinal(req, g, st.text, nil, st.res, true)
					m["index"] = i
					send(msg{data: m, done: true})
					return
				}
				if len(st.tokens) == 0 {
					continue
				}
				n += len(st.tokens)
				chunk := map[string]any{
					"index": i, "content": st.text, "tokens": tokenIDs(st.tokens), "stop": false,
					"id_slot": st.slot, "tokens_predicted": n, "tokens_evaluated": len(req.Prompt),
				}
				if g.nProbs > 0 {
					chunk["completion_probabilities"] = s.nativeProbs(st.tokens, g)
				}
				if st.timings != nil {
					chunk["timings"] = timings(st.timings)
				}
				if !send(msg{data: chunk}) {
					return
				}
			}
		}()
	}
	ev := newSSE(w)
	for left := len(reqs); left > 0; {
		m := <-ch
		if m.err != nil {
			ev.error(m.err)
			return // the deferred cancel ends the others
		}
		if ev.data(m.data) != nil {
			return
		}
		if m.done {
			left--
		}
	}
}

// maxChoices bounds OpenAI's n.
const maxChoices = 16

// serveChoices answers an OpenAI request with n > 1: n requests of the
// same prompt run in parallel (as slots allow; with a fixed seed, choice
// i samples with seed+i), one choice each; usage counts the prompt once
// and every choice's tokens.
func (s *Server) serveChoices(w http.ResponseWriter, r *http.Request, req *engine.Request, g genOptions) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	type out struct {
		text string
		toks []tokenOut
		res  *engine.Result
		err  *apiError
	}
	outs := make([]out, g.n)
	var wg sync.WaitGroup
	for i := range g.n {
		rq := *req
		if rq.Sample.Seed != sample.RandomSeed {
			rq.Sample.Seed += uint64(i)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rn, aerr := s.start(ctx, &rq)
			if aerr != nil {
				outs[i].err = aerr
				cancel()
				return
			}
			defer rn.close()
			o := &outs[i]
			if o.text, o.toks, o.res, o.err = s.collect(rn); o.err != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	for _, o := range outs {
		if o.err != nil {
			WriteError(w, o.err)
			return
		}
	}
	id, object := newID("chatcmpl-"), "chat.completion"
	if g.api == apiOAIText {
		id, object = newID("cmpl-"), "text_completion"
	}
	choices := make([]any, g.n)
	var completion int
	for i, o := range outs {
		choices[i] = s.oaiChoice(g, i, o.text, o.toks, o.res)
		completion += o.res.PredictedTokens
	}
	u := usage(outs[0].res)
	u["completion_tokens"] = completion
	u["total_tokens"] = outs[0].res.PromptTokens + completion
	WriteJSON(w, http.StatusOK, map[string]any{
		"id": id, "object": object, "created": time.Now().Unix(), "model": s.modelName,
		"system_fingerprint": s.fingerprintShort(), "choices": choices, "usage": u, "timings": timings(outs[0].res),
	})
}
