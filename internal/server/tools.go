package server

import (
	"encoding/json"
	"strings"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/grammar"
	"github.com/kvserve/kvserve/internal/toolcall"
)

// Reasoning formats (llama-server's --reasoning-format and the request's
// "reasoning_format").
const (
	ReasoningAuto     = "auto"     // separate reasoning when the template has thinking markers
	ReasoningNone     = "none"     // leave reasoning in the content
	ReasoningDeepseek = "deepseek" // always separate <think>...</think>
)

// ValidReasoningFormat reports whether f is a reasoning format.
func ValidReasoningFormat(f string) bool {
	return f == ReasoningAuto || f == ReasoningNone || f == ReasoningDeepseek
}

// chatPlan is how a chat request uses tools and reasoning: what the
// template sees and how the output is read.
type chatPlan struct {
	tmpl     toolcall.Template
	tools    []toolcall.Tool
	toolsRaw json.RawMessage // the request's "tools", as the template sees them
	choice   string          // "none", "auto", "required" or "function"
	only     string          // the function of a named tool_choice
	parallel bool
	parser   toolcall.Parser
}

// active reports whether the output is parsed (tool calls, reasoning, or
// harmony channels); otherwise it is plain content, as without this plan.
func (p *chatPlan) active() bool {
	return p.parser.Tools || p.parser.Reasoning || p.parser.Format == toolcall.Harmony
}

// forced reports whether a grammar forces a call.
func (p *chatPlan) forced() bool { return p.choice == "required" || p.choice == "function" }

// maxTools bounds a chat request's "tools".
const maxTools = 1024

// parsePlan reads tools, tool_choice, parallel_tool_calls and
// reasoning_format.
func (s *Server) parsePlan(o *object) (*chatPlan, *apiError) {
	p := &chatPlan{choice: "none"}
	if s.chat != nil {
		p.tmpl = toolcall.Detect(s.chat.source())
	}
	items, hasTools := o.array("tools", maxTools)
	if o.err != nil {
		return nil, o.err
	}
	if hasTools && len(items) > 0 {
		p.choice = "auto"
		p.toolsRaw, _ = o.raw("tools")
		seen := map[string]bool{}
		for i, it := range items {
			to, err := parseObject(it)
			if err != nil {
				return nil, badRequest(`"tools"[%d] must be an object`, i)
			}
			if typ := to.string("type", "function"); typ != "function" {
				if to.err == nil {
					return nil, badRequest(`"tools"[%d]: tools of type %q are not supported (only "function")`, i, typ)
				}
			}
			fn := to.object("function")
			if to.err != nil {
				return nil, badRequest(`"tools"[%d]: %s`, i, to.err.Message)
			}
			if fn == nil {
				return nil, badRequest(`"tools"[%d]: "function" is required`, i)
			}
			t := toolcall.Tool{Name: fn.string("name", ""), Description: fn.string("description", "")}
			if raw, ok := fn.raw("parameters"); ok {
				if kind(raw) != "an object" {
					return nil, badRequest(`"tools"[%d].function.parameters must be a JSON Schema object, not %s`, i, kind(raw))
				}
				t.Parameters = raw
			}
			if fn.err != nil {
				return nil, badRequest(`"tools"[%d].function: %s`, i, fn.err.Message)
			}
			if !toolcall.ValidName(t.Name) {
				return nil, badRequest(`"tools"[%d].function.name %q must be 1 to 64 letters, digits, underscores or dashes`, i, t.Name)
			}
			if seen[t.Name] {
				return nil, badRequest(`"tools": the function %q is defined twice`, t.Name)
			}
			seen[t.Name] = true
			p.tools = append(p.tools, t)
		}
	}
	if raw, ok := o.raw("tool_choice"); ok {
		switch kind(raw) {
		case "a string":
			var c string
			json.Unmarshal(raw, &c)
			switch c {
			case "none", "auto", "required":
				p.choice = c
			default:
				return nil, badRequest(`"tool_choice" must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}}, not %q`, c)
			}
		case "an object":
			co, _ := parseObject(raw)
			fn := co.object("function")
			if co.err != nil || fn == nil {
				return nil, badRequest(`"tool_choice" object must be {"type": "function", "function": {"name": ...}}`)
			}
			p.choice, p.only = "function", fn.string("name", "")
			if fn.err != nil {
				return nil, badRequest(`"tool_choice".function: %s`, fn.err.Message)
			}
			if !seen(p.tools, p.only) {
				return nil, badRequest(`"tool_choice" names the function %q, which is not in "tools"`, p.only)
			}
		default:
			return nil, badRequest(`"tool_choice" must be a string or an object, not %s`, kind(raw))
		}
		if p.choice != "none" && len(p.tools) == 0 {
			return nil, badRequest(`"tool_choice" %q needs "tools"`, p.choice)
		}
	}
	p.parallel = o.bool("parallel_tool_calls", false)
	rf := o.string("reasoning_format", s.o.ReasoningFormat)
	if o.err != nil {
		return nil, o.err
	}
	if rf == "" {
		rf = ReasoningAuto
	}
	if !ValidReasoningFormat(rf) {
		return nil, badRequest(`"reasoning_format" must be "auto", "none" or "deepseek", not %q`, rf)
	}
	if p.choice != "none" && !p.tmpl.Tools {
		// The template cannot show the tools: describe them in a system
		// message in the generic format, and read that format.
		p.tmpl.Format = toolcall.Generic
	}
	p.parser = toolcall.Parser{
		Format:    p.tmpl.Format,
		Tools:     p.choice != "none",
		Reasoning: rf == ReasoningDeepseek || rf == ReasoningAuto && (p.tmpl.Thinking || p.tmpl.Format == toolcall.Harmony),
	}
	return p, nil
}

func seen(tools []toolcall.Tool, name string) bool {
	for _, t := range tools {
		if t.Name == name {
			return true
		}
	}
	return false
}

// prepare adapts the conversation to the template: the tools described in
// a system message when the template does not render them; assistant tool
// calls written as text in the format when it does not render tool_calls;
// tool results as user messages when it does not know the tool role. It
// returns the extra template variables.
func (p *chatPlan) prepare(msgs []chatMessage) ([]chatMessage, map[string]any) {
	extra := map[string]any{}
	if p.choice != "none" {
		if p.tmpl.Tools {
			extra["tools"] = p.toolsRaw
		} else {
			sys := toolcall.SystemPrompt(p.tools)
			if len(msgs) > 0 && msgs[0].Role == "system" {
				msgs[0].Content = strings.TrimRight(msgs[0].Content, "\n") + "\n\n" + sys
			} else {
				msgs = append([]chatMessage{{Role: "system", Content: sys}}, msgs...)
			}
		}
	}
	for i := range msgs {
		m := &msgs[i]
		if len(m.ToolCalls) > 0 && !p.tmpl.ToolCalls {
			var calls []toolcall.Call
			for _, c := range m.ToolCalls {
				calls = append(calls, toolcall.Call{ID: c.ID, Name: c.Name, Arguments: c.Arguments})
			}
			if m.Content != "" {
				m.Content += "\n"
			}
			m.Content += toolcall.Wire(p.tmpl.Format, calls)
			m.ToolCalls, m.NullContent = nil, false
		}
		if m.Role == "tool" && !p.tmpl.ToolRole {
			resp := map[string]any{"content": m.Content}
			if m.ToolCallID != "" {
				resp["tool_call_id"] = m.ToolCallID
			}
			if m.Name != "" {
				resp["name"] = m.Name
			}
			b, _ := json.Marshal(map[string]any{"tool_response": resp})
			*m = chatMessage{Role: "user", Content: string(b)}
		}
	}
	return msgs, extra
}

// usePlan sets a chat request's options from its plan: a forced call's
// grammar (which no other constraint may accompany) and, for formats
// whose call markers are control tokens, special tokens in the output.
func (g *genOptions) usePlan(p *chatPlan) *apiError {
	g.plan = p
	if p.forced() {
		if g.grammar != nil && !g.grammarDefault {
			return badRequest(`"grammar", "json_schema" or "response_format" cannot be combined with tool_choice %q`, p.choice)
		}
		var aerr *apiError
		if g.grammar, aerr = p.grammar(); aerr != nil {
			return aerr
		}
	}
	if p.parser.Tools && (p.tmpl.Format == toolcall.Llama3 || p.tmpl.Format == toolcall.Mistral) {
		g.special = true // <|python_tag|> and [TOOL_CALLS] are control tokens
	}
	return nil
}

// grammar returns the grammar forcing a call (tool_choice "required" or a
// named function).
func (p *chatPlan) grammar() (*grammar.Grammar, *apiError) {
	think := toolcall.NoThink
	if p.parser.Reasoning && p.tmpl.Format != toolcall.Harmony {
		think = toolcall.ThinkOptional
		if p.parser.InThink {
			think = toolcall.ThinkOpen
		}
	}
	src, err := toolcall.Grammar(p.tmpl.Format, p.tools, toolcall.GrammarOptions{Only: p.only, Parallel: p.parallel, Think: think})
	if err != nil {
		return nil, badRequest(`"tools": %v`, err)
	}
	g, err := grammar.Parse(src, grammar.Limits{})
	if err != nil {
		return nil, badRequest(`"tools": the arguments' schemas compile to a grammar that is %v`, err)
	}
	return g, nil
}

// chatResult is a chat completion's message, read from the output.
type chatResult struct {
	reasoning string
	content   string
	calls     []toolcall.Call
}

// finish parses the whole output. Calls keep the ids given so far (ids
// of calls already streamed); new ones get fresh ids.
func (p *chatPlan) finish(text string, ids []string) chatResult {
	r := p.parser.Parse(text, true)
	out := chatResult{reasoning: r.Reasoning, content: r.Content}
	for i, c := range r.Calls {
		id := c.ID
		if i < len(ids) && ids[i] != "" {
			id = ids[i]
		}
		if id == "" {
			id = newCallID()
		}
		out.calls = append(out.calls, toolcall.Call{ID: id, Name: c.Name, Arguments: c.Args})
	}
	return out
}

func newCallID() string { return "call_" + newID("")[:24] }

// message is the OpenAI message of a result.
func (c chatResult) message() map[string]any {
	m := map[string]any{"role": "assistant", "content": c.content}
	if c.reasoning != "" {
		m["reasoning_content"] = c.reasoning
	}
	if len(c.calls) > 0 {
		if c.content == "" {
			m["content"] = nil
		}
		var tcs []any
		for _, tc := range c.calls {
			tcs = append(tcs, map[string]any{
				"id": tc.ID, "type": "function",
				"function": map[string]any{"name": tc.Name, "arguments": tc.Arguments},
			})
		}
		m["tool_calls"] = tcs
	}
	return m
}

// chatFinishReason is finish_reason for a chat result: "tool_calls" when
// the model called tools and was not cut short.
func chatFinishReason(res *engine.Result, calls int) string {
	fr := finishReason(res)
	if fr == "stop" && calls > 0 {
		return "tool_calls"
	}
	return fr
}

// chatStream turns streamed output into OpenAI deltas: reasoning_content
// and content as they become certain, tool calls as
// delta.tool_calls[i] — the first with id, type and name, then argument
// chunks. A forced call (whose grammar guarantees it parses) streams its
// arguments as they are generated; with tool_choice "auto" calls are sent
// when the output ends and parses (so output that fails to parse can
// still be returned as content).
type chatStream struct {
	plan             *chatPlan
	text             strings.Builder
	sentR, sentC     int
	ids              []string // per call: its id once sent
	named            []bool   // per call: the first delta (id, name) was sent
	sentArgs         []int    // per call: bytes of arguments sent
	streamedAnyCalls bool
}

// calls is the number of calls sent.
func (cs *chatStream) calls() int {
	n := 0
	for _, b := range cs.named {
		if b {
			n++
		}
	}
	return n
}

// feed adds generated text and returns the deltas to send.
func (cs *chatStream) feed(text string, final bool) []map[string]any {
	cs.text.WriteString(text)
	r := cs.plan.parser.Parse(cs.text.String(), final)
	var out []map[string]any
	// Results of successive prefixes extend each other (toolcall.Parser
	// guarantees it), so deltas are the new suffixes.
	if len(r.Reasoning) > cs.sentR {
		out = append(out, map[string]any{"reasoning_content": r.Reasoning[cs.sentR:]})
		cs.sentR = len(r.Reasoning)
	}
	if r.Failed && cs.streamedAnyCalls {
		return out // a forced call cut short: the calls sent stand
	}
	if len(r.Content) > cs.sentC {
		out = append(out, map[string]any{"content": r.Content[cs.sentC:]})
		cs.sentC = len(r.Content)
	}
	if r.Failed || !(cs.plan.forced() || final) {
		return out
	}
	for i, c := range r.Calls {
		if i >= len(cs.ids) {
			cs.ids = append(cs.ids, c.ID)
			cs.named = append(cs.named, false)
			cs.sentArgs = append(cs.sentArgs, 0)
		}
		if !cs.named[i] {
			if c.Name == "" {
				break
			}
			if cs.ids[i] == "" {
				cs.ids[i] = newCallID()
			}
			cs.named[i] = true
			cs.streamedAnyCalls = true
			out = append(out, map[string]any{"tool_calls": []any{map[string]any{
				"index": i, "id": cs.ids[i], "type": "function",
				"function": map[string]any{"name": c.Name, "arguments": ""},
			}}})
		}
		if len(c.Args) > cs.sentArgs[i] {
			out = append(out, map[string]any{"tool_calls": []any{map[string]any{
				"index": i, "function": map[string]any{"arguments": c.Args[cs.sentArgs[i]:]},
			}}})
			cs.sentArgs[i] = len(c.Args)
		}
		if !c.Done {
			break
		}
	}
	return out
}
