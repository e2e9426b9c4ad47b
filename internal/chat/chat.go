// Package chat owns chat templates: it turns a conversation into the prompt
// text a model expects, by rendering the Jinja template a GGUF model ships in
// tokenizer.chat_template.
//
// Output is byte-identical to Hugging Face transformers' apply_chat_template
// (Python jinja2 in an ImmutableSandboxedEnvironment with trim_blocks and
// lstrip_blocks, HF's tojson, raise_exception and strftime_now globals, loop
// controls). The package lexes and parses templates with jinja2's exact
// lexical and grammar rules (whitespace control included) and evaluates the
// syntax tree directly, with values that follow Python's semantics
// (operators, attribute and item access, filters, tests, string methods,
// printing).
//
// Templates are untrusted input: rendering never panics (panics are
// recovered into errors) and is bounded in time, output size, loop
// iterations and macro recursion.
package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kvserve/kvserve/internal/gguf"
)

// DefaultSource is the template used for models without one: ChatML, as
// llama.cpp's server falls back to.
const DefaultSource = `{%- for message in messages -%}
  {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
  {{- '<|im_start|>assistant\n' -}}
{%- endif -%}`

// Default limits for one Apply.
const (
	DefaultTimeout   = 5 * time.Second
	DefaultMaxOutput = 64 << 20
)

// Message is one chat turn. It becomes a dict with the keys role, content,
// then (only when set) name, tool_calls, tool_call_id, reasoning_content,
// then Extra's keys in sorted order.
type Message struct {
	Role    string
	Content string
	// NullContent renders content as None instead of a string (OpenAI's
	// "content": null, e.g. an assistant turn that only calls tools).
	NullContent      bool
	Name             string
	ToolCalls        []ToolCall
	ToolCallID       string
	ReasoningContent string
	Extra            map[string]any
}

// ToolCall is an assistant's tool call: {"id", "type", "function": {"name",
// "arguments"}}; id is omitted when empty and type defaults to "function".
type ToolCall struct {
	ID       string
	Type     string
	Function ToolCallFunction
}

// ToolCallFunction names the called function. Arguments is passed as given:
// a string (OpenAI's wire form) or decoded JSON (json.RawMessage keeps key
// order), which templates such as Qwen's and Llama's render with tojson.
type ToolCallFunction struct {
	Name      string
	Arguments any
}

// Template is a compiled chat template. It is safe for concurrent use once
// its option fields are set.
type Template struct {
	src      string
	bos, eos string
	body     []stmt
	fallback bool
	sizeHint atomic.Int64 // the last output's size, to size the next one's buffer

	// Now is the clock strftime_now reads; nil means time.Now.
	Now func() time.Time
	// Timeout bounds one rendering; zero means DefaultTimeout.
	Timeout time.Duration
	// MaxOutput bounds the bytes one rendering may produce (and any single
	// string value); zero means DefaultMaxOutput.
	MaxOutput int64
}

// New compiles a template. bos and eos are the texts bound to bos_token and
// eos_token. A template jinja2 would reject gives a *SyntaxError.
func New(source, bos, eos string) (t *Template, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("chat template: internal error compiling template: %v", r)
		}
	}()
	items, err := lex(source)
	if err != nil {
		return nil, err
	}
	ast, err := parseTemplate(items)
	if err != nil {
		return nil, err
	}
	ast = foldConstants(ast)
	prepare(ast)
	return &Template{src: source, bos: bos, eos: eos, body: ast}, nil
}

// FromGGUF compiles the template in a model's tokenizer.chat_template, with
// bos_token and eos_token set to the texts of tokenizer.ggml.bos_token_id and
// eos_token_id. tokText maps a token id to its text; nil reads
// tokenizer.ggml.tokens. A model without a template gets DefaultSource
// (ChatML, as llama.cpp does); IsDefault reports that.
func FromGGUF(f *gguf.File, tokText func(id int) string) (*Template, error) {
	var toks []string
	text := func(key string) string {
		id, ok := f.Int(key)
		if !ok || id < 0 {
			return ""
		}
		if tokText != nil {
			return tokText(int(id))
		}
		if toks == nil {
			toks, _ = f.Strings("tokenizer.ggml.tokens")
		}
		if id < int64(len(toks)) {
			return toks[id]
		}
		return ""
	}
	bos, eos := text("tokenizer.ggml.bos_token_id"), text("tokenizer.ggml.eos_token_id")
	src, ok := f.String("tokenizer.chat_template")
	if !ok || strings.TrimSpace(src) == "" {
		t, err := New(DefaultSource, bos, eos)
		if err != nil {
			return nil, err
		}
		t.fallback = true
		return t, nil
	}
	t, err := New(src, bos, eos)
	if err != nil {
		return nil, fmt.Errorf("model's tokenizer.chat_template: %w", err)
	}
	return t, nil
}

// Source returns the template's Jinja source.
func (t *Template) Source() string { return t.src }

// IsDefault reports whether the template is DefaultSource because the model
// had none.
func (t *Template) IsDefault() bool { return t.fallback }

// BOS and EOS return the texts bound to bos_token and eos_token.
func (t *Template) BOS() string { return t.bos }

// EOS returns the text bound to eos_token.
func (t *Template) EOS() string { return t.eos }

// Apply renders a conversation. The template sees messages,
// add_generation_prompt, bos_token, eos_token, tools and documents (None
// unless given in extra, as in transformers), and every key of extra (for
// example tools as json.RawMessage, enable_thinking, date_string). Errors
// raised by the template are *Error values with Kind "TemplateError".
func (t *Template) Apply(msgs []Message, addGenerationPrompt bool, extra map[string]any) (string, error) {
	list := make([]V, len(msgs))
	for i := range msgs {
		v, err := messageValue(&msgs[i])
		if err != nil {
			return "", err
		}
		list[i] = v
	}
	return t.render(vList(list), addGenerationPrompt, extra)
}

// ApplyJSON is Apply with the messages given as a JSON array of objects,
// passed to the template exactly as written (key order included), the way
// transformers receives them.
func (t *Template) ApplyJSON(messages []byte, addGenerationPrompt bool, extra map[string]any) (string, error) {
	v, err := jsonValue(messages)
	if err != nil {
		return "", fmt.Errorf("chat: messages: %w", err)
	}
	if !v.IsList() {
		return "", errors.New("chat: messages must be a JSON array")
	}
	return t.render(v, addGenerationPrompt, extra)
}

func (t *Template) render(msgs V, addGen bool, extra map[string]any) (out string, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = "", fmt.Errorf("chat template: internal error while rendering: %v", r)
		}
	}()
	st := &state{t: t, start: time.Now(), limit: t.MaxOutput}
	if st.limit <= 0 {
		st.limit = DefaultMaxOutput
	}
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	st.deadline = st.start.Add(timeout)

	root := &scope{
		names: make([]string, 0, 8+len(extra)),
		vals:  make([]V, 0, 8+len(extra)),
	}
	root.set("messages", msgs)
	root.set("add_generation_prompt", vBool(addGen))
	root.set("bos_token", vStr(t.bos))
	root.set("eos_token", vStr(t.eos))
	root.set("tools", vNone)
	root.set("documents", vNone)
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, err := toValue(extra[k])
		if err != nil {
			return "", fmt.Errorf("chat: extra[%q]: %w", k, err)
		}
		root.set(k, v)
	}
	var b strings.Builder
	b.Grow(int(min(t.sizeHint.Load(), st.limit)))
	st.out = &b
	if _, err := st.exec(t.body, root); err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			return "", ce
		}
		return "", fmt.Errorf("chat template: %w", err)
	}
	t.sizeHint.Store(int64(b.Len()) + int64(b.Len())/8)
	return b.String(), nil
}

// ---- Go values to template values ----

func messageValue(m *Message) (V, error) {
	dd := newDict(4 + len(m.Extra))
	dd.Set("role", vStr(m.Role))
	if m.NullContent {
		dd.Set("content", vNone)
	} else {
		dd.Set("content", vStr(m.Content))
	}
	if m.Name != "" {
		dd.Set("name", vStr(m.Name))
	}
	if len(m.ToolCalls) > 0 {
		calls := make([]V, len(m.ToolCalls))
		for i, tc := range m.ToolCalls {
			c := newDict(3)
			if tc.ID != "" {
				c.Set("id", vStr(tc.ID))
			}
			typ := tc.Type
			if typ == "" {
				typ = "function"
			}
			c.Set("type", vStr(typ))
			fn := newDict(2)
			fn.Set("name", vStr(tc.Function.Name))
			a, err := toValue(tc.Function.Arguments)
			if err != nil {
				return vUndef, fmt.Errorf("chat: tool call arguments: %w", err)
			}
			fn.Set("arguments", a)
			c.Set("function", vDict(fn))
			calls[i] = vDict(c)
		}
		dd.Set("tool_calls", vList(calls))
	}
	if m.ToolCallID != "" {
		dd.Set("tool_call_id", vStr(m.ToolCallID))
	}
	if m.ReasoningContent != "" {
		dd.Set("reasoning_content", vStr(m.ReasoningContent))
	}
	keys := make([]string, 0, len(m.Extra))
	for k := range m.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, err := toValue(m.Extra[k])
		if err != nil {
			return vUndef, fmt.Errorf("chat: message field %q: %w", k, err)
		}
		dd.Set(k, v)
	}
	return vDict(dd), nil
}

// toValue converts a Go value. json.RawMessage keeps object key order;
// Go maps are ordered by key; structs go through encoding/json.
func toValue(x any) (V, error) {
	switch x := x.(type) {
	case nil:
		return vNone, nil
	case V:
		return x, nil
	case json.RawMessage:
		return jsonValue(x)
	case string:
		return vStr(x), nil
	case bool:
		return vBool(x), nil
	case int:
		return vInt(int64(x)), nil
	case int8:
		return vInt(int64(x)), nil
	case int16:
		return vInt(int64(x)), nil
	case int32:
		return vInt(int64(x)), nil
	case int64:
		return vInt(x), nil
	case uint8:
		return vInt(int64(x)), nil
	case uint16:
		return vInt(int64(x)), nil
	case uint32:
		return vInt(int64(x)), nil
	case uint:
		return uintValue(uint64(x)), nil
	case uint64:
		return uintValue(x), nil
	case float32:
		return vFloat(float64(x)), nil
	case float64:
		return vFloat(x), nil
	case json.Number:
		return numberValue(x), nil
	case Message:
		return messageValue(&x)
	case *Message:
		return messageValue(x)
	case []Message:
		out := make([]V, len(x))
		for i := range x {
			v, err := messageValue(&x[i])
			if err != nil {
				return vUndef, err
			}
			out[i] = v
		}
		return vList(out), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		d := newDict(len(keys))
		for _, k := range keys {
			v, err := toValue(x[k])
			if err != nil {
				return vUndef, err
			}
			d.Set(k, v)
		}
		return vDict(d), nil
	case []any:
		out := make([]V, len(x))
		for i := range x {
			v, err := toValue(x[i])
			if err != nil {
				return vUndef, err
			}
			out[i] = v
		}
		return vList(out), nil
	}
	rv := reflect.ValueOf(x)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8 {
			return vStr(string(rv.Bytes())), nil
		}
		out := make([]V, rv.Len())
		for i := range out {
			v, err := toValue(rv.Index(i).Interface())
			if err != nil {
				return vUndef, err
			}
			out[i] = v
		}
		return vList(out), nil
	case reflect.Map:
		if rv.Type().Key().Kind() == reflect.String {
			m := make(map[string]any, rv.Len())
			it := rv.MapRange()
			for it.Next() {
				m[it.Key().String()] = it.Value().Interface()
			}
			return toValue(m)
		}
	case reflect.Pointer:
		if rv.IsNil() {
			return vNone, nil
		}
		return toValue(rv.Elem().Interface())
	}
	b, err := json.Marshal(x)
	if err != nil {
		return vUndef, fmt.Errorf("unsupported value of type %T: %w", x, err)
	}
	return jsonValue(b)
}

func uintValue(u uint64) V {
	if u > 1<<63-1 {
		return vFloat(float64(u))
	}
	return vInt(int64(u))
}

func numberValue(n json.Number) V { return numberText(string(n)) }

// numberText converts a JSON number: an int when it is integral and fits,
// else a float.
func numberText(s string) V {
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return vInt(i)
		}
	}
	f, _ := strconv.ParseFloat(s, 64)
	return vFloat(f)
}
