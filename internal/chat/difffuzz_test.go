//go:build difffuzz

package chat

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// TestDiffJinja2 renders the templates of a file written by
// testdata/difffuzz.py and compares each result with jinja2's.
func TestDiffJinja2(t *testing.T) {
	var cases map[string]testCase
	loadJSON(t, "cases.json", &cases)
	extra := map[string]any{"d": json.RawMessage(`{"a": 1, "b": [1, 2]}`), "n": nil, "x": 3}
	f, err := os.Open(os.Getenv("DIFF_FILE"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	bad, n := 0, 0
	for sc.Scan() {
		var r struct {
			Src    string  `json:"src"`
			Output *string `json:"output"`
			Error  string  `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		n++
		tmpl, err := New(r.Src, "<s>", "</s>")
		var got string
		if err == nil {
			tmpl.Now = func() time.Time { return fixedNow }
			got, err = tmpl.ApplyJSON(cases["multi_turn"].Messages, true, extra)
		}
		if (r.Output == nil) == (err != nil) && (r.Output == nil || *r.Output == got || sameButAddresses(*r.Output, got)) {
			continue
		}
		bad++
		if bad <= 20 {
			want := r.Error
			if r.Output != nil {
				want = *r.Output
			}
			t.Errorf("%q\n  want %.300q\n  got  %.300q, %v", r.Src, want, got, err)
		}
	}
	t.Logf("%d/%d differ", bad, n)
}

// sameButAddresses compares outputs where CPython printed object addresses.
func sameButAddresses(want, got string) bool {
	w := strings.Fields(want)
	g := strings.Fields(got)
	if len(w) != len(g) || !strings.Contains(strings.ToLower(want), " at 0x") {
		return false
	}
	for i := range w {
		if w[i] != g[i] && !strings.HasPrefix(strings.ToLower(w[i]), "0x") {
			return false
		}
	}
	return true
}
