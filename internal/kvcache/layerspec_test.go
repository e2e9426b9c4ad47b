package kvcache

import (
	"reflect"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
)

// Per-layer type lists parse into their items in order (spaces and empty
// items ignored, overlaps left to the caller); bad items are errors
// naming the item, never a panic.
func TestParseLayerTypeRanges(t *testing.T) {
	got, err := ParseLayerTypeRanges(" 0 - 3 : q8_0, ,7:f16,2:cb3")
	want := []LayerTypeRange{
		{Item: "0 - 3 : q8_0", Layers: "0 - 3", From: 0, To: 3, Type: tensor.Q8_0},
		{Item: "7:f16", Layers: "7", From: 7, To: 7, Type: tensor.F16},
		{Item: "2:cb3", Layers: "2", From: 2, To: 2, Type: tensor.CB3},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, %v", got, err)
	}
	if got, err := ParseLayerTypeRanges(" , "); err != nil || got != nil {
		t.Fatalf(`" , ": %+v, %v`, got, err)
	}
	for _, c := range []struct{ spec, want string }{
		{"cb3", `"cb3": want LAYERS:TYPE`},
		{"0:q9_0", `"0:q9_0": unknown cache type`},
		{"x:cb4", `"x:cb4": layer "x" is not a non-negative number`},
		{"1-y:cb4", `"1-y:cb4": layer "y" is not a non-negative number`},
		{"-1:cb3", "not a non-negative number"},
		{"0-99999999999999999999:cb3", "not a non-negative number"},
		{"4-2:cb3", `"4-2:cb3": bad layer range "4-2"`},
		{"1--2:cb3", "bad layer range"},
		{":", "unknown cache type"},
	} {
		if _, err := ParseLayerTypeRanges("0:f16," + c.spec); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error with %q", c.spec, err, c.want)
		}
	}
}
