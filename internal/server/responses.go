package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kvserve/kvserve/internal/engine"
)

// OpenAI's Responses API, POST /v1/responses: the request is translated to
// a chat completion and runs through the same path (template, tools,
// reasoning, constrained output). Read: "input" (a string, or items:
// messages {role, content: a string or input_text / output_text parts},
// "function_call" {call_id, name, arguments} and "function_call_output"
// {call_id, output}), "instructions" (a system message first),
// "max_output_tokens", "temperature", "top_p", "tools" (function tools:
// {type: "function", name, description, parameters}), "tool_choice",
// "parallel_tool_calls", "text.format" ({type: "text"}, {type:
// "json_object"} or {type: "json_schema", schema}) and "stream". The
// answer's "output" holds a "reasoning" item (the model's separated
// reasoning), a "message" item with one output_text part, and
// "function_call" items; "status" is "completed", or "incomplete" with
// incomplete_details.reason "max_output_tokens". Streaming sends the
// Responses events (response.created, response.in_progress,
// response.output_item.added, response.content_part.added,
// response.output_text.delta / .done, response.reasoning_text.delta /
// .done, response.function_call_arguments.delta / .done,
// response.content_part.done, response.output_item.done,
// response.completed or response.incomplete), each with a
// sequence_number. Nothing is stored: "previous_response_id" and
// "store": true are refused, as are built-in tools and non-text input.

type responsesRequest struct {
	Model           string          `json:"model"`
	Input           json.RawMessage `json:"input"`
	Instructions    *string         `json:"instructions"`
	MaxOutputTokens *int            `json:"max_output_tokens"`
	Temperature     *float64        `json:"temperature"`
	TopP            *float64        `json:"top_p"`
	Stream          bool            `json:"stream"`
	Tools           []struct {
		Type        string          `json:"type"`
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"tools"`
	ToolChoice         json.RawMessage `json:"tool_choice"`
	ParallelToolCalls  *bool           `json:"parallel_tool_calls"`
	PreviousResponseID string          `json:"previous_response_id"`
	Text               *struct {
		Format *struct {
			Type   string          `json:"type"`
			Name   string          `json:"name"`
			Schema json.RawMessage `json:"schema"`
			Strict *bool           `json:"strict"`
		} `json:"format"`
	} `json:"text"`
}

type responsesItem struct {
	Type      string          `json:"type"`
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	CallID    string          `json:"call_id"`
	Name      string          `json:"name"`
	Arguments string          `json:"arguments"`
	Output    json.RawMessage `json:"output"`
}

// responsesText reads message content: a string or text parts.
func responsesText(raw json.RawMessage, what string) (string, *apiError) {
	switch kind(raw) {
	case "a string":
		var s string
		json.Unmarshal(raw, &s)
		return s, nil
	case "an array":
		var parts []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		if err := json.Unmarshal(raw, &parts); err != nil {
			return "", badRequest("%s: %s", what, jsonErr(err))
		}
		var texts []string
		for j, p := range parts {
			switch p.Type {
			case "input_text", "output_text", "text", "summary_text", "reasoning_text":
				texts = append(texts, p.Text)
			default:
				return "", badRequest("%s[%d]: content of type %q is not supported (only text)", what, j, p.Type)
			}
		}
		return strings.Join(texts, "\n"), nil
	case "null", "":
		return "", nil
	}
	return "", badRequest("%s must be a string or an array of text parts, not %s", what, kind(raw))
}

// responsesToChat translates a Responses request to a chat request body.
func (s *Server) responsesToChat(body []byte) ([]byte, *responsesRequest, *apiError) {
	var rr responsesRequest
	if aerr := decodeLenient(body, &rr); aerr != nil {
		return nil, nil, aerr
	}
	if rr.PreviousResponseID != "" {
		return nil, nil, badRequest(`"previous_response_id" is not supported: kvserve stores no responses (send the whole conversation in "input")`)
	}
	var msgs []map[string]any
	if rr.Instructions != nil && *rr.Instructions != "" {
		msgs = append(msgs, map[string]any{"role": "system", "content": *rr.Instructions})
	}
	switch kind(rr.Input) {
	case "a string":
		var t string
		json.Unmarshal(rr.Input, &t)
		msgs = append(msgs, map[string]any{"role": "user", "content": t})
	case "an array":
		var items []responsesItem
		if err := json.Unmarshal(rr.Input, &items); err != nil {
			return nil, nil, badRequest(`"input": %s`, jsonErr(err))
		}
		if len(items) > maxMessages {
			return nil, nil, badRequest(`"input" has more than %d items`, maxMessages)
		}
		for i, it := range items {
			what := `"input"[` + strconv.Itoa(i) + `]`
			switch it.Type {
			case "message", "":
				role := it.Role
				if role == "developer" {
					role = "system"
				}
				if role != "user" && role != "assistant" && role != "system" {
					return nil, nil, badRequest(`%s.role must be "user", "assistant", "system" or "developer", not %q`, what, it.Role)
				}
				text, aerr := responsesText(it.Content, what+".content")
				if aerr != nil {
					return nil, nil, aerr
				}
				msgs = append(msgs, map[string]any{"role": role, "content": text})
			case "function_call":
				if it.Name == "" {
					return nil, nil, badRequest(`%s: a function_call needs a "name"`, what)
				}
				call := map[string]any{"id": it.CallID, "type": "function", "function": map[string]any{"name": it.Name, "arguments": it.Arguments}}
				// Consecutive calls belong to one assistant turn.
				if n := len(msgs); n > 0 && msgs[n-1]["role"] == "assistant" && msgs[n-1]["tool_calls"] != nil && msgs[n-1]["content"] == "" {
					msgs[n-1]["tool_calls"] = append(msgs[n-1]["tool_calls"].([]any), call)
				} else {
					msgs = append(msgs, map[string]any{"role": "assistant", "content": "", "tool_calls": []any{call}})
				}
			case "function_call_output":
				out, aerr := responsesText(it.Output, what+".output")
				if aerr != nil {
					return nil, nil, aerr
				}
				msgs = append(msgs, map[string]any{"role": "tool", "tool_call_id": it.CallID, "content": out})
			case "reasoning":
			default:
				return nil, nil, badRequest(`%s: items of type %q are not supported`, what, it.Type)
			}
		}
	default:
		return nil, nil, badRequest(`"input" must be a string or an array of items, not %s`, kind(rr.Input))
	}
	if len(msgs) == 0 {
		return nil, nil, badRequest(`"input" holds no message`)
	}
	var all map[string]json.RawMessage
	json.Unmarshal(body, &all)
	if st, ok := all["store"]; ok && string(st) == "true" {
		return nil, nil, badRequest(`"store": true is not supported: kvserve stores no responses`)
	}
	chat := map[string]any{}
	for k, v := range all {
		switch k {
		case "model", "input", "instructions", "max_output_tokens", "stream", "tools", "tool_choice", "text", "store",
			"previous_response_id", "reasoning", "metadata", "include", "truncation", "user", "background", "service_tier",
			"prompt_cache_key", "safety_identifier", "max_tool_calls", "top_logprobs", "stream_options":
		default:
			chat[k] = v
		}
	}
	chat["messages"], chat["stream"] = msgs, rr.Stream
	if rr.MaxOutputTokens != nil {
		chat["max_tokens"] = *rr.MaxOutputTokens
	}
	if len(rr.Tools) > 0 {
		var tools []any
		for i, t := range rr.Tools {
			if t.Type != "function" {
				return nil, nil, badRequest(`"tools"[%d]: tools of type %q are not supported (only "function")`, i, t.Type)
			}
			fn := map[string]any{"name": t.Name, "description": t.Description}
			if len(t.Parameters) > 0 && kind(t.Parameters) != "null" {
				fn["parameters"] = t.Parameters
			}
			tools = append(tools, map[string]any{"type": "function", "function": fn})
		}
		chat["tools"] = tools
		chat["parallel_tool_calls"] = rr.ParallelToolCalls == nil || *rr.ParallelToolCalls
	}
	if len(rr.ToolChoice) > 0 && kind(rr.ToolChoice) != "null" && len(rr.Tools) > 0 {
		if kind(rr.ToolChoice) == "a string" {
			chat["tool_choice"] = rr.ToolChoice
		} else {
			var tc struct{ Type, Name string }
			json.Unmarshal(rr.ToolChoice, &tc)
			if tc.Type != "function" || tc.Name == "" {
				return nil, nil, badRequest(`"tool_choice" must be "none", "auto", "required" or {"type": "function", "name": ...}`)
			}
			chat["tool_choice"] = map[string]any{"type": "function", "function": map[string]any{"name": tc.Name}}
		}
	}
	if rr.Text != nil && rr.Text.Format != nil {
		switch f := rr.Text.Format; f.Type {
		case "text", "":
		case "json_object":
			chat["response_format"] = map[string]any{"type": "json_object"}
		case "json_schema":
			js := map[string]any{"name": f.Name, "schema": f.Schema}
			if f.Strict != nil {
				js["strict"] = *f.Strict
			}
			chat["response_format"] = map[string]any{"type": "json_schema", "json_schema": js}
		default:
			return nil, nil, badRequest(`"text.format".type must be "text", "json_object" or "json_schema", not %q`, f.Type)
		}
	}
	b, err := json.Marshal(chat)
	if err != nil {
		return nil, nil, badRequest("%v", err)
	}
	return b, &rr, nil
}

// responseObject is the response's envelope, without its output.
func (s *Server) responseObject(id, model string, created int64, rr *responsesRequest, status string) map[string]any {
	r := map[string]any{
		"id": id, "object": "response", "created_at": created, "status": status, "model": model,
		"output": []any{}, "error": nil, "incomplete_details": nil, "instructions": rr.Instructions,
		"max_output_tokens": rr.MaxOutputTokens, "parallel_tool_calls": rr.ParallelToolCalls == nil || *rr.ParallelToolCalls,
		"temperature": rr.Temperature, "top_p": rr.TopP, "tools": []any{}, "tool_choice": "auto",
		"previous_response_id": nil, "store": false, "text": map[string]any{"format": map[string]any{"type": "text"}},
		"usage": nil, "metadata": map[string]any{},
	}
	if len(rr.Tools) > 0 {
		var tools []any
		for _, t := range rr.Tools {
			tools = append(tools, map[string]any{"type": "function", "name": t.Name, "description": t.Description, "parameters": t.Parameters, "strict": false})
		}
		r["tools"] = tools
	}
	return r
}

func responsesUsage(res *engine.Result) map[string]any {
	return map[string]any{
		"input_tokens": res.PromptTokens, "input_tokens_details": map[string]any{"cached_tokens": res.CachedTokens},
		"output_tokens": res.PredictedTokens, "output_tokens_details": map[string]any{"reasoning_tokens": 0},
		"total_tokens": res.PromptTokens + res.PredictedTokens,
	}
}

// finishResponse sets the status, usage and incomplete_details of a finished response.
func finishResponse(r map[string]any, res *engine.Result) {
	r["usage"] = responsesUsage(res)
	if finishReason(res) == "length" {
		r["status"] = "incomplete"
		r["incomplete_details"] = map[string]any{"reason": "max_output_tokens"}
	} else {
		r["status"] = "completed"
	}
}

func messageItem(id, text, status string) map[string]any {
	return map[string]any{"type": "message", "id": id, "status": status, "role": "assistant",
		"content": []any{map[string]any{"type": "output_text", "text": text, "annotations": []any{}}}}
}

func reasoningItem(id, text string) map[string]any {
	return map[string]any{"type": "reasoning", "id": id, "summary": []any{},
		"content": []any{map[string]any{"type": "reasoning_text", "text": text}}}
}

func functionCallItem(id, callID, name, args, status string) map[string]any {
	return map[string]any{"type": "function_call", "id": id, "call_id": callID, "name": name, "arguments": args, "status": status}
}

// handleResponses serves POST /v1/responses.
func (s *Server) handleResponses(w http.ResponseWriter, r *http.Request) {
	_, g, rn, rr, ok := startTranslated(s, w, r, s.responsesToChat, func(w http.ResponseWriter, e *apiError) { WriteError(w, e) })
	if !ok {
		return
	}
	defer rn.close()
	model := rr.Model
	if model == "" {
		model = s.modelName
	}
	id := "resp_" + newID("")[:24]
	created := time.Now().Unix()
	if g.stream {
		s.streamResponses(w, rn, g, s.responseObject(id, model, created, rr, "in_progress"))
		return
	}
	text, _, res, aerr := s.collect(rn)
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	resp := s.responseObject(id, model, created, rr, "completed")
	var output []any
	if g.plan != nil && g.plan.active() {
		cr := g.plan.finish(text, nil)
		if cr.reasoning != "" {
			output = append(output, reasoningItem("rs_"+newID("")[:24], cr.reasoning))
		}
		if cr.content != "" || len(cr.calls) == 0 {
			output = append(output, messageItem("msg_"+newID("")[:24], cr.content, "completed"))
		}
		for _, c := range cr.calls {
			output = append(output, functionCallItem("fc_"+newID("")[:24], c.ID, c.Name, c.Arguments, "completed"))
		}
	} else {
		output = append(output, messageItem("msg_"+newID("")[:24], text, "completed"))
	}
	resp["output"] = output
	finishResponse(resp, res)
	WriteJSON(w, http.StatusOK, resp)
}

// responsesStream writes the Responses events and tracks the open item.
type responsesStream struct {
	ev     *sse
	seq    int
	output []any
	// the open item: its index in output, kind ("message", "reasoning",
	// "function_call") and text so far
	open string
	idx  int
	buf  strings.Builder
	item map[string]any
}

func (m *responsesStream) send(typ string, v map[string]any) error {
	v["type"] = typ
	v["sequence_number"] = m.seq
	m.seq++
	b, err := marshal(v)
	if err != nil {
		return err
	}
	return m.ev.raw("event: " + typ + "\ndata: " + string(b) + "\n")
}

// close finishes the open item.
func (m *responsesStream) close() error {
	if m.open == "" {
		return nil
	}
	text := m.buf.String()
	id := m.item["id"]
	var err error
	switch m.open {
	case "message":
		part := map[string]any{"type": "output_text", "text": text, "annotations": []any{}}
		if err = m.send("response.output_text.done", map[string]any{"item_id": id, "output_index": m.idx, "content_index": 0, "text": text}); err == nil {
			err = m.send("response.content_part.done", map[string]any{"item_id": id, "output_index": m.idx, "content_index": 0, "part": part})
		}
		m.item = messageItem(id.(string), text, "completed")
	case "reasoning":
		if err = m.send("response.reasoning_text.done", map[string]any{"item_id": id, "output_index": m.idx, "content_index": 0, "text": text}); err == nil {
			err = m.send("response.content_part.done", map[string]any{"item_id": id, "output_index": m.idx, "content_index": 0,
				"part": map[string]any{"type": "reasoning_text", "text": text}})
		}
		m.item = reasoningItem(id.(string), text)
	case "function_call":
		err = m.send("response.function_call_arguments.done", map[string]any{"item_id": id, "output_index": m.idx, "arguments": text})
		m.item = functionCallItem(id.(string), m.item["call_id"].(string), m.item["name"].(string), text, "completed")
	}
	if err != nil {
		return err
	}
	m.output[m.idx] = m.item
	m.open = ""
	return m.send("response.output_item.done", map[string]any{"output_index": m.idx, "item": m.item})
}

// begin opens a new item.
func (m *responsesStream) begin(kind string, item map[string]any) error {
	if err := m.close(); err != nil {
		return err
	}
	m.open, m.idx, m.item = kind, len(m.output), item
	m.buf.Reset()
	m.output = append(m.output, item)
	if err := m.send("response.output_item.added", map[string]any{"output_index": m.idx, "item": item}); err != nil {
		return err
	}
	switch kind {
	case "message":
		return m.send("response.content_part.added", map[string]any{"item_id": item["id"], "output_index": m.idx, "content_index": 0,
			"part": map[string]any{"type": "output_text", "text": "", "annotations": []any{}}})
	case "reasoning":
		return m.send("response.content_part.added", map[string]any{"item_id": item["id"], "output_index": m.idx, "content_index": 0,
			"part": map[string]any{"type": "reasoning_text", "text": ""}})
	}
	return nil
}

// text adds text to the open item of kind ("message" or "reasoning").
func (m *responsesStream) text(kind, t string) error {
	if t == "" {
		return nil
	}
	if m.open != kind {
		item := map[string]any{"type": "message", "id": "msg_" + newID("")[:24], "status": "in_progress", "role": "assistant", "content": []any{}}
		if kind == "reasoning" {
			item = map[string]any{"type": "reasoning", "id": "rs_" + newID("")[:24], "summary": []any{}, "content": []any{}}
		}
		if err := m.begin(kind, item); err != nil {
			return err
		}
	}
	m.buf.WriteString(t)
	typ := "response.output_text.delta"
	if kind == "reasoning" {
		typ = "response.reasoning_text.delta"
	}
	return m.send(typ, map[string]any{"item_id": m.item["id"], "output_index": m.idx, "content_index": 0, "delta": t})
}

// delta sends one chatStream delta.
func (m *responsesStream) delta(d map[string]any) error {
	if r, ok := d["reasoning_content"].(string); ok {
		return m.text("reasoning", r)
	}
	if c, ok := d["content"].(string); ok {
		return m.text("message", c)
	}
	tcs, _ := d["tool_calls"].([]any)
	for _, tc := range tcs {
		t := tc.(map[string]any)
		fn, _ := t["function"].(map[string]any)
		if id, ok := t["id"].(string); ok {
			name, _ := fn["name"].(string)
			if err := m.begin("function_call", functionCallItem("fc_"+newID("")[:24], id, name, "", "in_progress")); err != nil {
				return err
			}
		}
		if args, _ := fn["arguments"].(string); args != "" && m.open == "function_call" {
			m.buf.WriteString(args)
			if err := m.send("response.function_call_arguments.delta", map[string]any{"item_id": m.item["id"], "output_index": m.idx, "delta": args}); err != nil {
				return err
			}
		}
	}
	return nil
}

// streamResponses streams a response's events.
func (s *Server) streamResponses(w http.ResponseWriter, rn *run, g genOptions, resp map[string]any) {
	m := &responsesStream{ev: newSSE(w)}
	if m.send("response.created", map[string]any{"response": resp}) != nil ||
		m.send("response.in_progress", map[string]any{"response": resp}) != nil {
		return
	}
	var cs *chatStream
	if g.plan != nil && g.plan.active() {
		cs = &chatStream{plan: g.plan}
	}
	for {
		st, aerr := s.next(rn)
		if aerr != nil {
			m.send("error", map[string]any{"code": aerr.Type, "message": aerr.Message, "param": nil})
			return
		}
		if cs == nil {
			if m.text("message", st.text) != nil {
				return
			}
		} else {
			for _, d := range cs.feed(st.text, st.res != nil) {
				if m.delta(d) != nil {
					return
				}
			}
		}
		if st.res != nil {
			if len(m.output) == 0 {
				// An empty answer is still a message.
				if m.begin("message", map[string]any{"type": "message", "id": "msg_" + newID("")[:24], "status": "in_progress", "role": "assistant", "content": []any{}}) != nil {
					return
				}
			}
			if m.close() != nil {
				return
			}
			resp["output"] = m.output
			finishResponse(resp, st.res)
			typ := "response.completed"
			if resp["status"] == "incomplete" {
				typ = "response.incomplete"
			}
			m.send(typ, map[string]any{"response": resp})
			return
		}
	}
}
