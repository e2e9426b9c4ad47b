package chat

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/testassets"
)

func TestDefaultSourceMatchesTestdata(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "templates", "default-chatml.jinja"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != DefaultSource {
		t.Fatal("DefaultSource differs from testdata/templates/default-chatml.jinja, which the golden outputs were made from")
	}
}

func TestFromGGUF(t *testing.T) {
	var golden map[string]goldenEntry
	var cases map[string]testCase
	loadJSON(t, "golden.json", &golden)
	loadJSON(t, "cases.json", &cases)
	for _, tc := range []struct {
		file, bos, eos, goldenAs string
		fallback                 bool
	}{
		{"models/kvtest-27m-f16.gguf", "<|endoftext|>", "<|endoftext|>", "kvtest-27m", false},
		{"models/kvtest-qwen3-14m-f16.gguf", "<|endoftext|>", "<|endoftext|>", "kvtest-27m", false},
		{"models/kvtest-spm-5m-f16.gguf", "<s>", "</s>", "default-chatml", true},
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			f, err := gguf.Open(testassets.Path(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			tmpl, err := FromGGUF(f, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tmpl.IsDefault() != tc.fallback {
				t.Fatalf("IsDefault = %v, want %v", tmpl.IsDefault(), tc.fallback)
			}
			if tmpl.BOS() != tc.bos || tmpl.EOS() != tc.eos {
				t.Fatalf("bos/eos = %q/%q, want %q/%q", tmpl.BOS(), tmpl.EOS(), tc.bos, tc.eos)
			}
			if src, ok := f.String("tokenizer.chat_template"); ok && tmpl.Source() != src {
				t.Fatal("Source() is not the model's template")
			}
			// The bos/eos texts do not appear in these templates, so the
			// golden outputs (made with other bos/eos) apply.
			for _, cname := range []string{"single_user", "multi_turn", "unicode_quotes"} {
				for _, agp := range []bool{true, false} {
					key := tc.goldenAs + "/" + cname + "/" + map[bool]string{true: "gen", false: "nogen"}[agp]
					got, err := tmpl.ApplyJSON(cases[cname].Messages, agp, nil)
					compare(t, key, golden[key], got, err)
				}
			}
			// tokText overrides the vocabulary lookup.
			tmpl2, err := FromGGUF(f, func(id int) string { return "T" + itoa(id) })
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(tmpl2.BOS(), "T") {
				t.Fatalf("tokText not used: bos %q", tmpl2.BOS())
			}
		})
	}
}

// messagesFromJSON converts a golden case to []Message when the Message
// type can express it exactly.
func messagesFromJSON(t *testing.T, raw json.RawMessage) ([]Message, bool) {
	var in []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &in); err != nil {
		t.Fatal(err)
	}
	var out []Message
	for _, m := range in {
		var msg Message
		for k, v := range m {
			var err error
			switch k {
			case "role":
				err = json.Unmarshal(v, &msg.Role)
			case "content":
				if string(v) == "null" {
					msg.NullContent = true
				} else if err = json.Unmarshal(v, &msg.Content); err != nil {
					return nil, false // structured content
				}
			case "name":
				err = json.Unmarshal(v, &msg.Name)
			case "tool_call_id":
				err = json.Unmarshal(v, &msg.ToolCallID)
			case "reasoning_content":
				err = json.Unmarshal(v, &msg.ReasoningContent)
			case "tool_calls":
				var calls []struct {
					ID       string `json:"id"`
					Type     string `json:"type"`
					Function struct {
						Name      string          `json:"name"`
						Arguments json.RawMessage `json:"arguments"`
					} `json:"function"`
				}
				err = json.Unmarshal(v, &calls)
				for _, c := range calls {
					var args any = c.Function.Arguments
					var s string
					if json.Unmarshal(c.Function.Arguments, &s) == nil {
						args = s
					}
					msg.ToolCalls = append(msg.ToolCalls, ToolCall{ID: c.ID, Type: c.Type, Function: ToolCallFunction{Name: c.Function.Name, Arguments: args}})
				}
			default:
				return nil, false
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if _, ok := m["content"]; !ok {
			return nil, false
		}
		out = append(out, msg)
	}
	return out, true
}

func TestMessageAPIMatchesGolden(t *testing.T) {
	var manifest map[string]struct{ BOS, EOS string }
	var cases map[string]testCase
	var golden map[string]goldenEntry
	loadJSON(t, "templates.json", &manifest)
	loadJSON(t, "cases.json", &cases)
	loadJSON(t, "golden.json", &golden)
	checked := 0
	for name, meta := range manifest {
		src, err := os.ReadFile(filepath.Join("testdata", "templates", name+".jinja"))
		if err != nil {
			t.Fatal(err)
		}
		tmpl, err := New(string(src), meta.BOS, meta.EOS)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.Now = func() time.Time { return fixedNow }
		for cname, c := range cases {
			msgs, ok := messagesFromJSON(t, c.Messages)
			if !ok {
				continue
			}
			key := name + "/" + cname + "/gen"
			got, err := tmpl.Apply(msgs, true, c.extra())
			compare(t, key+" (via []Message)", golden[key], got, err)
			checked++
		}
	}
	if checked < 200 {
		t.Fatalf("only %d renderings checked", checked)
	}
}

func TestRaiseException(t *testing.T) {
	tmpl, err := New(`{% if messages[0].role != 'user' %}{{ raise_exception('first message must be from the user, got ' + messages[0].role) }}{% endif %}ok`, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := tmpl.Apply([]Message{{Role: "user", Content: "hi"}}, true, nil); err != nil || out != "ok" {
		t.Fatalf("got %q, %v", out, err)
	}
	_, err = tmpl.Apply([]Message{{Role: "assistant", Content: "hi"}}, true, nil)
	var ce *Error
	if !errors.As(err, &ce) || ce.Kind != "TemplateError" || ce.Msg != "first message must be from the user, got assistant" {
		t.Fatalf("got %#v", err)
	}
	if !strings.Contains(err.Error(), "first message must be from the user") {
		t.Fatalf("error text %q", err)
	}
}

func TestSyntaxErrors(t *testing.T) {
	for _, src := range []string{
		"{% if x %}unclosed",
		"{% for x in %}{% endfor %}",
		"{{ x ",
		"{# unclosed comment",
		"{% endif %}",
		"{{ (1 }}",
		"{{ [1, 2 }}",
		"{{ 'unterminated }}",
		"{% set %}",
		"{% macro m(a=1, b) %}{% endmacro %}",
		"{% break %}",
		"{% include 'x' %}",
		"{{ x | }}",
		"{{ 1 + }}",
		"{% raw %}no end",
		"{{ x is }}",
		"{{ }}",
		"{{ x\x00 }}",
		"{{ " + strings.Repeat("(", 500) + "1" + strings.Repeat(")", 500) + " }}",
		strings.Repeat("{% if true %}", 300) + strings.Repeat("{% endif %}", 300),
	} {
		_, err := New(src, "", "")
		if err == nil {
			t.Errorf("%.60q: compiled, want a syntax error", src)
			continue
		}
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%.60q: error %v is not a *SyntaxError", src, err)
		} else if se.Line < 1 {
			t.Errorf("%.60q: bad line %d", src, se.Line)
		}
	}
	_, err := New("line1\nline2\n{{ x + }}", "", "")
	var se *SyntaxError
	if !errors.As(err, &se) || se.Line != 3 {
		t.Fatalf("want error on line 3, got %v", err)
	}
}

func TestHostileTemplates(t *testing.T) {
	for _, tc := range []struct{ name, src, kind string }{
		{"infinite recursion", "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "LimitError"},
		{"mutual recursion", "{% macro a() %}{{ b() }}{% endmacro %}{% macro b() %}{{ a() }}{% endmacro %}{{ a() }}", "LimitError"},
		{"recursion via caller", "{% macro f() %}{% call f() %}x{% endcall %}{% endmacro %}{{ f() }}", "LimitError"},
		{"nested huge loops", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "LimitError"},
		{"string doubling", "{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "LimitError"},
		{"string add doubling", "{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}", "LimitError"},
		{"big repeat", "{{ 'abc' * 1000000000000 }}", "LimitError"},
		{"big list repeat", "{{ [1, 2] * 1000000000000 }}", "LimitError"},
		{"replace bomb", "{% set ns = namespace(s='xxxxxxxxxx') %}{% for i in range(30) %}{% set ns.s = ns.s.replace('x', 'xxxxxxxxxx') %}{% endfor %}", "LimitError"},
		{"join bomb", "{% set ns = namespace(l=['x' * 1000000]) %}{% for i in range(100) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l|join }}", "LimitError"},
		{"output flood", "{% for i in range(100000) %}{% for j in range(100) %}{{ 'x' * 1000 }}{% endfor %}{% endfor %}", "LimitError"},
		{"big range", "{{ range(10**9)|length }}", "OverflowError"},
		{"big range int", "{{ range(1000000000)|length }}", "OverflowError"},
		{"cyclic namespace eq", "{% set ns = namespace() %}{% set ns.me = ns %}{{ ns == ns }}", ""},
		{"cyclic namespace print", "{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}", ""},
		{"cyclic tojson", "{% set ns = namespace() %}{% set ns.me = ns %}{{ ns|tojson }}", "RecursionError"},
		{"unsafe method", "{{ messages.append(1) }}", "SecurityError"},
		{"dunder", "{{ messages.__class__.__mro__ }}", "UndefinedError"},
		{"int overflow", "{{ 9223372036854775807 + 1 }}", "OverflowError"},
		{"pow overflow", "{{ 2 ** 100 }}", "OverflowError"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl, err := New(tc.src, "", "")
			if err != nil {
				t.Fatal(err)
			}
			tmpl.Timeout = 300 * time.Millisecond
			tmpl.MaxOutput = 8 << 20
			start := time.Now()
			_, err = tmpl.Apply([]Message{{Role: "user", Content: "hi"}}, true, nil)
			if time.Since(start) > 10*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
			if tc.kind == "" {
				return // must merely terminate without panicking
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Kind != tc.kind {
				t.Fatalf("got %v, want a %s", err, tc.kind)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	tmpl, err := New("{% for i in range(100000) %}{% for j in range(100) %}{{ i }}{% endfor %}{% endfor %}", "", "")
	if err != nil {
		t.Fatal(err)
	}
	tmpl.Timeout = 50 * time.Millisecond
	start := time.Now()
	_, err = tmpl.Apply(nil, false, nil)
	var ce *Error
	if !errors.As(err, &ce) || ce.Kind != "LimitError" {
		t.Fatalf("got %v, want a LimitError", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("timeout not enforced promptly: %v", d)
	}
}

func TestExtraValues(t *testing.T) {
	tmpl, err := New(`{{ tools|tojson }}|{{ m|tojson }}|{{ n }}|{{ s.Name }}|{{ l }}|{{ enable_thinking }}|{{ documents }}|{{ 'x' is defined }}`, "", "")
	if err != nil {
		t.Fatal(err)
	}
	type S struct{ Name string }
	out, err := tmpl.Apply(nil, false, map[string]any{
		"tools":           json.RawMessage(`[{"z": 1, "a": {"y": null, "b": [true, 1.5, 2]}}]`),
		"m":               map[string]any{"b": 1, "a": []string{"x"}},
		"n":               nil,
		"s":               S{Name: "go"},
		"l":               []int{1, 2},
		"enable_thinking": false,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"z": 1, "a": {"y": null, "b": [true, 1.5, 2]}}]|{"a": ["x"], "b": 1}|None|go|[1, 2]|False|None|True`
	if out != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
	if _, err := tmpl.Apply(nil, false, map[string]any{"bad": make(chan int)}); err == nil {
		t.Fatal("unsupported extra value accepted")
	}
	if _, err := tmpl.ApplyJSON([]byte(`{"role": "user"}`), false, nil); err == nil {
		t.Fatal("non-array messages accepted")
	}
	if _, err := tmpl.ApplyJSON([]byte(`[{"role": `), false, nil); err == nil {
		t.Fatal("truncated JSON accepted")
	}
}

func TestConcurrentApply(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "templates", "qwen3.jinja"))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := New(string(src), "", "<|im_end|>")
	if err != nil {
		t.Fatal(err)
	}
	msgs := []Message{{Role: "system", Content: "s"}, {Role: "user", Content: "u"}, {Role: "assistant", Content: "<think>r</think>a"}, {Role: "user", Content: "again"}}
	want, err := tmpl.Apply(msgs, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if got, err := tmpl.Apply(msgs, true, nil); err != nil || got != want {
					t.Errorf("concurrent render differs: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// FuzzTemplate checks that no template source or message text panics or
// hangs compilation or rendering.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{
		DefaultSource,
		"{% for m in messages %}{{ m.role }}: {{ m.content|trim }}\n{% endfor %}",
		"{{ messages[0]['content'][::-1]|tojson(indent=2) }}",
		"{% macro f(n) %}{% if n %}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}",
		"{%- set ns = namespace(a=[]) -%}{% for k, v in {'a': 1}|items %}{% set ns.a = ns.a + [k] %}{% endfor %}{{ ns.a }}",
		"{% raw %}{{{% endraw %}{#-x-#}{%+ if 1 +%}{%- endif -%}",
		"{{ '%s' % (1,) }}{{ 'a'.split()[5] }}{{ x.y.z }}",
		"{% filter upper %}{% call(a) m() %}{% endcall %}{% endfilter %}",
		"{{ 1e309 }}{{ -0.0 }}{{ 0x }}{{ 1_ }}{{ '\\x' }}{{ '\\u12' }}",
	} {
		f.Add(s, "hello")
	}
	f.Fuzz(func(t *testing.T, src, content string) {
		tmpl, err := New(src, "<s>", "</s>")
		if err != nil {
			if strings.Contains(err.Error(), "internal error") {
				t.Fatalf("compile %q: %v", src, err)
			}
			return
		}
		tmpl.Timeout = 200 * time.Millisecond
		tmpl.MaxOutput = 1 << 20
		_, err = tmpl.Apply([]Message{{Role: "user", Content: content}}, true, nil)
		if err != nil && strings.Contains(err.Error(), "internal error") {
			t.Fatalf("render %q: %v", src, err)
		}
	})
}
