package engine

import (
	"testing"

	"github.com/kvserve/kvserve/internal/model"
)

// An AdapterSet names the adapters applied at a non-zero scale, in load
// order, whether the scales are a request's or the adapters' own: equal
// sets for equal effective scales, whatever the list's length.
func TestAdapterSetCanonical(t *testing.T) {
	a, b := &model.Lora{}, &model.Lora{}
	a.SetScale(1)
	e := &Engine{loras: []*model.Lora{a, b}, loraIDs: []string{"aa", "bb"}}
	for _, c := range []struct {
		scales []float32
		want   AdapterSet
	}{
		{nil, "aa@1;"},
		{[]float32{1}, "aa@1;"},
		{[]float32{1, 0}, "aa@1;"},
		{[]float32{1, 0.5}, "aa@1;bb@0.5;"},
		{[]float32{0, 0.5}, "bb@0.5;"},
		{[]float32{0.25}, "aa@0.25;"},
		{[]float32{}, ""},
		{[]float32{0, 0}, ""},
	} {
		if got := e.adapterSet(c.scales); got != c.want {
			t.Errorf("scales %v: %q, want %q", c.scales, got, c.want)
		}
	}
	b.SetScale(2)
	if got := e.adapterSet(nil); got != "aa@1;bb@2;" {
		t.Errorf("the adapters' own scales 1 and 2: %q", got)
	}
	if got := (&Engine{}).adapterSet([]float32{}); got != "" {
		t.Errorf("no adapter: %q", got)
	}
}
