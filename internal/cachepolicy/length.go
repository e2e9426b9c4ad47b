package cachepolicy

import (
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/tensor"
)

// lengthRule is precision by context length (dynamic): once a sequence
// holds a step's length, its pages and its new writes are at the step's
// type.
type lengthRule struct{ p *Policy }

func (lengthRule) Name() string { return "length" }

func (r lengthRule) Target(pg *Page) (tensor.Type, bool) {
	return lengthType(r.steps(pg.V), pg.Seq.Len)
}

func (r lengthRule) Write(sq *Seq, _ int, v bool, _ kvcache.RoleSet) (tensor.Type, bool) {
	return lengthType(r.steps(v), sq.Len)
}

func (r lengthRule) steps(v bool) []LengthStep {
	if v {
		return r.p.LengthV
	}
	return r.p.LengthK
}

func lengthType(steps []LengthStep, n int) (tensor.Type, bool) {
	var t tensor.Type
	ok := false
	for _, st := range steps {
		if n >= st.At {
			t, ok = st.T, true
		}
	}
	return t, ok
}
