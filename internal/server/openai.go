package server

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/kvserve/kvserve/internal/engine"
)

// newID returns an OpenAI-style id: prefix + 32 random letters/digits.
func newID(prefix string) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 32)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return prefix + string(b)
}

func (s *Server) fingerprintShort() string { return "kvserve-" + Version }

// handleModels serves GET /v1/models.
func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	e := s.eng
	var params, size uint64
	for _, t := range e.File.Tensors {
		n := uint64(1)
		for _, d := range t.Dims {
			n *= d
		}
		params += n
		size += t.Size
	}
	vocabType := 2 // llama.cpp's LLAMA_VOCAB_TYPE_BPE
	if e.Tok.Model() == "llama" {
		vocabType = 1 // SPM
	}
	m := e.Model
	WriteJSON(w, http.StatusOK, map[string]any{
		"object": "list",
		// llama-server's Ollama-shaped list beside OpenAI's (what
		// clients of GET /api/tags read).
		"models": []any{map[string]any{
			"name": s.modelName, "model": s.modelName, "modified_at": "", "size": "", "digest": "", "type": "model",
			"description": "", "tags": []any{""}, "capabilities": []any{"completion"}, "parameters": "",
			"details": map[string]any{"parent_model": "", "format": "gguf", "family": "", "families": []any{""},
				"parameter_size": "", "quantization_level": ""},
		}},
		"data": []any{map[string]any{
			"id":       s.modelName,
			"object":   "model",
			"created":  time.Now().Unix(),
			"owned_by": "kvserve",
			"meta": map[string]any{
				"vocab_type":  vocabType,
				"n_vocab":     m.NVocab,
				"n_ctx_train": m.NCtxTrain,
				"n_embd":      m.NEmbd,
				"n_params":    params,
				"size":        size,
			},
		}},
	})
}

// handleAPIShow serves POST /api/show (llama-server's Ollama-shaped
// model details: the chat template, the slot context, capabilities).
func (s *Server) handleAPIShow(w http.ResponseWriter, r *http.Request) {
	src := ""
	if s.chat != nil {
		src = s.chat.source()
	}
	WriteJSON(w, http.StatusOK, map[string]any{
		"template":     src,
		"model_info":   map[string]any{"llama.context_length": s.slotCtx},
		"modelfile":    "",
		"parameters":   "",
		"details":      map[string]any{"parent_model": "", "format": "gguf", "family": "", "families": []any{""}, "parameter_size": "", "quantization_level": ""},
		"capabilities": []any{"completion"},
	})
}

// handleOAICompletion serves POST /v1/completions.
func (s *Server) handleOAICompletion(w http.ResponseWriter, r *http.Request) {
	s.serveCompletion(w, r, apiOAIText)
}

// handleChat serves POST /v1/chat/completions.
func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	s.serveCompletion(w, r, apiOAIChat)
}

// renderChat reads "messages" (and "chat_template_kwargs", the tools and
// reasoning options) and renders them with the model's chat template,
// with the generation prompt added.
func (s *Server) renderChat(o *object) (string, *chatPlan, *apiError) {
	msgs, aerr := parseMessages(o)
	if aerr != nil {
		return "", nil, aerr
	}
	extra := map[string]any{}
	if raw, ok := o.raw("chat_template_kwargs"); ok {
		if kind(raw) != "an object" {
			return "", nil, badRequest(`"chat_template_kwargs" must be an object, not %s`, kind(raw))
		}
		json.Unmarshal(raw, &extra)
	}
	// OpenAI's reasoning_effort (gpt-oss: low, medium or high) reaches the
	// template as the variable of that name, as llama-server passes it,
	// unless chat_template_kwargs sets it.
	if raw, ok := o.raw("reasoning_effort"); ok && kind(raw) != "null" {
		effort := o.string("reasoning_effort", "")
		if o.err != nil {
			return "", nil, o.err
		}
		if _, set := extra["reasoning_effort"]; !set && effort != "" {
			extra["reasoning_effort"] = effort
		}
	}
	for k, v := range s.o.ChatTemplateKwargs {
		if _, set := extra[k]; !set {
			extra[k] = v
		}
	}
	if s.chat == nil {
		return "", nil, errorf(http.StatusInternalServerError, TypeServer, "the model has no usable chat template: %v", s.chatErr)
	}
	plan, aerr := s.parsePlan(o)
	if aerr != nil {
		return "", nil, aerr
	}
	msgs, vars := plan.prepare(msgs)
	for k, v := range vars {
		if _, set := extra[k]; !set {
			extra[k] = v
		}
	}
	if len(extra) == 0 {
		extra = nil
	}
	// A final assistant message is continued (llama-server's prefill):
	// the turns before it are rendered with the generation prompt, then
	// its text follows, without an end of turn.
	prefill := ""
	if n := len(msgs); n > 1 && msgs[n-1].Role == "assistant" && !s.o.NoPrefillAssistant && len(msgs[n-1].ToolCalls) == 0 {
		prefill = msgs[n-1].Content
		msgs = msgs[:n-1]
	}
	prompt, err := s.chat.apply(msgs, true, extra)
	if err != nil {
		return "", nil, badRequest("applying the chat template: %v", err)
	}
	prompt += prefill
	plan.parser.InThink = strings.HasSuffix(strings.TrimRight(prompt, " \t\r\n"), "<think>")
	return prompt, plan, nil
}

// maxMessages bounds the messages of a chat request, and the content
// parts and tool calls of a message.
const maxMessages = 4096

// parseMessages reads OpenAI chat messages: role and content, content
// being a string, null, or an array of {"type":"text","text":...} parts
// (joined with newlines). Other part types (images, audio) are refused.
func parseMessages(o *object) ([]chatMessage, *apiError) {
	items, ok := o.array("messages", maxMessages)
	if o.err != nil {
		return nil, o.err
	}
	if !ok {
		return nil, badRequest(`"messages" is required`)
	}
	if len(items) == 0 {
		return nil, badRequest(`"messages" must not be empty`)
	}
	msgs := make([]chatMessage, 0, len(items))
	for i, it := range items {
		if kind(it) != "an object" {
			return nil, badRequest(`"messages"[%d] must be an object, not %s`, i, kind(it))
		}
		mo, err := parseObject(it)
		if err != nil {
			return nil, badRequest(`"messages"[%d]: %s`, i, err.Message)
		}
		role := mo.string("role", "")
		if mo.err != nil {
			return nil, badRequest(`"messages"[%d]: %s`, i, mo.err.Message)
		}
		if role == "" {
			return nil, badRequest(`"messages"[%d]: "role" is required`, i)
		}
		var content string
		name := mo.string("name", "")
		if mo.err != nil {
			return nil, badRequest(`"messages"[%d]: %s`, i, mo.err.Message)
		}
		null := false
		if raw, ok := mo.raw("content"); ok {
			switch kind(raw) {
			case "a string":
				json.Unmarshal(raw, &content)
			case "an array":
				parts, err := arrayItems(raw, maxMessages)
				if err != nil {
					return nil, badRequest(`"messages"[%d].content %v`, i, err)
				}
				var texts []string
				for j, p := range parts {
					po, perr := parseObject(p)
					if perr != nil {
						return nil, badRequest(`"messages"[%d].content[%d] must be an object`, i, j)
					}
					typ := po.string("type", "")
					if typ != "text" {
						if po.err == nil {
							return nil, badRequest(`"messages"[%d].content[%d]: content parts of type %q are not supported (only "text")`, i, j, typ)
						}
						return nil, badRequest(`"messages"[%d].content[%d]: %s`, i, j, po.err.Message)
					}
					txt := po.string("text", "")
					if po.err != nil {
						return nil, badRequest(`"messages"[%d].content[%d]: %s`, i, j, po.err.Message)
					}
					texts = append(texts, txt)
				}
				content = strings.Join(texts, "\n")
			default:
				return nil, badRequest(`"messages"[%d].content must be a string or an array of text parts, not %s`, i, kind(raw))
			}
		} else if role == "assistant" {
			null = true
		} else {
			return nil, badRequest(`"messages"[%d]: "content" is required`, i)
		}
		m := chatMessage{Role: role, Content: content, NullContent: null, Name: name}
		if aerr := parseToolFields(mo, i, &m); aerr != nil {
			return nil, aerr
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// parseToolFields reads an assistant message's tool_calls and
// reasoning_content and a tool message's tool_call_id.
func parseToolFields(mo *object, i int, m *chatMessage) *apiError {
	m.ToolCallID = mo.string("tool_call_id", "")
	if m.Role == "assistant" {
		m.Reasoning = mo.string("reasoning_content", "")
	}
	if mo.err != nil {
		return badRequest(`"messages"[%d]: %s`, i, mo.err.Message)
	}
	if !mo.nonEmpty("tool_calls") {
		return nil
	}
	if m.Role != "assistant" {
		return badRequest(`"messages"[%d]: only assistant messages have "tool_calls"`, i)
	}
	calls, _ := mo.array("tool_calls", maxMessages)
	if mo.err != nil {
		return badRequest(`"messages"[%d]: %s`, i, mo.err.Message)
	}
	for j, raw := range calls {
		co, err := parseObject(raw)
		if err != nil {
			return badRequest(`"messages"[%d].tool_calls[%d] must be an object`, i, j)
		}
		tc := msgToolCall{ID: co.string("id", "")}
		fn := co.object("function")
		if co.err != nil || fn == nil {
			return badRequest(`"messages"[%d].tool_calls[%d] must have a "function" object`, i, j)
		}
		tc.Name = fn.string("name", "")
		if raw, ok := fn.raw("arguments"); ok {
			if kind(raw) == "a string" {
				json.Unmarshal(raw, &tc.Arguments)
			} else {
				tc.Arguments = string(raw) // an object given as JSON
			}
		}
		if fn.err != nil || tc.Name == "" {
			return badRequest(`"messages"[%d].tool_calls[%d].function needs a "name" string`, i, j)
		}
		m.ToolCalls = append(m.ToolCalls, tc)
	}
	return nil
}

// answerOAI answers a running OpenAI completion or chat completion (a
// chat's plan, g.plan, says how to read the output).
func (s *Server) answerOAI(w http.ResponseWriter, rn *run, g genOptions) {
	a := g.api
	id := newID("chatcmpl-")
	object := "chat.completion"
	if a == apiOAIText {
		id, object = newID("cmpl-"), "text_completion"
	}
	created := time.Now().Unix()
	base := func(obj string) map[string]any {
		return map[string]any{"id": id, "object": obj, "created": created, "model": s.modelName, "system_fingerprint": s.fingerprintShort()}
	}
	if g.stream {
		s.streamOAI(w, rn, g, base)
		return
	}
	text, out, res, aerr := s.collect(rn)
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	resp := base(object)
	resp["choices"] = []any{s.oaiChoice(g, 0, text, out, res)}
	resp["usage"] = usage(res)
	resp["timings"] = timings(res)
	WriteJSON(w, http.StatusOK, resp)
}

// oaiChoice is choice i of an OpenAI answer.
func (s *Server) oaiChoice(g genOptions, i int, text string, out []tokenOut, res *engine.Result) map[string]any {
	a, plan := g.api, g.plan
	choice := map[string]any{"index": i, "finish_reason": finishReason(res), "logprobs": nil}
	if a == apiOAIChat {
		choice["message"] = map[string]any{"role": "assistant", "content": text}
		if plan != nil && plan.active() {
			cr := plan.finish(text, nil)
			choice["message"] = cr.message()
			choice["finish_reason"] = chatFinishReason(res, len(cr.calls))
		}
		if g.logprobs {
			choice["logprobs"] = map[string]any{"content": s.probEntries(out)}
		}
	} else {
		choice["text"] = text
		if g.logprobs {
			choice["logprobs"] = s.legacyLogprobs(out, 0)
		}
	}
	return choice
}

// streamOAI streams OpenAI chunks. Chat: the first chunk's delta holds
// the role; content deltas follow (a token whose text is held back — a
// possible stop string or an incomplete UTF-8 character — is sent with
// the next text, its logprobs too); the last chunk has an empty delta,
// the finish_reason and llama-server's timings; with
// stream_options.include_usage a chunk with no choices and the usage
// follows (on a chat stream it carries the timings instead, as
// llama-server puts them on the last chunk); then "data: [DONE]".
//
// With a chat plan that parses the output, deltas are reasoning_content,
// content and tool_calls as chatStream gives them, and finish_reason is
// "tool_calls" when calls were sent.
func (s *Server) streamOAI(w http.ResponseWriter, rn *run, g genOptions, base func(string) map[string]any) {
	ev := newSSE(w)
	// As llama-server, the timings go on the stream's last chunk: the
	// usage chunk when there is one (chat), else the finish chunk.
	onUsage := g.includeUsage && g.api == apiOAIChat
	res, aerr := s.streamChoice(rn, g, base, 0, !onUsage, ev.data)
	if aerr != nil {
		ev.error(aerr)
		return
	}
	if res == nil {
		return // the client went away
	}
	var t map[string]any
	if onUsage {
		t = timings(res)
	}
	s.endOAIStream(ev, g, base, usage(res), t)
}

// endOAIStream sends the usage chunk (stream_options.include_usage; with
// the timings t when not nil) and "data: [DONE]".
func (s *Server) endOAIStream(ev *sse, g genOptions, base func(string) map[string]any, u, t map[string]any) {
	if g.includeUsage {
		c := base(oaiChunkObject(g.api))
		c["choices"] = []any{}
		c["usage"] = u
		if t != nil {
			c["timings"] = t
		}
		if ev.data(c) != nil {
			return
		}
	}
	ev.raw("data: [DONE]\n\n")
}

func oaiChunkObject(a api) string {
	if a == apiOAIText {
		return "text_completion"
	}
	return "chat.completion.chunk"
}

// streamChoice streams the chunks of one choice (index) of an OpenAI
// answer through emit (the last with the timings when finalTimings), and
// returns the request's result; nil and no error when emit failed (the
// client went away).
func (s *Server) streamChoice(rn *run, g genOptions, base func(string) map[string]any, index int, finalTimings bool, emit func(any) error) (*engine.Result, *apiError) {
	a, plan := g.api, g.plan
	object := oaiChunkObject(a)
	chunk := func(text string, toks []tokenOut, finish *engine.Result, offset int) map[string]any {
		c := map[string]any{"index": index, "logprobs": nil, "finish_reason": nil}
		if finish != nil {
			c["finish_reason"] = finishReason(finish)
		}
		if a == apiOAIChat {
			d := map[string]any{}
			if text != "" {
				d["content"] = text
			}
			c["delta"] = d
			if g.logprobs && len(toks) > 0 {
				c["logprobs"] = map[string]any{"content": s.probEntries(toks)}
			}
		} else {
			c["text"] = text
			if g.logprobs && len(toks) > 0 {
				c["logprobs"] = s.legacyLogprobs(toks, offset)
			}
		}
		m := base(object)
		m["choices"] = []any{c}
		return m
	}
	if a == apiOAIChat {
		first := base(object)
		first["choices"] = []any{map[string]any{"index": index, "delta": map[string]any{"role": "assistant", "content": nil}, "logprobs": nil, "finish_reason": nil}}
		if emit(first) != nil {
			return nil, nil
		}
	}
	var pending []tokenOut   // tokens not yet reported (their text held back)
	var sofar *engine.Result // timings so far (timings_per_token)
	withTimings := func(c map[string]any) map[string]any {
		if sofar != nil {
			c["timings"] = timings(sofar)
		}
		return c
	}
	if plan != nil && plan.active() {
		cs := &chatStream{plan: plan}
		for {
			st, aerr := s.next(rn)
			if aerr != nil {
				return nil, aerr
			}
			pending = append(pending, st.tokens...)
			if st.timings != nil {
				sofar = st.timings
			}
			deltas := cs.feed(st.text, st.res != nil)
			for _, d := range deltas {
				c := chunk("", pending, nil, 0)
				c["choices"].([]any)[0].(map[string]any)["delta"] = d
				pending = pending[:0]
				if emit(withTimings(c)) != nil {
					return nil, nil
				}
			}
			if st.res != nil {
				last := chunk("", pending, st.res, 0)
				last["choices"].([]any)[0].(map[string]any)["finish_reason"] = chatFinishReason(st.res, cs.calls())
				if finalTimings {
					last["timings"] = timings(st.res)
				}
				if emit(last) != nil {
					return nil, nil
				}
				return st.res, nil
			}
		}
	}
	offset := 0
	for {
		st, aerr := s.next(rn)
		if aerr != nil {
			return nil, aerr
		}
		pending = append(pending, st.tokens...)
		if st.timings != nil {
			sofar = st.timings
		}
		if st.res != nil {
			last := chunk(st.text, pending, st.res, offset)
			if finalTimings {
				last["timings"] = timings(st.res)
			}
			if emit(last) != nil {
				return nil, nil
			}
			return st.res, nil
		}
		if st.text == "" {
			continue
		}
		if emit(withTimings(chunk(st.text, pending, nil, offset))) != nil {
			return nil, nil // the client went away: close() cancels the request
		}
		offset += len(st.text)
		pending = pending[:0]
	}
}
