package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestHostileWork checks the bounds on expensive value operations: the
// deadline is enforced inside them, not only between loop iterations.
func TestHostileWork(t *testing.T) {
	for _, tc := range []struct{ name, src, kind string }{
		{"quadratic unique", "{% set ns = namespace(l=range(100000)|list) %}{% for i in range(5) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l|unique|list|length }}", "LimitError"},
		{"quadratic in", "{% set l = range(100000)|list %}{% for i in range(100000) %}{{ -1 in l }}{% endfor %}", "LimitError"},
		{"quadratic concat", "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + [i] %}{% endfor %}", "LimitError"},
		{"big sort", "{% set ns = namespace(l=range(100000)|list) %}{% for i in range(5) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{% for i in range(1000) %}{{ ns.l|sort|length }}{% endfor %}", "LimitError"},
		{"batch fill", "{{ [1]|batch(1000000000, 'x')|list|length }}", "LimitError"},
		{"batch huge", "{{ [1, 2]|batch(9223372036854775807, 'x')|list|length }}", "LimitError"},
		{"deep tuple hash", "{% set ns = namespace(t=1) %}{% for i in range(1000) %}{% set ns.t = (ns.t,) %}{% endfor %}{{ {ns.t: 1}|length }}", "RecursionError"},
		{"exponential repr", "{% set ns = namespace(l=[]) %}{% for i in range(100) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l }}", "LimitError"},
		{"exponential tojson", "{% set ns = namespace(l=[]) %}{% for i in range(100) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l|tojson }}", "LimitError"},
		{"exponential compare", "{% set ns = namespace(a=[], b=[]) %}{% for i in range(100) %}{% set ns.a = [ns.a, ns.a] %}{% set ns.b = [ns.b, ns.b] %}{% endfor %}{{ ns.a < ns.b }}", "LimitError"},
		{"exponential eq", "{% set ns = namespace(a=[], b=[]) %}{% for i in range(100) %}{% set ns.a = [ns.a, ns.a] %}{% set ns.b = [ns.b, ns.b] %}{% endfor %}{{ ns.a == ns.b }}", ""},
		{"recursive loop", "{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}", "LimitError"},
		{"non-ascii index", "{% set s = 'é' * 1000000 %}{% for i in range(100000) %}{{ s[i] }}{% endfor %}", "LimitError"},
		{"format width", "{% for i in range(1000) %}{{ '%1000000d' % i }}{% endfor %}", "LimitError"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl, err := New(tc.src, "", "")
			if err != nil {
				t.Fatal(err)
			}
			tmpl.Timeout = 300 * time.Millisecond
			tmpl.MaxOutput = 8 << 20
			start := time.Now()
			_, err = tmpl.Apply(nil, true, nil)
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
			if tc.kind == "" {
				return
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Kind != tc.kind {
				t.Fatalf("got %v, want a %s", err, tc.kind)
			}
		})
	}
}

// TestCompileTimeBounded checks that constant folding, which evaluates
// constant expressions when a template is compiled, is bounded in time.
func TestCompileTimeBounded(t *testing.T) {
	src := strings.Repeat("{{ ([0] * 100000)|unique|list|length }}{{ [1, 2]|batch(0)|list }}", 50)
	start := time.Now()
	tmpl, err := New(src, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("compiling took %v", d)
	}
	tmpl.Timeout = 200 * time.Millisecond
	_, err = tmpl.Apply(nil, false, nil)
	var ce *Error
	if !errors.As(err, &ce) || ce.Kind != "LimitError" {
		t.Fatalf("got %v, want a LimitError", err)
	}
}

// TestConcurrentGolden renders every golden template and case from several
// goroutines at once with shared compiled templates (folded constants,
// macros and all): renderings must not interfere.
func TestConcurrentGolden(t *testing.T) {
	var manifest map[string]struct{ BOS, EOS string }
	var cases map[string]testCase
	var golden map[string]goldenEntry
	loadJSON(t, "templates.json", &manifest)
	loadJSON(t, "cases.json", &cases)
	loadJSON(t, "golden.json", &golden)
	type job struct {
		tmpl *Template
		key  string
		c    testCase
	}
	var jobs []job
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
			jobs = append(jobs, job{tmpl, name + "/" + cname + "/gen", c})
		}
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := range jobs {
				j := jobs[(i+g*len(jobs)/4)%len(jobs)]
				got, err := j.tmpl.ApplyJSON(j.c.Messages, true, j.c.extra())
				want := golden[j.key]
				if (want.Output == nil) != (err != nil) || (want.Output != nil && *want.Output != got) {
					t.Errorf("%s: differs under concurrency", j.key)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

// TestScopeCapture checks that values which keep a loop iteration's scope
// (a macro defined in the body) see that iteration, and that a loop body's
// assignments never leak.
func TestScopeCapture(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"{% set ns = namespace(ms=[]) %}{% for i in [1, 2, 3] %}{% macro m() %}{{ i }}{% endmacro %}{% set ns.ms = ns.ms + [m] %}{% endfor %}{% for m in ns.ms %}{{ m() }}{% endfor %}", "123"},
		{"{% for i in [1, 2] %}{% set x = i %}{% endfor %}[{{ x }}]", "[]"},
		{"{% set x = 0 %}{% for i in [1, 2] %}{{ x }}{% set x = i %}{{ x }}{% endfor %}{{ x }}", "01020"},
	} {
		tmpl, err := New(tc.src, "", "")
		if err != nil {
			t.Fatal(err)
		}
		got, err := tmpl.Apply(nil, false, nil)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.src, got, err, tc.want)
		}
	}
}

// refJSON decodes with encoding/json's tokenizer, keeping key order: the
// reference for jsonValue.
func refJSON(b []byte) (V, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var walk func() (V, error)
	walk = func() (V, error) {
		tok, err := dec.Token()
		if err != nil {
			return vUndef, err
		}
		switch tok := tok.(type) {
		case json.Delim:
			if tok == '[' {
				var items []V
				for dec.More() {
					v, err := walk()
					if err != nil {
						return vUndef, err
					}
					items = append(items, v)
				}
				_, err := dec.Token()
				return vList(items), err
			}
			d := newDict(0)
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return vUndef, err
				}
				v, err := walk()
				if err != nil {
					return vUndef, err
				}
				d.Set(k.(string), v)
			}
			_, err := dec.Token()
			return vDict(d), err
		case string:
			return vStr(tok), nil
		case bool:
			return vBool(tok), nil
		case json.Number:
			return numberValue(tok), nil
		}
		return vNone, nil
	}
	v, err := walk()
	if err != nil {
		return vUndef, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return vUndef, errors.New("trailing data")
	}
	return v, nil
}

func checkJSON(t *testing.T, in []byte) {
	t.Helper()
	got, err := jsonValue(in)
	want, werr := refJSON(in)
	if (err == nil) != json.Valid(in) {
		t.Fatalf("%q: error %v, but json.Valid says %v", in, err, json.Valid(in))
	}
	if err != nil || werr != nil {
		return
	}
	if pyRepr(got) != pyRepr(want) || !pyEq(got, want) {
		t.Fatalf("%q: got %s, want %s", in, pyRepr(got), pyRepr(want))
	}
}

var jsonSamples = []string{
	`[]`, `{}`, ` [ 1 , -2.5e3 , 0 , -0 , 1E2, 12345678901234567890 ] `, `{"a": {"b": [true, false, null]}, "a": 2}`,
	`"\u00e9\ud83d\ude00\n\t\"\\\/\b\f\r"`, `"\ud800"`, `"\ud800\u0041"`, `"\udc00\ud800"`, "\"\xff\xfe\"", `"a\u0000b"`,
	`[1,]`, `{"a":1,}`, `{"a" 1}`, `[01]`, `[1.]`, `[.5]`, `[1e]`, `[-]`, `"\x"`, `"\u12"`, "\"a\nb\"", `nul`, `tru`, `[1] x`,
	`{"k": "v"`, `[`, ``, `  `, `{"a":[{"b":{"c":[]}}]}`, `[1e400, -1e400, 5e-324]`, `"\u0041\u00e9"`, `{1: 2}`,
	`[true,false,null]`, `[truex]`, `"` + strings.Repeat("é", 100) + `"`,
}

func TestJSONValue(t *testing.T) {
	for _, s := range jsonSamples {
		checkJSON(t, []byte(s))
	}
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	if _, err := jsonValue([]byte(deep)); err == nil {
		t.Error("20000-deep JSON accepted")
	}
}

func FuzzJSONValue(f *testing.F) {
	for _, s := range jsonSamples {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkJSON(t, in)
	})
}
