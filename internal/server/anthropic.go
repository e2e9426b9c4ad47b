package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/kvserve/kvserve/internal/engine"
)

// Anthropic's Messages API, for Claude-style clients:
//
//	POST /v1/messages               a message (stream: Anthropic's named SSE events)
//	POST /v1/messages/count_tokens  {"input_tokens": N}
//
// A request is translated to a chat completion and runs through the same
// path (chat template, tools, reasoning, grammar-forced calls): "system"
// (a string or text blocks) becomes the first message; content blocks
// "text", "tool_use" (assistant) and "tool_result" (user: a "tool" message
// each, before the user's text) and "thinking" (assistant: the reasoning
// the template may show) map to their chat forms; images and documents are
// refused. "tools" ({name, description, input_schema}) and "tool_choice"
// ({"type": "auto" | "any" | "tool" | "none", "name",
// "disable_parallel_tool_use"}) map to OpenAI's (parallel calls allowed
// unless disabled, as Anthropic's default); "stop_sequences", "max_tokens",
// "temperature", "top_p", "top_k" as named. The answer's content blocks
// are "thinking" (the model's separated reasoning), "text" and "tool_use"
// (input parsed from the call's JSON arguments); stop_reason is
// "end_turn", "max_tokens", "stop_sequence" (with stop_sequence) or
// "tool_use". usage.input_tokens counts the prompt tokens evaluated and
// cache_read_input_tokens those reused from the slot's cache (Anthropic's
// split: their sum is the prompt). Errors are Anthropic's
// {"type":"error","error":{"type","message"}} with the same statuses as
// the other routes (503: overloaded_error).

// anthropicRequest is the part of a Messages request kvserve reads.
type anthropicRequest struct {
	Model         string             `json:"model"`
	MaxTokens     *int               `json:"max_tokens"`
	System        json.RawMessage    `json:"system"`
	Messages      []anthropicMessage `json:"messages"`
	StopSequences []string           `json:"stop_sequences"`
	Stream        bool               `json:"stream"`
	Temperature   *float64           `json:"temperature"`
	TopP          *float64           `json:"top_p"`
	TopK          *int               `json:"top_k"`
	Tools         []struct {
		Type        string          `json:"type"`
		Name        string          `json:"name"`
		Description string          `json:"description"`
		InputSchema json.RawMessage `json:"input_schema"`
	} `json:"tools"`
	ToolChoice *struct {
		Type                   string `json:"type"`
		Name                   string `json:"name"`
		DisableParallelToolUse bool   `json:"disable_parallel_tool_use"`
	} `json:"tool_choice"`
	Thinking *struct {
		Type string `json:"type"`
	} `json:"thinking"`
}

type anthropicMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type anthropicBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	Thinking  string          `json:"thinking"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	IsError   bool            `json:"is_error"`
}

// anthropicBlocks reads content: a string (one text block) or an array of blocks.
func anthropicBlocks(raw json.RawMessage, what string) ([]anthropicBlock, *apiError) {
	switch kind(raw) {
	case "a string":
		var s string
		json.Unmarshal(raw, &s)
		return []anthropicBlock{{Type: "text", Text: s}}, nil
	case "an array":
		var bs []anthropicBlock
		if err := json.Unmarshal(raw, &bs); err != nil {
			return nil, badRequest("%s: %s", what, jsonErr(err))
		}
		if len(bs) > maxMessages {
			return nil, badRequest("%s has more than %d blocks", what, maxMessages)
		}
		return bs, nil
	case "null", "":
		return nil, nil
	}
	return nil, badRequest("%s must be a string or an array of content blocks, not %s", what, kind(raw))
}

// blocksText joins text blocks; other block types are refused.
func blocksText(bs []anthropicBlock, what string) (string, *apiError) {
	var texts []string
	for j, b := range bs {
		if b.Type != "text" {
			return "", badRequest("%s[%d]: blocks of type %q are not supported here (only \"text\")", what, j, b.Type)
		}
		texts = append(texts, b.Text)
	}
	return strings.Join(texts, "\n"), nil
}

// anthropicToChat translates a Messages request into a chat completion
// request body.
func (s *Server) anthropicToChat(body []byte) ([]byte, *anthropicRequest, *apiError) {
	var ar anthropicRequest
	if aerr := decodeLenient(body, &ar); aerr != nil {
		return nil, nil, aerr
	}
	if len(ar.Messages) == 0 {
		return nil, nil, badRequest(`"messages" is required and must not be empty`)
	}
	if len(ar.Messages) > maxMessages {
		return nil, nil, badRequest(`"messages" has more than %d messages`, maxMessages)
	}
	var msgs []map[string]any
	if len(ar.System) > 0 && kind(ar.System) != "null" {
		bs, aerr := anthropicBlocks(ar.System, `"system"`)
		if aerr != nil {
			return nil, nil, aerr
		}
		sys, aerr := blocksText(bs, `"system"`)
		if aerr != nil {
			return nil, nil, aerr
		}
		msgs = append(msgs, map[string]any{"role": "system", "content": sys})
	}
	for i, m := range ar.Messages {
		what := `"messages"[` + strconv.Itoa(i) + `].content`
		bs, aerr := anthropicBlocks(m.Content, what)
		if aerr != nil {
			return nil, nil, aerr
		}
		switch m.Role {
		case "user":
			var texts []string
			for j, b := range bs {
				switch b.Type {
				case "text":
					texts = append(texts, b.Text)
				case "tool_result":
					var content string
					if kind(b.Content) == "a string" {
						json.Unmarshal(b.Content, &content)
					} else if len(b.Content) > 0 && kind(b.Content) != "null" {
						rbs, aerr := anthropicBlocks(b.Content, what+"["+strconv.Itoa(j)+"].content")
						if aerr != nil {
							return nil, nil, aerr
						}
						if content, aerr = blocksText(rbs, what+"["+strconv.Itoa(j)+"].content"); aerr != nil {
							return nil, nil, aerr
						}
					}
					if b.IsError && content == "" {
						content = "error"
					}
					msgs = append(msgs, map[string]any{"role": "tool", "tool_call_id": b.ToolUseID, "content": content})
				default:
					return nil, nil, badRequest("%s[%d]: blocks of type %q are not supported in user messages (text and tool_result are)", what, j, b.Type)
				}
			}
			if len(texts) > 0 {
				msgs = append(msgs, map[string]any{"role": "user", "content": strings.Join(texts, "\n")})
			}
		case "assistant":
			msg := map[string]any{"role": "assistant"}
			var texts, thinking []string
			var calls []any
			for j, b := range bs {
				switch b.Type {
				case "text":
					texts = append(texts, b.Text)
				case "thinking":
					thinking = append(thinking, b.Thinking)
				case "redacted_thinking":
				case "tool_use":
					if b.Name == "" {
						return nil, nil, badRequest(`%s[%d]: a tool_use block needs a "name"`, what, j)
					}
					args := "{}"
					if len(b.Input) > 0 && kind(b.Input) != "null" {
						args = string(b.Input)
					}
					calls = append(calls, map[string]any{"id": b.ID, "type": "function",
						"function": map[string]any{"name": b.Name, "arguments": args}})
				default:
					return nil, nil, badRequest("%s[%d]: blocks of type %q are not supported in assistant messages (text, thinking and tool_use are)", what, j, b.Type)
				}
			}
			msg["content"] = strings.Join(texts, "\n")
			if len(thinking) > 0 {
				msg["reasoning_content"] = strings.Join(thinking, "\n")
			}
			if len(calls) > 0 {
				msg["tool_calls"] = calls
			}
			msgs = append(msgs, msg)
		default:
			return nil, nil, badRequest(`"messages"[%d].role must be "user" or "assistant", not %q`, i, m.Role)
		}
	}
	if len(msgs) == 0 {
		return nil, nil, badRequest(`"messages" hold no content`)
	}
	// Other fields (llama-server's sampling and constraint fields such as
	// min_p, seed, grammar, reasoning_format) pass through as they are.
	var all map[string]json.RawMessage
	json.Unmarshal(body, &all)
	chat := map[string]any{}
	for k, v := range all {
		switch k {
		case "model", "max_tokens", "system", "messages", "stop_sequences", "stream", "temperature", "top_p", "top_k",
			"tools", "tool_choice", "thinking", "metadata", "service_tier", "container", "mcp_servers", "context_management":
		default:
			chat[k] = v
		}
	}
	chat["messages"], chat["stream"] = msgs, ar.Stream
	if ar.MaxTokens != nil {
		if *ar.MaxTokens < 1 {
			return nil, nil, badRequest(`"max_tokens" must be at least 1`)
		}
		chat["max_tokens"] = *ar.MaxTokens
	}
	if len(ar.StopSequences) > 0 {
		chat["stop"] = ar.StopSequences
	}
	if ar.Temperature != nil {
		chat["temperature"] = *ar.Temperature
	}
	if ar.TopP != nil {
		chat["top_p"] = *ar.TopP
	}
	if ar.TopK != nil {
		chat["top_k"] = *ar.TopK
	}
	if len(ar.Tools) > 0 {
		var tools []any
		for i, t := range ar.Tools {
			if t.Type != "" && t.Type != "custom" {
				return nil, nil, badRequest(`"tools"[%d]: tools of type %q are not supported (only client tools with an input_schema)`, i, t.Type)
			}
			fn := map[string]any{"name": t.Name, "description": t.Description}
			if len(t.InputSchema) > 0 && kind(t.InputSchema) != "null" {
				fn["parameters"] = t.InputSchema
			}
			tools = append(tools, map[string]any{"type": "function", "function": fn})
		}
		chat["tools"] = tools
		chat["parallel_tool_calls"] = true
	}
	if tc := ar.ToolChoice; tc != nil {
		switch tc.Type {
		case "auto", "":
			chat["tool_choice"] = "auto"
		case "any":
			chat["tool_choice"] = "required"
		case "none":
			chat["tool_choice"] = "none"
		case "tool":
			chat["tool_choice"] = map[string]any{"type": "function", "function": map[string]any{"name": tc.Name}}
		default:
			return nil, nil, badRequest(`"tool_choice".type must be "auto", "any", "tool" or "none", not %q`, tc.Type)
		}
		if tc.DisableParallelToolUse {
			chat["parallel_tool_calls"] = false
		}
		if len(ar.Tools) == 0 {
			delete(chat, "tool_choice")
		}
	}
	if ar.Thinking != nil && ar.Thinking.Type == "enabled" {
		chat["chat_template_kwargs"] = map[string]any{"enable_thinking": true}
	} else if ar.Thinking != nil && ar.Thinking.Type == "disabled" {
		chat["chat_template_kwargs"] = map[string]any{"enable_thinking": false}
	}
	b, err := json.Marshal(chat)
	if err != nil {
		return nil, nil, badRequest("%v", err)
	}
	return b, &ar, nil
}

// decodeLenient decodes a JSON object body into v, ignoring unknown fields.
func decodeLenient(body []byte, v any) *apiError {
	var o object
	if aerr := decodeJSON(body, &o, false); aerr != nil {
		return aerr
	}
	if err := json.Unmarshal(body, v); err != nil {
		return badRequest("invalid request: %s", jsonErr(err))
	}
	return nil
}

// anthropicError is an error in Anthropic's shape.
func anthropicError(e *apiError) map[string]any {
	typ := "invalid_request_error"
	switch e.Status {
	case http.StatusUnauthorized:
		typ = "authentication_error"
	case http.StatusForbidden:
		typ = "permission_error"
	case http.StatusNotFound:
		typ = "not_found_error"
	case http.StatusRequestEntityTooLarge:
		typ = "request_too_large"
	case http.StatusServiceUnavailable:
		typ = "overloaded_error"
	case http.StatusInternalServerError:
		typ = "api_error"
	}
	return map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": e.Message}}
}

func writeAnthropicError(w http.ResponseWriter, e *apiError) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	WriteJSON(w, e.Status, anthropicError(e))
}

// anthropicStop maps a result to stop_reason and stop_sequence.
func anthropicStop(res *engine.Result, calls int) (string, any) {
	switch chatFinishReason(res, calls) {
	case "tool_calls":
		return "tool_use", nil
	case "length":
		return "max_tokens", nil
	}
	if res.StopType == "word" {
		return "stop_sequence", res.StoppingWord
	}
	return "end_turn", nil
}

func anthropicUsage(res *engine.Result) map[string]any {
	return map[string]any{
		"input_tokens":                res.PromptTokens - res.CachedTokens,
		"cache_read_input_tokens":     res.CachedTokens,
		"cache_creation_input_tokens": 0,
		"output_tokens":               res.PredictedTokens,
	}
}

// toolInput parses a call's arguments into the tool_use block's input
// (an object; arguments that are not a JSON object are wrapped).
func toolInput(args string) any {
	var v any
	if err := json.Unmarshal([]byte(args), &v); err == nil {
		if m, ok := v.(map[string]any); ok {
			return m
		}
	}
	if strings.TrimSpace(args) == "" {
		return map[string]any{}
	}
	return map[string]any{"arguments": args}
}

// handleMessages serves POST /v1/messages.
func (s *Server) handleMessages(w http.ResponseWriter, r *http.Request) {
	req, g, rn, ar, ok := startTranslated(s, w, r, s.anthropicToChat, writeAnthropicError)
	if !ok {
		return
	}
	defer rn.close()
	model := ar.Model
	if model == "" {
		model = s.modelName
	}
	id := "msg_" + newID("")[:24]
	if g.stream {
		s.streamMessages(w, rn, g, id, model, len(req.Prompt))
		return
	}
	text, _, res, aerr := s.collect(rn)
	if aerr != nil {
		writeAnthropicError(w, aerr)
		return
	}
	var content []any
	calls := 0
	if g.plan != nil && g.plan.active() {
		cr := g.plan.finish(text, nil)
		if cr.reasoning != "" {
			content = append(content, map[string]any{"type": "thinking", "thinking": cr.reasoning, "signature": ""})
		}
		if cr.content != "" {
			content = append(content, map[string]any{"type": "text", "text": cr.content})
		}
		for _, c := range cr.calls {
			content = append(content, map[string]any{"type": "tool_use", "id": c.ID, "name": c.Name, "input": toolInput(c.Arguments)})
		}
		calls = len(cr.calls)
	} else if text != "" {
		content = append(content, map[string]any{"type": "text", "text": text})
	}
	if content == nil {
		content = []any{}
	}
	reason, seq := anthropicStop(res, calls)
	WriteJSON(w, http.StatusOK, map[string]any{
		"id": id, "type": "message", "role": "assistant", "model": model, "content": content,
		"stop_reason": reason, "stop_sequence": seq, "usage": anthropicUsage(res),
	})
}

// messageStream writes Anthropic's named events and tracks the open
// content block.
type messageStream struct {
	ev    *sse
	index int    // the open block's index (-1: none yet)
	open  string // the open block's type ("": none)
}

func (m *messageStream) send(name string, v map[string]any) error {
	v["type"] = name
	b, err := marshal(v)
	if err != nil {
		return err
	}
	return m.ev.raw("event: " + name + "\ndata: " + string(b) + "\n")
}

// start closes the open block and opens a new one.
func (m *messageStream) start(block map[string]any) error {
	if err := m.stop(); err != nil {
		return err
	}
	m.index++
	m.open = block["type"].(string)
	return m.send("content_block_start", map[string]any{"index": m.index, "content_block": block})
}

func (m *messageStream) stop() error {
	if m.open == "" {
		return nil
	}
	if m.open == "thinking" {
		if err := m.send("content_block_delta", map[string]any{"index": m.index, "delta": map[string]any{"type": "signature_delta", "signature": ""}}); err != nil {
			return err
		}
	}
	m.open = ""
	return m.send("content_block_stop", map[string]any{"index": m.index})
}

// text adds text to a block of type typ ("text" or "thinking"), opening one if needed.
func (m *messageStream) text(typ, s string) error {
	if s == "" {
		return nil
	}
	if m.open != typ {
		block := map[string]any{"type": typ, typ: ""}
		if typ == "thinking" {
			block["signature"] = ""
		}
		if err := m.start(block); err != nil {
			return err
		}
	}
	delta := map[string]any{"type": "text_delta", "text": s}
	if typ == "thinking" {
		delta = map[string]any{"type": "thinking_delta", "thinking": s}
	}
	return m.send("content_block_delta", map[string]any{"index": m.index, "delta": delta})
}

// streamMessages streams a message: message_start, then per content
// block content_block_start, content_block_delta (text_delta,
// thinking_delta, input_json_delta) and content_block_stop, then
// message_delta (stop_reason, usage) and message_stop. An error after
// the start is an "error" event.
func (s *Server) streamMessages(w http.ResponseWriter, rn *run, g genOptions, id, model string, promptTokens int) {
	m := &messageStream{ev: newSSE(w), index: -1}
	fail := func(e *apiError) { m.send("error", anthropicError(e)) }
	if m.send("message_start", map[string]any{"message": map[string]any{
		"id": id, "type": "message", "role": "assistant", "model": model, "content": []any{},
		"stop_reason": nil, "stop_sequence": nil,
		"usage": map[string]any{"input_tokens": promptTokens, "output_tokens": 0},
	}}) != nil {
		return
	}
	if m.send("ping", map[string]any{}) != nil {
		return
	}
	var cs *chatStream
	if g.plan != nil && g.plan.active() {
		cs = &chatStream{plan: g.plan}
	}
	for {
		st, aerr := s.next(rn)
		if aerr != nil {
			fail(aerr)
			return
		}
		if cs == nil {
			if m.text("text", st.text) != nil {
				return
			}
		} else {
			for _, d := range cs.feed(st.text, st.res != nil) {
				if err := m.delta(d); err != nil {
					return
				}
			}
		}
		if st.res != nil {
			if m.stop() != nil {
				return
			}
			calls := 0
			if cs != nil {
				calls = cs.calls()
			}
			reason, seq := anthropicStop(st.res, calls)
			u := anthropicUsage(st.res)
			if m.send("message_delta", map[string]any{"delta": map[string]any{"stop_reason": reason, "stop_sequence": seq}, "usage": u}) != nil {
				return
			}
			m.send("message_stop", map[string]any{})
			return
		}
	}
}

// delta sends one chatStream delta as Anthropic events.
func (m *messageStream) delta(d map[string]any) error {
	if r, ok := d["reasoning_content"].(string); ok {
		return m.text("thinking", r)
	}
	if c, ok := d["content"].(string); ok {
		return m.text("text", c)
	}
	tcs, _ := d["tool_calls"].([]any)
	for _, tc := range tcs {
		t := tc.(map[string]any)
		fn, _ := t["function"].(map[string]any)
		if id, ok := t["id"].(string); ok {
			if err := m.start(map[string]any{"type": "tool_use", "id": id, "name": fn["name"], "input": map[string]any{}}); err != nil {
				return err
			}
		}
		if args, _ := fn["arguments"].(string); args != "" {
			if err := m.send("content_block_delta", map[string]any{"index": m.index, "delta": map[string]any{"type": "input_json_delta", "partial_json": args}}); err != nil {
				return err
			}
		}
	}
	return nil
}

// handleCountTokens serves POST /v1/messages/count_tokens: the prompt's
// tokens as the chat template renders the request.
func (s *Server) handleCountTokens(w http.ResponseWriter, r *http.Request) {
	body, aerr := readBody(r)
	if aerr != nil {
		writeAnthropicError(w, aerr)
		return
	}
	chat, _, aerr := s.anthropicToChat(body)
	if aerr != nil {
		writeAnthropicError(w, aerr)
		return
	}
	req, _, aerr := s.decodeCompletion(chat, apiOAIChat)
	if aerr != nil {
		writeAnthropicError(w, aerr)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"input_tokens": len(req.Prompt)})
}
