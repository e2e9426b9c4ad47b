package cachepolicy

import (
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/tensor"
)

// ageRule is multistage precision by age: pages holding any of the last
// Hot tokens or of the first Sink tokens stay at tier 0 of the ladder; an
// older page is at tier 1 + (age-Hot)/Warm (capped at the ladder's end),
// age being that of its newest token; Warm 0 sends every page older than
// Hot to the bottom. Each layer walks its own ladder (Policy.Ladder: its
// cold type, when it has one, is its bottom).
type ageRule struct{ p *Policy }

func (ageRule) Name() string { return "age" }

func (r ageRule) Target(pg *Page) (tensor.Type, bool) {
	ladder := r.p.Ladder(pg.Layer, pg.V)
	if len(ladder) == 0 || pg.First() < r.p.Sink {
		return 0, false
	}
	return ladder[r.p.tierForAge(pg.Age(), len(ladder))], true
}

// Write: new pages are written at tier 0, the policy's base write type.
func (ageRule) Write(*Seq, int, bool, kvcache.RoleSet) (tensor.Type, bool) { return 0, false }

// tierForAge returns the ladder tier of a page whose newest position is
// `age` tokens old (0 = the newest token), with ladder length n.
func (p *Policy) tierForAge(age, n int) int {
	if p.Hot == 0 || age < p.Hot {
		return 0
	}
	if p.Warm == 0 {
		return n - 1
	}
	return min(1+(age-p.Hot)/p.Warm, n-1)
}
