package server

import (
	"context"
	"iter"
	"net/http"
	"slices"
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
	if aerr := firstError(slices.Values(errs)); aerr != nil {
		WriteError(w, aerr)
		return
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

// maxChoices bounds OpenAI's n, and the choices of one request (prompts
// × n).
const maxChoices = 16

// maxAllChoices bounds the choices of one OpenAI request: prompts × n.
const maxAllChoices = maxPrompts

// serveChoices answers an OpenAI request with several choices: n > 1,
// or (/v1/completions) several prompts. Choice p·n + j is prompt p's j-th
// sample; each runs as its own request, in parallel as slots allow (with
// a fixed seed, sample j uses seed+j). Usage counts each prompt once and
// every choice's tokens. Streamed, the chunks of all choices come
// interleaved as they are generated, each with its choice's index (and
// its own first and last chunk); then the usage chunk and [DONE].
func (s *Server) serveChoices(w http.ResponseWriter, r *http.Request, prompts []*engine.Request, g genOptions) {
	if len(prompts)*g.n > maxAllChoices {
		WriteError(w, badRequest("%d prompts × n = %d choices; at most %d per request", len(prompts), len(prompts)*g.n, maxAllChoices))
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	reqs := make([]*engine.Request, 0, len(prompts)*g.n)
	for _, req := range prompts {
		for j := range g.n {
			rq := *req
			if rq.Sample.Seed != sample.RandomSeed {
				rq.Sample.Seed += uint64(j)
			}
			reqs = append(reqs, &rq)
		}
	}
	id, object := newID("chatcmpl-"), "chat.completion"
	if g.api == apiOAIText {
		id, object = newID("cmpl-"), "text_completion"
	}
	created := time.Now().Unix()
	base := func(obj string) map[string]any {
		return map[string]any{"id": id, "object": obj, "created": created, "model": s.modelName, "system_fingerprint": s.fingerprintShort()}
	}
	// usage counts each prompt once.
	sumUsage := func(res []*engine.Result) map[string]any {
		u := usage(res[0])
		prompt, cached, completion := 0, 0, 0
		for i, r := range res {
			if i%g.n == 0 {
				prompt += r.PromptTokens
				cached += r.CachedTokens
			}
			completion += r.PredictedTokens
		}
		u["prompt_tokens"] = prompt
		u["completion_tokens"] = completion
		u["total_tokens"] = prompt + completion
		if d, ok := u["prompt_tokens_details"].(map[string]any); ok {
			d["cached_tokens"] = cached
		}
		return u
	}
	if g.stream {
		s.streamChoices(ctx, w, reqs, g, base, sumUsage)
		return
	}
	type out struct {
		text string
		toks []tokenOut
		res  *engine.Result
		err  *apiError
	}
	outs := make([]out, len(reqs))
	var wg sync.WaitGroup
	for i, rq := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rn, aerr := s.start(ctx, rq)
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
	errs := make([]*apiError, len(outs))
	for i, o := range outs {
		errs[i] = o.err
	}
	if aerr := firstError(slices.Values(errs)); aerr != nil {
		WriteError(w, aerr)
		return
	}
	choices := make([]any, len(outs))
	res := make([]*engine.Result, len(outs))
	for i, o := range outs {
		choices[i] = s.oaiChoice(g, i, o.text, o.toks, o.res)
		res[i] = o.res
	}
	resp := base(object)
	resp["choices"] = choices
	resp["usage"] = sumUsage(res)
	resp["timings"] = timings(outs[0].res)
	WriteJSON(w, http.StatusOK, resp)
}

// firstError is the error to answer of several requests': the first that
// is not a cancellation caused by another's error, else the first.
func firstError(errs iter.Seq[*apiError]) *apiError {
	var first *apiError
	for e := range errs {
		if e == nil {
			continue
		}
		if !(e.Status == http.StatusServiceUnavailable && e.Message == "request cancelled") {
			return e
		}
		if first == nil {
			first = e
		}
	}
	return first
}

// streamChoices streams several choices' chunks, interleaved.
func (s *Server) streamChoices(ctx context.Context, w http.ResponseWriter, reqs []*engine.Request, g genOptions,
	base func(string) map[string]any, sumUsage func([]*engine.Result) map[string]any) {
	type msg struct {
		chunk any
		res   *engine.Result
		index int
		err   *apiError
	}
	ch := make(chan msg)
	send := func(m msg) error {
		select {
		case ch <- m:
			return nil
		case <-ctx.Done():
			return ctx.Err()
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
			res, aerr := s.streamChoice(rn, g, base, i, true, func(c any) error { return send(msg{chunk: c}) })
			switch {
			case aerr != nil:
				send(msg{err: aerr})
			case res != nil:
				send(msg{res: res, index: i})
			}
		}()
	}
	ev := newSSE(w)
	results := make([]*engine.Result, len(reqs))
	for left := len(reqs); left > 0; {
		m := <-ch
		switch {
		case m.err != nil:
			ev.error(m.err)
			return // the deferred cancel ends the others
		case m.res != nil:
			results[m.index] = m.res
			left--
		default:
			if ev.data(m.chunk) != nil {
				return
			}
		}
	}
	s.endOAIStream(ev, g, base, sumUsage(results), nil)
}
