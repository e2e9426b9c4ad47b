package engine_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/tensor"
)

// ParseLayerTypes (--cache-type-k-layers): items may overlap, a later one
// wins (cachepolicy.ParseColdLayers, on the same syntax, refuses
// overlaps); layers past the model are errors; a cache's options name the
// flag in their errors.
func TestParseLayerTypes(t *testing.T) {
	got, err := engine.ParseLayerTypes("0-3:q8_0, 2:f16,,", 8)
	want := map[int]tensor.Type{0: tensor.Q8_0, 1: tensor.Q8_0, 2: tensor.F16, 3: tensor.Q8_0}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}
	if got, err := engine.ParseLayerTypes("", 8); err != nil || len(got) != 0 {
		t.Fatalf(`"": %v, %v`, got, err)
	}
	for _, c := range []struct{ spec, want string }{
		{"6-8:f16", `layer range "6-8" is outside 0-7`},
		{"x:f16", `layer "x" is not a non-negative number`},
		{"3-1:f16", "bad layer range"},
		{"q8_0", "want LAYERS:TYPE"},
	} {
		if _, err := engine.ParseLayerTypes(c.spec, 8); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error with %q", c.spec, err, c.want)
		}
	}
	e := tierEngine(t)
	for _, side := range []string{"k", "v"} {
		o := engine.DefaultCacheOptions()
		if side == "k" {
			o.LayersK = "0:q9_0"
		} else {
			o.LayersV = "0:q9_0"
		}
		if _, err := e.NewCache(o, 1, 64); err == nil || !strings.Contains(err.Error(), "--cache-type-"+side+"-layers") {
			t.Errorf("layers %s: %v, want an error naming the flag", side, err)
		}
	}
}
