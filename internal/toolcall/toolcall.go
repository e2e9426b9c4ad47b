// Package toolcall owns tool calling's wire formats: which format a model
// writes tool calls in (detected from its chat template's source), the
// grammar that forces a call whose arguments validate against the
// function's JSON Schema (tool_choice "required" or a named function), the
// text of earlier calls for templates that cannot render them, and the
// parsing of model output — whole or as it streams — into reasoning,
// content and calls.
//
// Formats:
//
//   - Llama3 (templates with <|start_header_id|>): {"name": "f",
//     "parameters": {...}}, optionally after <|python_tag|>; several calls
//     separated by ";".
//   - Hermes (templates with <tool_call>: Qwen 2.5/3, Hermes, ...):
//     <tool_call>{"name": "f", "arguments": {...}}</tool_call>, repeated.
//   - Mistral (templates with [TOOL_CALLS]): [TOOL_CALLS][{"name": "f",
//     "arguments": {...}, "id": "..."}, ...]; the newer
//     [TOOL_CALLS]f[ARGS]{...} form is parsed too.
//   - Harmony (gpt-oss, templates with <|channel|>):
//     <|channel|>commentary to=functions.f <|constrain|>json<|message|>{...}
//     (the call ends with <|call|>, an end-of-generation token); the
//     analysis channel is reasoning, the final channel content.
//   - Generic (any other template): a JSON object {"tool_calls": [{"name":
//     "f", "arguments": {...}}]} (or {"response": "text"}), described to
//     the model in a system message when its template ignores tools.
//
// Reasoning: text in <think>...</think> at the start of the output (or up
// to </think> when the prompt opened the block) is separated from content.
package toolcall

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Format is a tool-call wire format.
type Format int

const (
	Generic Format = iota
	Llama3
	Hermes
	Mistral
	Harmony
)

func (f Format) String() string {
	switch f {
	case Llama3:
		return "llama3"
	case Hermes:
		return "hermes"
	case Mistral:
		return "mistral"
	case Harmony:
		return "harmony"
	}
	return "generic"
}

// Template is what a chat template's source says about tool calling.
type Template struct {
	Format Format
	// Tools: the template renders the "tools" variable; ToolCalls: it
	// renders assistant messages' tool_calls; ToolRole: it knows the
	// "tool" role. Missing abilities are polyfilled (see Polyfill).
	Tools, ToolCalls, ToolRole bool
	// Thinking: the template has <think> markers (reasoning models).
	Thinking bool
}

// Detect reads a chat template's source: the first of these markers found
// decides the format — <|channel|> (Harmony), [TOOL_CALLS] (Mistral),
// <tool_call> (Hermes), <|start_header_id|> (Llama3); otherwise Generic.
func Detect(src string) Template {
	t := Template{
		Tools:     strings.Contains(src, "tools"),
		ToolCalls: strings.Contains(src, "tool_calls"),
		ToolRole:  strings.Contains(src, `'tool'`) || strings.Contains(src, `"tool"`),
		Thinking:  strings.Contains(src, "<think>") || strings.Contains(src, "</think>"),
	}
	switch {
	case strings.Contains(src, "<|channel|>"):
		t.Format = Harmony
	case strings.Contains(src, "[TOOL_CALLS]"):
		t.Format = Mistral
	case strings.Contains(src, "<tool_call>"):
		t.Format = Hermes
	case strings.Contains(src, "<|start_header_id|>"):
		t.Format = Llama3
	default:
		t.Format = Generic
	}
	return t
}

// Tool is a function the model may call.
type Tool struct {
	Name        string
	Description string
	// Parameters is the JSON Schema of the arguments (an object schema;
	// empty means any object).
	Parameters json.RawMessage
}

// Call is a parsed tool call. Arguments is the JSON text of the arguments
// object (compact).
type Call struct {
	ID        string
	Name      string
	Arguments string
}

// ValidName reports whether a function name is OpenAI's: 1 to 64 letters,
// digits, underscores and dashes.
func ValidName(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Wire returns the text of calls in the format, as the model would write
// them (for templates that cannot render assistant tool_calls). Arguments
// that are not JSON are written as JSON strings.
func Wire(f Format, calls []Call) string {
	obj := func(c Call, argsKey string, id bool) string {
		s := `{"name": ` + jsonString(c.Name) + `, "` + argsKey + `": ` + argsJSON(c.Arguments)
		if id && c.ID != "" {
			s += `, "id": ` + jsonString(c.ID)
		}
		return s + "}"
	}
	var parts []string
	switch f {
	case Llama3:
		for _, c := range calls {
			parts = append(parts, obj(c, "parameters", false))
		}
		return strings.Join(parts, "; ")
	case Hermes:
		for _, c := range calls {
			parts = append(parts, "<tool_call>\n"+obj(c, "arguments", false)+"\n</tool_call>")
		}
		return strings.Join(parts, "\n")
	case Mistral:
		for _, c := range calls {
			parts = append(parts, obj(c, "arguments", true))
		}
		return "[TOOL_CALLS][" + strings.Join(parts, ", ") + "]"
	case Harmony:
		for _, c := range calls {
			parts = append(parts, "<|channel|>commentary to=functions."+c.Name+" <|constrain|>json<|message|>"+argsJSON(c.Arguments)+"<|call|>")
		}
		return strings.Join(parts, "")
	}
	for _, c := range calls {
		parts = append(parts, obj(c, "arguments", false))
	}
	return `{"tool_calls": [` + strings.Join(parts, ", ") + `]}`
}

// SystemPrompt describes the tools and the Generic format to a model whose
// template does not render tools.
func SystemPrompt(tools []Tool) string {
	var b strings.Builder
	b.WriteString("You can call these tools:\n")
	for _, t := range tools {
		params := strings.TrimSpace(string(t.Parameters))
		if params == "" {
			params = "{}"
		}
		fmt.Fprintf(&b, "- %s: %s Arguments (JSON Schema): %s\n", t.Name, t.Description, params)
	}
	b.WriteString(`To call tools, answer with only a JSON object {"tool_calls": [{"name": "<tool name>", "arguments": {<arguments>}}]}; otherwise answer normally.`)
	return b.String()
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// argsJSON returns arguments as JSON: itself when it is a JSON value,
// else as a JSON string.
func argsJSON(a string) string {
	a = strings.TrimSpace(a)
	if a == "" {
		return "{}"
	}
	if json.Valid([]byte(a)) {
		return a
	}
	return jsonString(a)
}
