package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/testassets"
)

// tune-cache end to end on the embedded model at a tiny context: the
// screen has every layer's K and V, the setting fits the budget, its flags
// parse, the verification compares with the base, and a saved screen
// gives the same setting without measuring again.
func TestTuneCache(t *testing.T) {
	text := testassets.Path(t, "eval/dev.txt")
	out, err := kvserve(t, "tune-cache", "-f", text, "-c", "64", "--chunks", "1", "--verify-chunks", "1", "-t", "1", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	js := out[strings.Index(out, "{\n"):]
	var r tuneReport
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(r.Screen) != 16 || r.Allocation == nil || r.Allocation.Bits > 4.5 || r.Allocation.Bits < 2.5 || r.Verify == nil || r.Verify.KLD <= 0 || r.Verify.Chunks != 1 {
		t.Fatalf("report %+v", r)
	}
	for _, it := range r.Screen {
		if it.KLD < 0 || it.Weight != 128 {
			t.Errorf("screen item %+v", it)
		}
	}
	flags := strings.Join(r.Flags, " ")
	if !strings.HasPrefix(flags, "-ctk ") || !strings.Contains(flags, "--cache-key-channels centre --cache-key-encode query") {
		t.Errorf("flags %q", flags)
	}
	for _, l := range []string{r.Setting.LayersK, r.Setting.LayersV} {
		if _, err := engine.ParseLayerTypes(l, 8); l != "" && err != nil {
			t.Errorf("layer flags %q: %v", l, err)
		}
	}
	saved := filepath.Join(t.TempDir(), "screen.json")
	os.WriteFile(saved, []byte(js), 0o644)
	out, err = kvserve(t, "tune-cache", "-c", "64", "--screen", saved)
	if err != nil || !strings.Contains(out, "flags for kvserve serve:\n  "+flags+"\n") || !strings.Contains(out, "predicted KLD:") || !strings.Contains(out, "screen from "+saved) || !strings.Contains(out, "(ctx 64, 1 chunks,") || strings.Contains(out, "measured KLD") {
		t.Errorf("from the saved screen: %v\n%s", err, out)
	}
	short := filepath.Join(t.TempDir(), "short.json")
	os.WriteFile(short, []byte(`{"key_channels":"centre","key_encode":"query","page_tokens":256,"screen":[{"side":"K","layer":0,"kld":0.1},{"side":"V","layer":0,"kld":0.1}]}`), 0o644)
	// --fill spends what the sweep left, never past the budget.
	out, err = kvserve(t, "tune-cache", "-f", text, "-c", "64", "--screen", saved, "--fill", "--json")
	var filled tuneReport
	if err != nil || json.Unmarshal([]byte(out[strings.Index(out, "{\n"):]), &filled) != nil || filled.Sweep == nil ||
		filled.Allocation.Bits > 4.5 || filled.Allocation.Bits < filled.Sweep.Bits || filled.Allocation.Predicted > filled.Sweep.Predicted ||
		filled.Sweep.Bits != r.Allocation.Bits {
		t.Errorf("--fill: %v\n%s", err, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-f", text, "--types", "cb2,tq9"}, "--types: unknown type \"tq9\""},
		{[]string{"-f", text, "--bits", "2.5"}, "--bits: a budget of 2.5 bits per value is below the cheapest setting"},
		{[]string{"-c", "64"}, "no text: give -f FILE"},
		{[]string{"-f", filepath.Join(t.TempDir(), "missing.txt")}, "missing.txt"},
		{[]string{"-f", text, "--screen", text}, "not tune-cache --json output"},
		{[]string{"-f", text, "--screen", saved, "--cache-key-encode", "mse"}, "it was measured with --cache-key-channels centre --cache-key-encode query"},
		{[]string{"-f", text, "--cache-key-channels", "sideways"}, "--cache-key-channels"},
		{[]string{"-f", text, "-c", "64", "--verify-chunks", "1", "--screen", short}, "it has no K figure for layer 1 (a screen of another model?)"},
	} {
		out, err := kvserve(t, append([]string{"tune-cache"}, c.args...)...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("%v: want an error with %q, got %v\n%s", c.args, c.want, err, out)
		}
	}
}
