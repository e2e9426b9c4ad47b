package toolcall

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/grammar"
)

func TestDetect(t *testing.T) {
	cases := []struct {
		src  string
		want Format
	}{
		{`{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}{% if tools %}Environment: ipython{% endif %}`, Llama3},
		{`{%- if tools %}<tools>{{ tool | tojson }}</tools> ... <tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>`, Hermes},
		{`{%- if message.tool_calls %}[TOOL_CALLS][{{ ... }}]`, Mistral},
		{`<|start|>assistant<|channel|>commentary to=functions.{{ name }} <|constrain|>json<|message|>`, Harmony},
		{`{%- for message in messages -%}<|im_start|>{{ message.role }}{%- endfor -%}`, Generic},
	}
	for _, c := range cases {
		if got := Detect(c.src).Format; got != c.want {
			t.Errorf("%.40q: %v, want %v", c.src, got, c.want)
		}
	}
	d := Detect(`{% if tools %}{% for m in messages %}{% if m.role == 'tool' %}{{ m.tool_calls }}{% endif %}<think>{% endfor %}{% endif %}`)
	if !d.Tools || !d.ToolCalls || !d.ToolRole || !d.Thinking {
		t.Errorf("capabilities %+v", d)
	}
	if d := Detect(`{{ messages[0].content }}`); d.Tools || d.ToolCalls || d.ToolRole || d.Thinking {
		t.Errorf("capabilities of a plain template %+v", d)
	}
}

var weather = Tool{Name: "get_weather", Description: "Current weather", Parameters: json.RawMessage(
	`{"type":"object","properties":{"city":{"type":"string","maxLength":20},"unit":{"enum":["celsius","fahrenheit"]}},"required":["city","unit"]}`)}
var clock = Tool{Name: "get_time", Parameters: json.RawMessage(`{"type":"object","properties":{"tz":{"type":"string"}}}`)}

// outputs are model outputs per format, with what they parse into.
var outputs = []struct {
	name      string
	p         Parser
	text      string
	reasoning string
	content   string
	calls     []Call
	failed    bool
}{
	{"generic call", Parser{Format: Generic, Tools: true}, `{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}]}`,
		"", "", []Call{{Name: "get_weather", Arguments: `{"city": "Paris", "unit": "celsius"}`}}, false},
	{"generic two calls", Parser{Format: Generic, Tools: true}, "{ \"tool_calls\": [ {\"name\": \"get_time\", \"arguments\": {}},\n {\"name\":\"get_weather\",\"arguments\":{\"city\":\"Oslo\",\"unit\":\"celsius\"}} ] }",
		"", "", []Call{{Name: "get_time", Arguments: `{}`}, {Name: "get_weather", Arguments: `{"city":"Oslo","unit":"celsius"}`}}, false},
	{"generic response", Parser{Format: Generic, Tools: true}, `{"response": "It is sunny."}`, "", "It is sunny.", nil, false},
	{"generic text", Parser{Format: Generic, Tools: true}, "Hello there.\n", "", "Hello there.\n", nil, false},
	{"generic malformed", Parser{Format: Generic, Tools: true}, `{"tool_calls": [{"name": "get_weather", "arguments": 5}]}`, "", `{"tool_calls": [{"name": "get_weather", "arguments": 5}]}`, nil, true},
	{"generic JSON answer", Parser{Format: Generic, Tools: true}, `{"a": 1}`, "", `{"a": 1}`, nil, false},
	{"llama3 json", Parser{Format: Llama3, Tools: true}, `{"name": "get_weather", "parameters": {"city": "Rome", "unit": "celsius"}}`,
		"", "", []Call{{Name: "get_weather", Arguments: `{"city": "Rome", "unit": "celsius"}`}}, false},
	{"llama3 python_tag", Parser{Format: Llama3, Tools: true}, `Let me check.<|python_tag|>{"name": "get_time", "parameters": {"tz": "UTC"}}; {"name": "get_time", "parameters": {}}`,
		"", "Let me check.", []Call{{Name: "get_time", Arguments: `{"tz": "UTC"}`}, {Name: "get_time", Arguments: `{}`}}, false},
	{"llama3 text", Parser{Format: Llama3, Tools: true}, "The answer is 4.", "", "The answer is 4.", nil, false},
	{"llama3 broken", Parser{Format: Llama3, Tools: true}, `<|python_tag|>{"name": "get_time", "parameters": {"tz": `, "", `<|python_tag|>{"name": "get_time", "parameters": {"tz": `, nil, true},
	{"hermes with thinking", Parser{Format: Hermes, Tools: true, Reasoning: true}, "<think>\nThe user wants weather.\n</think>\n\nSure.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Lima\", \"unit\": \"celsius\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"PET\"}}\n</tool_call>",
		"The user wants weather.", "Sure.", []Call{{Name: "get_weather", Arguments: `{"city": "Lima", "unit": "celsius"}`}, {Name: "get_time", Arguments: `{"tz": "PET"}`}}, false},
	{"hermes unclosed at end", Parser{Format: Hermes, Tools: true}, "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}",
		"", "", []Call{{Name: "get_time", Arguments: `{}`}}, false},
	{"hermes bad json", Parser{Format: Hermes, Tools: true}, "Hi <tool_call>{\"name\": get_time}</tool_call>", "", "Hi <tool_call>{\"name\": get_time}</tool_call>", nil, true},
	{"hermes no call", Parser{Format: Hermes, Tools: true}, "Just text <tool", "", "Just text <tool", nil, false},
	{"mistral array", Parser{Format: Mistral, Tools: true}, `[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Bern", "unit": "celsius"}, "id": "abcDEF123"}]`,
		"", "", []Call{{ID: "abcDEF123", Name: "get_weather", Arguments: `{"city": "Bern", "unit": "celsius"}`}}, false},
	{"mistral args form", Parser{Format: Mistral, Tools: true}, `[TOOL_CALLS]get_time[ARGS]{"tz": "CET"}[TOOL_CALLS]get_time[CALL_ID]x1[ARGS]{}`,
		"", "", []Call{{Name: "get_time", Arguments: `{"tz": "CET"}`}, {ID: "x1", Name: "get_time", Arguments: `{}`}}, false},
	{"harmony call", Parser{Format: Harmony, Tools: true, Reasoning: true}, `<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city":"Tokyo","unit":"celsius"}`,
		"Need weather.", "", []Call{{Name: "get_weather", Arguments: `{"city":"Tokyo","unit":"celsius"}`}}, false},
	{"harmony final", Parser{Format: Harmony, Tools: true, Reasoning: true}, `<|channel|>analysis<|message|>Simple.<|end|><|start|>assistant<|channel|>final<|message|>Hello!`,
		"Simple.", "Hello!", nil, false},
	{"harmony reasoning off", Parser{Format: Harmony, Tools: false, Reasoning: false}, `<|channel|>analysis<|message|>Simple.<|end|><|start|>assistant<|channel|>final<|message|>Hello!`,
		"", "Simple.\nHello!", nil, false},
	{"think only", Parser{Format: Generic, Reasoning: true}, "<think>a</think>\n\nb", "a", "b", nil, false},
	{"think opened by the prompt", Parser{Format: Generic, Reasoning: true, InThink: true}, "step 1\nstep 2\n</think>answer", "step 1\nstep 2", "answer", nil, false},
	{"think unterminated", Parser{Format: Generic, Reasoning: true}, "<think>still thinking", "still thinking", "", nil, false},
	{"no think", Parser{Format: Generic, Reasoning: true}, "  plain", "", "  plain", nil, false},
	{"tools off", Parser{Format: Hermes}, "<tool_call>{}</tool_call>", "", "<tool_call>{}</tool_call>", nil, false},
}

func TestParse(t *testing.T) {
	for _, o := range outputs {
		r := o.p.Parse(o.text, true)
		if r.Reasoning != o.reasoning || r.Content != o.content || r.Failed != o.failed {
			t.Errorf("%s: reasoning %q content %q failed %v; want %q %q %v", o.name, r.Reasoning, r.Content, r.Failed, o.reasoning, o.content, o.failed)
		}
		if len(r.Calls) != len(o.calls) {
			t.Errorf("%s: %d calls, want %d: %+v", o.name, len(r.Calls), len(o.calls), r.Calls)
			continue
		}
		for i, c := range r.Calls {
			w := o.calls[i]
			if c.Name != w.Name || c.Args != w.Arguments || c.ID != w.ID || !c.Done {
				t.Errorf("%s: call %d %+v, want %+v", o.name, i, c, w)
			}
		}
	}
}

// Streaming: the result of every prefix of an output is extended by the
// final result (reasoning and content are prefixes; calls have the same
// names and argument prefixes), so deltas never need retracting.
func TestParseStreamingPrefixes(t *testing.T) {
	for _, o := range outputs {
		final := o.p.Parse(o.text, true)
		for n := 0; n <= len(o.text); n++ {
			r := o.p.Parse(o.text[:n], false)
			if !strings.HasPrefix(final.Reasoning, r.Reasoning) {
				t.Fatalf("%s: prefix %q: reasoning %q is not a prefix of %q", o.name, o.text[:n], r.Reasoning, final.Reasoning)
			}
			if !strings.HasPrefix(final.Content, r.Content) {
				t.Fatalf("%s: prefix %q: content %q is not a prefix of %q", o.name, o.text[:n], r.Content, final.Content)
			}
			if final.Failed {
				continue
			}
			if len(r.Calls) > len(final.Calls) {
				t.Fatalf("%s: prefix %q: %d calls, final %d", o.name, o.text[:n], len(r.Calls), len(final.Calls))
			}
			for i, c := range r.Calls {
				f := final.Calls[i]
				if c.Name != "" && c.Name != f.Name || !strings.HasPrefix(f.Args, c.Args) || c.Done && c.Args != f.Args {
					t.Fatalf("%s: prefix %q: call %d %+v, final %+v", o.name, o.text[:n], i, c, f)
				}
			}
		}
	}
}

func matches(t *testing.T, g *grammar.Grammar, s string) bool {
	pieces := make([][]byte, 256)
	for i := range pieces {
		pieces[i] = []byte{byte(i)}
	}
	m, err := g.NewMatcher(grammar.NewVocab(pieces, nil), true)
	if err != nil {
		t.Fatal(err)
	}
	return m.AcceptBytes([]byte(s)) == nil && m.CanEnd()
}

// The forced-call grammars accept each format's calls with valid
// arguments, refuse invalid ones, and parse back into the calls.
func TestGrammar(t *testing.T) {
	tools := []Tool{weather, clock}
	good := Call{Name: "get_weather", Arguments: `{"city": "Paris", "unit": "celsius"}`}
	badArgs := Call{Name: "get_weather", Arguments: `{"city": "Paris", "unit": "kelvin"}`}
	other := Call{Name: "get_time", Arguments: `{"tz": "UTC"}`}
	for _, f := range []Format{Generic, Llama3, Hermes, Mistral, Harmony} {
		src, err := Grammar(f, tools, GrammarOptions{})
		if err != nil {
			t.Fatalf("%v: %v", f, err)
		}
		g, err := grammar.Parse(src, grammar.Limits{})
		if err != nil {
			t.Fatalf("%v: %v\n%s", f, err, src)
		}
		wire := Wire(f, []Call{good})
		if f == Harmony {
			wire = strings.TrimSuffix(wire, "<|call|>") // an end-of-generation token
		}
		if !matches(t, g, wire) {
			t.Errorf("%v: %q rejected\n%s", f, wire, src)
		}
		bad := Wire(f, []Call{badArgs})
		if f == Harmony {
			bad = strings.TrimSuffix(bad, "<|call|>")
		}
		if matches(t, g, bad) {
			t.Errorf("%v: %q (arguments outside the schema) accepted", f, bad)
		}
		if f != Harmony && matches(t, g, Wire(f, []Call{good, other})) {
			t.Errorf("%v: two calls accepted without parallel", f)
		}
		r := Parser{Format: f, Tools: true}.Parse(wire, true)
		if len(r.Calls) != 1 || r.Calls[0].Name != good.Name || r.Calls[0].Args != good.Arguments {
			t.Errorf("%v: %q parses into %+v", f, wire, r)
		}
		// Only one named function.
		src, _ = Grammar(f, tools, GrammarOptions{Only: "get_time"})
		g = grammar.MustParse(src)
		if matches(t, g, wire) {
			t.Errorf("%v: only get_time: get_weather accepted", f)
		}
		if f != Harmony {
			// Parallel calls.
			src, _ = Grammar(f, tools, GrammarOptions{Parallel: true})
			two := Wire(f, []Call{good, other})
			if !matches(t, grammar.MustParse(src), two) {
				t.Errorf("%v: parallel %q rejected", f, two)
			}
			// Reasoning first.
			src, _ = Grammar(f, tools, GrammarOptions{Think: ThinkOptional})
			if !matches(t, grammar.MustParse(src), "<think>hmm</think>\n"+wire) || !matches(t, grammar.MustParse(src), wire) {
				t.Errorf("%v: optional thinking refused", f)
			}
			src, _ = Grammar(f, tools, GrammarOptions{Think: ThinkOpen})
			if !matches(t, grammar.MustParse(src), "hmm</think>"+wire) || matches(t, grammar.MustParse(src), wire) {
				t.Errorf("%v: open thinking wrong", f)
			}
		}
	}
	if _, err := Grammar(Generic, tools, GrammarOptions{Only: "nope"}); err == nil || !strings.Contains(err.Error(), `no tool named "nope"`) {
		t.Errorf("unknown name: %v", err)
	}
	bad := Tool{Name: "f", Parameters: json.RawMessage(`{"type":"object","properties":{"x":{"not":{}}}}`)}
	if _, err := Grammar(Generic, []Tool{bad}, GrammarOptions{}); err == nil || !strings.Contains(err.Error(), `tool "f"`) || !strings.Contains(err.Error(), `"not" is not supported`) {
		t.Errorf("unsupported schema: %v", err)
	}
}

func TestValidName(t *testing.T) {
	for _, n := range []string{"f", "get_weather", "a-b", strings.Repeat("x", 64)} {
		if !ValidName(n) {
			t.Errorf("%q invalid", n)
		}
	}
	for _, n := range []string{"", "a b", "f.g", strings.Repeat("x", 65), "é"} {
		if ValidName(n) {
			t.Errorf("%q valid", n)
		}
	}
}
