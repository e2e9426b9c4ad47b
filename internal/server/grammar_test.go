package server

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/chat"
)

const chatURL = "/v1/chat/completions"

func userMsg(text string) []any {
	return []any{map[string]any{"role": "user", "content": text}}
}

// message returns choices[0].message and the finish_reason of a chat
// completion.
func message(t *testing.T, resp map[string]any) (map[string]any, string) {
	t.Helper()
	ch := resp["choices"].([]any)[0].(map[string]any)
	return ch["message"].(map[string]any), ch["finish_reason"].(string)
}

// "grammar" and "json_schema" on /completion, "response_format" on the
// OpenAI routes: the output follows them, and generation stops when the
// grammar is complete.
func TestConstrainedCompletion(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 1})
	r := postOK(t, ts.URL+"/completion", map[string]any{"prompt": "Is the sky blue? Answer:", "grammar": `root ::= " " ("yes" | "no") "."`, "temperature": 0, "n_predict": 20})
	if c := r["content"]; c != " yes." && c != " no." || r["stop_type"] != "eos" {
		t.Errorf("grammar: content %q stop_type %v", c, r["stop_type"])
	}

	schema := map[string]any{"type": "object", "properties": map[string]any{
		"name": map[string]any{"type": "string", "maxLength": 10},
		"year": map[string]any{"type": "integer", "minimum": 1900, "maximum": 2100},
	}, "required": []any{"name", "year"}}
	r = postOK(t, ts.URL+"/completion", map[string]any{"prompt": "A person:", "json_schema": schema, "temperature": 0, "n_predict": 100})
	var person struct {
		Name *string
		Year *int
	}
	if err := json.Unmarshal([]byte(r["content"].(string)), &person); err != nil || person.Name == nil || person.Year == nil ||
		*person.Year < 1900 || *person.Year > 2100 || len([]rune(*person.Name)) > 10 {
		t.Errorf("json_schema: %q (%v)", r["content"], err)
	}

	// response_format on chat: json_object and json_schema.
	resp := postOK(t, ts.URL+chatURL, map[string]any{"messages": userMsg("Give me JSON."), "response_format": map[string]any{"type": "json_object"}, "temperature": 0, "max_tokens": 200})
	m, fr := message(t, resp)
	var obj map[string]any
	if err := json.Unmarshal([]byte(m["content"].(string)), &obj); fr == "stop" && err != nil {
		t.Errorf("json_object: %q is not a JSON object: %v", m["content"], err)
	}
	resp = postOK(t, ts.URL+chatURL, map[string]any{"messages": userMsg("Describe a person."), "temperature": 0, "max_tokens": 100,
		"response_format": map[string]any{"type": "json_schema", "json_schema": map[string]any{"name": "person", "strict": true, "schema": schema}}})
	m, fr = message(t, resp)
	person.Name, person.Year = nil, nil
	if err := json.Unmarshal([]byte(m["content"].(string)), &person); fr != "stop" || err != nil || person.Name == nil || person.Year == nil {
		t.Errorf("json_schema response_format: %q finish %s (%v)", m["content"], fr, err)
	}
	// /v1/completions takes response_format too, and max_tokens cuts a
	// grammar short with finish_reason "length".
	resp = postOK(t, ts.URL+"/v1/completions", map[string]any{"prompt": "JSON:", "temperature": 0, "max_tokens": 3,
		"response_format": map[string]any{"type": "json_schema", "json_schema": map[string]any{"schema": schema}}})
	ch := resp["choices"].([]any)[0].(map[string]any)
	if ch["finish_reason"] != "length" || !strings.HasPrefix(ch["text"].(string), "{") {
		t.Errorf("cut short: %v %q", ch["finish_reason"], ch["text"])
	}

	// Streaming /completion with a grammar.
	evs := stream(t, ts.URL+"/completion", map[string]any{"prompt": "Count:", "grammar": `root ::= " " [1-9] (", " [1-9]){2,4}`, "temperature": 0, "n_predict": 40, "stream": true})
	text := ""
	for _, e := range evs {
		var ev map[string]any
		json.Unmarshal([]byte(e), &ev)
		text += ev["content"].(string)
	}
	if !regexp.MustCompile(`^ [1-9](, [1-9]){2,4}$`).MatchString(text) {
		t.Errorf("streamed grammar output %q", text)
	}
}

func TestConstraintErrors(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 1})
	cases := []struct {
		path string
		body any
		want string
	}{
		{"/completion", map[string]any{"prompt": "x", "grammar": "root ::= (\"a\""}, `"grammar": line 1, column 14: expecting ')' to close the group`},
		{"/completion", map[string]any{"prompt": "x", "grammar": "root ::= x"}, `undefined rule "x"`},
		{"/completion", map[string]any{"prompt": "x", "grammar": `root ::= "a"{3000}`}, `over the limit of 2000`},
		{"/completion", map[string]any{"prompt": "x", "json_schema": map[string]any{"type": "string", "pattern": "(a)\\1"}}, `"json_schema": JSON schema at #: pattern "(a)\\1": backreferences are not supported`},
		{"/completion", map[string]any{"prompt": "x", "json_schema": "{}"}, `"json_schema" must be a JSON Schema`},
		{"/completion", map[string]any{"prompt": "x", "json_schema": map[string]any{}, "grammar": `root ::= "a"`}, `give only one of`},
		{chatURL, map[string]any{"messages": userMsg("x"), "response_format": map[string]any{"type": "json_schema", "json_schema": map[string]any{"schema": map[string]any{"type": "object", "properties": map[string]any{"a": map[string]any{"if": map[string]any{}}}}}}},
			`"response_format": JSON schema at #/properties/a: "if" is not supported`},
		{chatURL, map[string]any{"messages": userMsg("x"), "response_format": map[string]any{"type": "yaml"}}, `"response_format" of type "yaml" is not supported`},
	}
	for _, c := range cases {
		st, b := post(t, ts.URL+c.path, c.body)
		if msg := wantError(t, c.path, st, b, 400, TypeInvalidRequest); !strings.Contains(msg, c.want) {
			t.Errorf("%v: message %q, want %q", c.body, msg, c.want)
		}
	}
	// A grammar whose parse stacks explode at run time ends the request
	// with a 400 (the stream an error event), not a hang.
	body := map[string]any{"prompt": "x", "grammar": `root ::= "a" root "b" | "a" root "c" | "a"{12} "x"`, "temperature": 0, "n_predict": 50}
	st, b := post(t, ts.URL+"/completion", body)
	if msg := wantError(t, "exploding grammar", st, b, 400, TypeInvalidRequest); !strings.Contains(msg, "parse stacks") {
		t.Errorf("exploding grammar: %q", msg)
	}
}

var weatherTool = map[string]any{"type": "function", "function": map[string]any{
	"name": "get_weather", "description": "Get the current weather in a city",
	"parameters": map[string]any{"type": "object", "properties": map[string]any{
		"city": map[string]any{"type": "string", "maxLength": 20},
		"unit": map[string]any{"type": "string", "enum": []any{"celsius", "fahrenheit"}},
	}, "required": []any{"city", "unit"}, "additionalProperties": false},
}}

var timeTool = map[string]any{"type": "function", "function": map[string]any{
	"name": "get_time", "parameters": map[string]any{"type": "object", "properties": map[string]any{
		"zone": map[string]any{"type": "string", "enum": []any{"UTC", "CET", "PST"}},
	}, "required": []any{"zone"}},
}}

// checkWeatherArgs validates arguments against weatherTool's schema.
func checkWeatherArgs(t *testing.T, args string) {
	t.Helper()
	var a map[string]any
	dec := json.NewDecoder(strings.NewReader(args))
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("arguments %q: %v", args, err)
	}
	city, ok := a["city"].(string)
	unit, _ := a["unit"].(string)
	if !ok || len([]rune(city)) > 20 || unit != "celsius" && unit != "fahrenheit" || len(a) != 2 {
		t.Errorf("arguments %q do not validate", args)
	}
}

func toolCalls(t *testing.T, m map[string]any) []map[string]any {
	t.Helper()
	list, _ := m["tool_calls"].([]any)
	var out []map[string]any
	for _, c := range list {
		out = append(out, c.(map[string]any))
	}
	return out
}

// Tool calling on the embedded model (ChatML default template: the
// generic JSON format, tools described in a system message): every
// tool_choice.
func TestToolChoice(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 1})
	msgs := userMsg("What is the weather in Paris?")
	tools := []any{weatherTool, timeTool}

	// required: a call whose arguments validate.
	resp := postOK(t, ts.URL+chatURL, map[string]any{"messages": msgs, "tools": tools, "tool_choice": "required", "temperature": 0, "max_tokens": 120})
	m, fr := message(t, resp)
	calls := toolCalls(t, m)
	if fr != "tool_calls" || len(calls) != 1 || m["content"] != nil {
		t.Fatalf("required: finish %q message %v", fr, m)
	}
	c := calls[0]
	fn := c["function"].(map[string]any)
	if !strings.HasPrefix(c["id"].(string), "call_") || c["type"] != "function" {
		t.Errorf("call %v", c)
	}
	switch fn["name"] {
	case "get_weather":
		checkWeatherArgs(t, fn["arguments"].(string))
	case "get_time":
		var a struct{ Zone string }
		if json.Unmarshal([]byte(fn["arguments"].(string)), &a) != nil || a.Zone != "UTC" && a.Zone != "CET" && a.Zone != "PST" {
			t.Errorf("get_time arguments %q", fn["arguments"])
		}
	default:
		t.Errorf("called %v", fn["name"])
	}

	// A named function, with sampling.
	for seed := range 3 {
		resp = postOK(t, ts.URL+chatURL, map[string]any{"messages": msgs, "tools": tools, "temperature": 1, "seed": seed, "max_tokens": 120,
			"tool_choice": map[string]any{"type": "function", "function": map[string]any{"name": "get_weather"}}})
		m, fr = message(t, resp)
		calls = toolCalls(t, m)
		if fr != "tool_calls" || len(calls) != 1 {
			t.Fatalf("named, seed %d: finish %q message %v", seed, fr, m)
		}
		fn = calls[0]["function"].(map[string]any)
		if fn["name"] != "get_weather" {
			t.Errorf("named: called %v", fn["name"])
		}
		checkWeatherArgs(t, fn["arguments"].(string))
	}

	// Parallel calls allowed: one or more calls, each valid.
	resp = postOK(t, ts.URL+chatURL, map[string]any{"messages": msgs, "tools": []any{weatherTool}, "tool_choice": "required", "parallel_tool_calls": true, "temperature": 0, "max_tokens": 200})
	m, fr = message(t, resp)
	if fr == "tool_calls" {
		for _, c := range toolCalls(t, m) {
			checkWeatherArgs(t, c["function"].(map[string]any)["arguments"].(string))
		}
	} else if fr != "length" {
		t.Errorf("parallel: finish %q", fr)
	}

	// none: plain content, the tools not shown to the model.
	resp = postOK(t, ts.URL+chatURL, map[string]any{"messages": msgs, "tools": tools, "tool_choice": "none", "temperature": 0, "max_tokens": 16})
	m, fr = message(t, resp)
	if m["tool_calls"] != nil || fr == "tool_calls" || m["content"] == nil {
		t.Errorf("none: %v %q", m, fr)
	}
	plain := postOK(t, ts.URL+chatURL, map[string]any{"messages": msgs, "temperature": 0, "max_tokens": 16})
	pm, _ := message(t, plain)
	if pm["content"] != m["content"] {
		t.Errorf("none: content %q differs from the same request without tools %q", m["content"], pm["content"])
	}

	// auto: unconstrained; whatever the model writes is answered without
	// a 500, as content or calls.
	resp = postOK(t, ts.URL+chatURL, map[string]any{"messages": msgs, "tools": tools, "tool_choice": "auto", "temperature": 0, "max_tokens": 60})
	m, fr = message(t, resp)
	if fr == "tool_calls" {
		if len(toolCalls(t, m)) == 0 {
			t.Errorf("auto: finish tool_calls without calls")
		}
	} else if _, ok := m["content"].(string); !ok {
		t.Errorf("auto: no content: %v", m)
	}

	// The tools reach the prompt as a system message (the template has no
	// tools variable); with tool_choice none they do not.
	st, b := post(t, ts.URL+"/apply-template", map[string]any{"messages": msgs, "tools": tools})
	if st != 200 || !strings.Contains(string(b), "get_weather") || !strings.Contains(string(b), "tool_calls") {
		t.Errorf("apply-template with tools: %d %s", st, b)
	}
	st, b = post(t, ts.URL+"/apply-template", map[string]any{"messages": msgs, "tools": tools, "tool_choice": "none"})
	if st != 200 || strings.Contains(string(b), "get_weather") {
		t.Errorf("apply-template, tool_choice none: %d %s", st, b)
	}

	// Errors.
	for _, c := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"messages": msgs, "tool_choice": "required"}, `"tool_choice" "required" needs "tools"`},
		{map[string]any{"messages": msgs, "tools": tools, "tool_choice": "sometimes"}, `"tool_choice" must be`},
		{map[string]any{"messages": msgs, "tools": tools, "tool_choice": map[string]any{"type": "function", "function": map[string]any{"name": "nope"}}}, `names the function "nope", which is not in "tools"`},
		{map[string]any{"messages": msgs, "tools": []any{weatherTool, weatherTool}}, `defined twice`},
		{map[string]any{"messages": msgs, "tools": []any{map[string]any{"type": "retrieval"}}}, `tools of type "retrieval" are not supported`},
		{map[string]any{"messages": msgs, "tools": tools, "tool_choice": "required", "response_format": map[string]any{"type": "json_object"}}, `cannot be combined with tool_choice "required"`},
		{map[string]any{"messages": msgs, "tools": []any{map[string]any{"type": "function", "function": map[string]any{"name": "f", "parameters": map[string]any{"type": "object", "properties": map[string]any{"x": map[string]any{"not": map[string]any{}}}}}}}, "tool_choice": "required"},
			`"tools": tool "f": JSON schema at #/properties/x: "not" is not supported`},
		{map[string]any{"messages": msgs, "reasoning_format": "verbose"}, `"reasoning_format" must be`},
	} {
		st, b := post(t, ts.URL+chatURL, c.body)
		if msg := wantError(t, c.want, st, b, 400, TypeInvalidRequest); !strings.Contains(msg, c.want) {
			t.Errorf("message %q, want %q", msg, c.want)
		}
	}
}

// A tool round trip: the assistant's tool call and the tool's result go
// back in the conversation (rendered through the template, polyfilled
// for ChatML) and the model answers.
func TestToolRoundTrip(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 1})
	msgs := []any{
		map[string]any{"role": "user", "content": "What is the weather in Paris?"},
		map[string]any{"role": "assistant", "content": nil, "tool_calls": []any{map[string]any{
			"id": "call_1", "type": "function", "function": map[string]any{"name": "get_weather", "arguments": `{"city":"Paris","unit":"celsius"}`}}}},
		map[string]any{"role": "tool", "tool_call_id": "call_1", "content": `{"temperature": 21}`},
	}
	st, b := post(t, ts.URL+"/apply-template", map[string]any{"messages": msgs, "tools": []any{weatherTool}})
	var p struct{ Prompt string }
	json.Unmarshal(b, &p)
	if st != 200 || !strings.Contains(p.Prompt, `{"tool_calls": [{"name": "get_weather", "arguments": {"city":"Paris","unit":"celsius"}}]}`) ||
		!strings.Contains(p.Prompt, `"tool_response"`) || !strings.Contains(p.Prompt, `"tool_call_id":"call_1"`) {
		t.Errorf("rendered round trip: %d %s", st, b)
	}
	resp := postOK(t, ts.URL+chatURL, map[string]any{"messages": msgs, "tools": []any{weatherTool}, "tool_choice": "none", "temperature": 0, "max_tokens": 12})
	if m, _ := message(t, resp); m["content"] == "" {
		t.Errorf("no answer after the tool result")
	}
	// Malformed tool_calls in a message are refused.
	bad := []any{map[string]any{"role": "assistant", "tool_calls": []any{map[string]any{"function": "x"}}}}
	st, b = post(t, ts.URL+chatURL, map[string]any{"messages": bad})
	wantError(t, "malformed tool_calls", st, b, 400, TypeInvalidRequest)
}

// streamChat posts a streaming chat request and returns its chunks.
func streamChat(t *testing.T, url string, body map[string]any) []map[string]any {
	t.Helper()
	body["stream"] = true
	var out []map[string]any
	for _, e := range stream(t, url, body) {
		if e == "[DONE]" {
			break
		}
		var c map[string]any
		if err := json.Unmarshal([]byte(e), &c); err != nil {
			t.Fatalf("chunk %q: %v", e, err)
		}
		if c["error"] != nil {
			t.Fatalf("error event %s", e)
		}
		out = append(out, c)
	}
	return out
}

// streamedMessage folds chat chunks the way OpenAI's clients do.
type streamedMessage struct {
	content, reasoning string
	calls              []struct{ id, name, args string }
	finish             string
	argChunks          int
}

func fold(t *testing.T, chunks []map[string]any) streamedMessage {
	t.Helper()
	var sm streamedMessage
	for _, c := range chunks {
		chs := c["choices"].([]any)
		if len(chs) == 0 {
			continue
		}
		ch := chs[0].(map[string]any)
		if fr, ok := ch["finish_reason"].(string); ok {
			sm.finish = fr
		}
		d, _ := ch["delta"].(map[string]any)
		if s, ok := d["content"].(string); ok {
			sm.content += s
		}
		if s, ok := d["reasoning_content"].(string); ok {
			sm.reasoning += s
		}
		tcs, _ := d["tool_calls"].([]any)
		for _, x := range tcs {
			tc := x.(map[string]any)
			i := int(tc["index"].(float64))
			for len(sm.calls) <= i {
				sm.calls = append(sm.calls, struct{ id, name, args string }{})
			}
			if id, ok := tc["id"].(string); ok {
				sm.calls[i].id = id
			}
			fn, _ := tc["function"].(map[string]any)
			if n, ok := fn["name"].(string); ok {
				sm.calls[i].name = n
			}
			if a, ok := fn["arguments"].(string); ok && a != "" {
				sm.calls[i].args += a
				sm.argChunks++
			}
		}
	}
	return sm
}

// Streamed tool calls: OpenAI's deltas (the first with id and name, then
// argument chunks as they are generated), finish_reason "tool_calls", the
// same call as the non-streamed request.
func TestToolCallStreaming(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 1})
	body := func() map[string]any {
		return map[string]any{"messages": userMsg("Weather in Oslo?"), "tools": []any{weatherTool}, "tool_choice": "required", "temperature": 0, "max_tokens": 120}
	}
	resp := postOK(t, ts.URL+chatURL, body())
	m, _ := message(t, resp)
	want := toolCalls(t, m)[0]["function"].(map[string]any)
	sm := fold(t, streamChat(t, ts.URL+chatURL, body()))
	if sm.finish != "tool_calls" || len(sm.calls) != 1 || sm.content != "" {
		t.Fatalf("streamed: %+v", sm)
	}
	if sm.calls[0].name != want["name"] || sm.calls[0].args != want["arguments"] || !strings.HasPrefix(sm.calls[0].id, "call_") {
		t.Errorf("streamed call %+v, non-streamed %v", sm.calls[0], want)
	}
	if sm.argChunks < 3 {
		t.Errorf("arguments came in %d chunks; want them streamed as generated", sm.argChunks)
	}
	checkWeatherArgs(t, sm.calls[0].args)
}

// Output that looks like a call but does not parse is returned as content
// with finish_reason "stop", streamed or not (a grammar makes the model
// write a call whose arguments are not an object).
func TestUnparseableToolCall(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 1})
	bad := `{"tool_calls": [{"name": "get_weather", "arguments": 5}]}`
	body := func() map[string]any {
		return map[string]any{"messages": userMsg("Weather?"), "tools": []any{weatherTool}, "tool_choice": "auto",
			"grammar": "root ::= " + strings.ReplaceAll(`"`+strings.ReplaceAll(bad, `"`, `\"`)+`"`, "\n", ""), "temperature": 0, "max_tokens": 60}
	}
	resp := postOK(t, ts.URL+chatURL, body())
	m, fr := message(t, resp)
	if m["content"] != bad || m["tool_calls"] != nil || fr != "stop" {
		t.Errorf("unparseable: %v finish %q", m, fr)
	}
	sm := fold(t, streamChat(t, ts.URL+chatURL, body()))
	if sm.content != bad || len(sm.calls) != 0 || sm.finish != "stop" {
		t.Errorf("unparseable, streamed: %+v", sm)
	}
	// A valid call written in auto mode is parsed (and streamed once
	// complete).
	good := `{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Rome", "unit": "celsius"}}]}`
	b := body()
	b["grammar"] = "root ::= \"" + strings.ReplaceAll(good, `"`, `\"`) + "\""
	m, fr = message(t, postOK(t, ts.URL+chatURL, b))
	if calls := toolCalls(t, m); fr != "tool_calls" || len(calls) != 1 || calls[0]["function"].(map[string]any)["arguments"] != `{"city": "Rome", "unit": "celsius"}` {
		t.Errorf("auto call: %v %q", m, fr)
	}
	b = body()
	b["grammar"] = "root ::= \"" + strings.ReplaceAll(good, `"`, `\"`) + "\""
	sm = fold(t, streamChat(t, ts.URL+chatURL, b))
	if sm.finish != "tool_calls" || len(sm.calls) != 1 || sm.calls[0].args != `{"city": "Rome", "unit": "celsius"}` {
		t.Errorf("auto call, streamed: %+v", sm)
	}
}

// Reasoning: <think>...</think> goes to reasoning_content (and streams as
// reasoning_content deltas) with reasoning_format deepseek; with none it
// stays in the content. (The embedded model's template has no thinking
// markers, so auto leaves it in the content too.)
func TestReasoningContent(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 1})
	out := "<think>Two and two.</think>\n\nFour."
	body := func(rf string) map[string]any {
		return map[string]any{"messages": userMsg("2+2?"), "temperature": 0, "max_tokens": 60, "reasoning_format": rf,
			"grammar": "root ::= \"" + strings.ReplaceAll(strings.ReplaceAll(out, `"`, `\"`), "\n", `\n`) + "\""}
	}
	m, fr := message(t, postOK(t, ts.URL+chatURL, body("deepseek")))
	if m["reasoning_content"] != "Two and two." || m["content"] != "Four." || fr != "stop" {
		t.Errorf("deepseek: %v %q", m, fr)
	}
	sm := fold(t, streamChat(t, ts.URL+chatURL, body("deepseek")))
	if sm.reasoning != "Two and two." || sm.content != "Four." {
		t.Errorf("deepseek, streamed: %+v", sm)
	}
	for _, rf := range []string{"none", "auto"} {
		m, _ = message(t, postOK(t, ts.URL+chatURL, body(rf)))
		if m["content"] != out || m["reasoning_content"] != nil {
			t.Errorf("%s: %v", rf, m)
		}
	}
}

// A template in another tool-call format (Hermes, as Qwen's): the tools
// are given to the template, the forced call is written in that format
// and parsed back, and earlier calls and results render natively.
func TestHermesTemplate(t *testing.T) {
	s, ts := newTestServer(t, Options{Slots: 1})
	src := `{%- if tools %}<|im_start|>system
# Tools
<tools>{% for tool in tools %}{{ tool | tojson }}{% endfor %}</tools>
Return <tool_call>{"name": <function-name>, "arguments": <args-json-object>}</tool_call><|im_end|>
{% endif %}
{%- for message in messages %}
{%- if message.role == 'tool' %}<|im_start|>user
<tool_response>{{ message.content }}</tool_response><|im_end|>
{% elif message.tool_calls %}<|im_start|>assistant
{% for tc in message.tool_calls %}<tool_call>{{ {"name": tc.function.name, "arguments": tc.function.arguments} | tojson }}</tool_call>{% endfor %}<|im_end|>
{% else %}<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}`
	tmpl, err := chat.New(src, "", "<|endoftext|>")
	if err != nil {
		t.Fatal(err)
	}
	s.chat = jinjaTemplate{tmpl}
	msgs := []any{
		map[string]any{"role": "user", "content": "Weather in Paris?"},
		map[string]any{"role": "assistant", "tool_calls": []any{map[string]any{"id": "c1", "type": "function", "function": map[string]any{"name": "get_weather", "arguments": `{"city":"Paris","unit":"celsius"}`}}}},
		map[string]any{"role": "tool", "tool_call_id": "c1", "content": "21 degrees"},
		map[string]any{"role": "user", "content": "And in Rome?"},
	}
	st, b := post(t, ts.URL+"/apply-template", map[string]any{"messages": msgs, "tools": []any{weatherTool}})
	var p struct{ Prompt string }
	json.Unmarshal(b, &p)
	if st != 200 || !strings.Contains(p.Prompt, `<tools>{"function": {"description": "Get the current weather in a city", "name": "get_weather"`) ||
		!strings.Contains(p.Prompt, `<tool_call>{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}</tool_call>`) ||
		!strings.Contains(p.Prompt, "<tool_response>21 degrees</tool_response>") || strings.Contains(p.Prompt, "You can call these tools") {
		t.Errorf("hermes prompt: %d\n%s", st, p.Prompt)
	}
	resp := postOK(t, ts.URL+chatURL, map[string]any{"messages": msgs, "tools": []any{weatherTool}, "tool_choice": "required", "temperature": 0, "max_tokens": 120})
	m, fr := message(t, resp)
	calls := toolCalls(t, m)
	if fr != "tool_calls" || len(calls) != 1 {
		t.Fatalf("hermes required: %v %q", m, fr)
	}
	checkWeatherArgs(t, calls[0]["function"].(map[string]any)["arguments"].(string))
	sm := fold(t, streamChat(t, ts.URL+chatURL, map[string]any{"messages": msgs, "tools": []any{weatherTool}, "tool_choice": "required", "temperature": 0, "max_tokens": 120}))
	if sm.finish != "tool_calls" || len(sm.calls) != 1 || sm.calls[0].args != calls[0]["function"].(map[string]any)["arguments"] {
		t.Errorf("hermes streamed %+v", sm)
	}
}

// The other formats end to end, with minimal templates in their style: a
// forced call comes back as tool_calls with valid arguments, streamed or
// not.
func TestToolFormats(t *testing.T) {
	templates := map[string]string{
		"llama3": `{%- if tools %}<|start_header_id|>system<|end_header_id|>

{% for t in tools %}{{ t | tojson }}{% endfor %}<|eot_id|>{% endif %}
{%- for message in messages %}<|start_header_id|>{{ message.role }}<|end_header_id|>

{% if message.tool_calls %}{% for tc in message.tool_calls %}{"name": "{{ tc.function.name }}", "parameters": {{ tc.function.arguments | tojson }}}{% endfor %}{% else %}{{ message.content }}{% endif %}<|eot_id|>{%- endfor %}
{%- if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>

{% endif %}`,
		"mistral": `{% if tools %}[AVAILABLE_TOOLS]{{ tools | tojson }}[/AVAILABLE_TOOLS]{% endif %}{%- for message in messages %}{% if message.role == 'user' %}[INST]{{ message.content }}[/INST]{% elif message.tool_calls %}[TOOL_CALLS]{{ message.tool_calls | tojson }}</s>{% else %}{{ message.content }}{% endif %}{%- endfor %}`,
		"harmony": `{% if tools %}<|start|>developer<|message|>{{ tools | tojson }}<|end|>{% endif %}{%- for message in messages %}{% if message.tool_calls %}<|start|>assistant<|channel|>commentary to=functions.{{ message.tool_calls[0].function.name }} <|constrain|>json<|message|>{{ message.tool_calls[0].function.arguments }}<|call|>{% else %}<|start|>{{ message.role }}<|message|>{{ message.content }}<|end|>{% endif %}{%- endfor %}{%- if add_generation_prompt %}<|start|>assistant{% endif %}`,
	}
	for name, src := range templates {
		t.Run(name, func(t *testing.T) {
			s, ts := newTestServer(t, Options{Slots: 1})
			tmpl, err := chat.New(src, "", "<|endoftext|>")
			if err != nil {
				t.Fatal(err)
			}
			s.chat = jinjaTemplate{tmpl}
			body := func() map[string]any {
				return map[string]any{"messages": userMsg("Weather in Paris?"), "tools": []any{weatherTool, timeTool},
					"tool_choice": map[string]any{"type": "function", "function": map[string]any{"name": "get_weather"}}, "temperature": 0, "max_tokens": 150}
			}
			m, fr := message(t, postOK(t, ts.URL+chatURL, body()))
			calls := toolCalls(t, m)
			if fr != "tool_calls" || len(calls) != 1 {
				t.Fatalf("finish %q message %v", fr, m)
			}
			fn := calls[0]["function"].(map[string]any)
			if fn["name"] != "get_weather" {
				t.Errorf("called %v", fn["name"])
			}
			checkWeatherArgs(t, fn["arguments"].(string))
			if c, _ := m["content"].(string); strings.Contains(c, "TOOL_CALLS") || strings.Contains(c, "<|") {
				t.Errorf("markers in the content: %q", c)
			}
			sm := fold(t, streamChat(t, ts.URL+chatURL, body()))
			if sm.finish != "tool_calls" || len(sm.calls) != 1 || sm.calls[0].args != fn["arguments"] {
				t.Errorf("streamed %+v", sm)
			}
		})
	}
}

// A chat template whose end-of-turn marker is not one token of the
// vocabulary: the marker becomes a stop string, so the answer ends where
// the model writes it (issue 17: it never stopped at the end of the
// turn). A marker that is one token (ChatML's <|im_end|> here) needs none.
func TestTurnEndFromTemplate(t *testing.T) {
	s, ts := newTestServer(t, Options{Slots: 1})
	if end := s.turnEnd(s.chat); end != "" {
		t.Errorf("ChatML with <|im_end|> one token: stop %q, want none", end)
	}
	src := `{% for m in messages %}### {{ m.role }}:
{{ m.content }}<|END|>
{% endfor %}{% if add_generation_prompt %}### assistant:
{% endif %}`
	if toks := s.eng.Tok.Encode("<|END|>", false, true); len(toks) < 2 {
		t.Fatalf("<|END|> is %v: the test needs a marker of several tokens", toks)
	}
	tmpl, err := chat.New(src, "", "")
	if err != nil {
		t.Fatal(err)
	}
	s.chat = jinjaTemplate{tmpl}
	if end := s.turnEnd(s.chat); end != "<|END|>" {
		t.Fatalf("turn end %q, want <|END|>", end)
	}
	// A grammar makes the model write the marker and go on; the answer
	// stops at the marker.
	body := map[string]any{"messages": []any{map[string]any{"role": "user", "content": "Where?"}},
		"grammar": `root ::= "Paris is nice.<|END|>### user: more"`, "temperature": 0, "max_tokens": 40}
	m, fr := message(t, postOK(t, ts.URL+chatURL, body))
	if m["content"] != "Paris is nice." || fr != "stop" {
		t.Errorf("answer %q finish %q, want it to end at the marker", m["content"], fr)
	}
	body["stream"] = true
	if sm := fold(t, streamChat(t, ts.URL+chatURL, body)); sm.content != "Paris is nice." || sm.finish != "stop" {
		t.Errorf("streamed %+v", sm)
	}
}
