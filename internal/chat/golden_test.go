package chat

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// fixedNow is the clock gen_golden.py gives strftime_now.
var fixedNow = time.Date(2024, 7, 26, 9, 5, 3, 0, time.UTC)

type goldenEntry struct {
	Output *string `json:"output"`
	Error  string  `json:"error"`
}

func loadJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

type testCase struct {
	Messages json.RawMessage            `json:"messages"`
	Extra    map[string]json.RawMessage `json:"extra"`
}

func (c testCase) extra() map[string]any {
	m := map[string]any{}
	for k, v := range c.Extra {
		m[k] = v
	}
	return m
}

// compare checks one rendering against its golden entry.
func compare(t *testing.T, key string, want goldenEntry, got string, err error) bool {
	t.Helper()
	switch {
	case want.Output == nil && err == nil:
		t.Errorf("%s: jinja2 fails (%s) but we rendered %q", key, want.Error, got)
	case want.Output != nil && err != nil:
		t.Errorf("%s: jinja2 renders but we failed: %v", key, err)
	case want.Output != nil && got != *want.Output:
		t.Errorf("%s: output differs\n%s", key, diff(*want.Output, got))
	default:
		return true
	}
	return false
}

func diff(want, got string) string {
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	lo := max(0, i-60)
	return "first difference at byte " + itoa(i) + "\n  want: " + quoteSnip(want, lo, i+60) + "\n  got:  " + quoteSnip(got, lo, i+60)
}

func quoteSnip(s string, lo, hi int) string {
	hi = min(hi, len(s))
	if lo > hi {
		lo = hi
	}
	b, _ := json.Marshal(s[lo:hi])
	return string(b)
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestGoldenTemplates(t *testing.T) {
	var manifest map[string]struct{ BOS, EOS string }
	var cases map[string]testCase
	var golden map[string]goldenEntry
	loadJSON(t, "templates.json", &manifest)
	loadJSON(t, "cases.json", &cases)
	loadJSON(t, "golden.json", &golden)

	names := make([]string, 0, len(manifest))
	for n := range manifest {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		meta := manifest[name]
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata", "templates", name+".jinja"))
			if err != nil {
				t.Fatal(err)
			}
			tmpl, err := New(string(src), meta.BOS, meta.EOS)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			tmpl.Now = func() time.Time { return fixedNow }
			pass, total := 0, 0
			for cname, c := range cases {
				for _, agp := range []bool{true, false} {
					key := name + "/" + cname + "/" + map[bool]string{true: "gen", false: "nogen"}[agp]
					want, ok := golden[key]
					if !ok {
						t.Fatalf("%s missing from golden.json: run testdata/gen_golden.py", key)
					}
					got, err := tmpl.ApplyJSON(c.Messages, agp, c.extra())
					total++
					if compare(t, key, want, got, err) {
						pass++
					}
				}
			}
			t.Logf("%d/%d renderings identical to jinja2", pass, total)
		})
	}
}

func TestGoldenSnippets(t *testing.T) {
	var cases map[string]testCase
	var snippets map[string]string
	var golden map[string]goldenEntry
	loadJSON(t, "cases.json", &cases)
	loadJSON(t, "snippets.json", &snippets)
	loadJSON(t, "golden.json", &golden)
	extra := map[string]any{
		"d": json.RawMessage(`{"a": 1, "b": [1, 2]}`),
		"n": nil,
		"x": 3,
	}
	for name, src := range snippets {
		key := "snippet/" + name
		want := golden[key]
		tmpl, err := New(src, "<s>", "</s>")
		var got string
		if err == nil {
			tmpl.Now = func() time.Time { return fixedNow }
			got, err = tmpl.ApplyJSON(cases["multi_turn"].Messages, true, extra)
		}
		compare(t, key, want, got, err)
		if want.Output == nil && err != nil && strings.Contains(want.Error, "TemplateError") {
			if ce, ok := err.(*Error); !ok || ce.Kind != "TemplateError" {
				t.Errorf("%s: want a TemplateError, got %v", key, err)
			}
		}
	}
}
