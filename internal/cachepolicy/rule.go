package cachepolicy

import (
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/tensor"
)

// A Rule asks for precision. Its name is the reason recorded for the
// conversions it decides.
type Rule interface {
	Name() string
}

// A PageRule asks, page by page, for the lowest type it wants, and for the
// types new pages of a sequence are written in. Page rules compose: a
// page's target is the lowest precision any of them asks for, and a page
// is never stepped back up.
type PageRule interface {
	Rule
	// Target is the type the rule wants the page at (ok false: no
	// opinion).
	Target(pg *Page) (t tensor.Type, ok bool)
	// Write is the type the rule wants a new page of the sequence written
	// in, for layer l and side v (V when true), the page to hold tokens of
	// the given roles (ok false: no opinion).
	Write(sq *Seq, l int, v bool, roles kvcache.RoleSet) (t tensor.Type, ok bool)
}

// A RoomRule runs after the page rules, on the cache as their steps
// would leave it, and adds steps of its own (the budget).
type RoomRule interface {
	Rule
	Room(sim *sim, in *Input) error
}

// Seq is what rules know of a sequence when they plan.
type Seq struct {
	SeqState
	Len        int // positions held
	PageTokens int
}

// Page is what a page rule knows of one page.
type Page struct {
	kvcache.PageRef
	Seq   *Seq
	Type  tensor.Type     // its type as planned so far
	Roles kvcache.RoleSet // roles of the tokens it holds
}

// Age is that of the page's newest token (0: the newest token of the
// sequence).
func (pg *Page) Age() int {
	end := min((pg.Index+1)*pg.Seq.PageTokens, pg.Seq.Len)
	return pg.Seq.Len - end
}

// First is the page's first position.
func (pg *Page) First() int { return pg.Index * pg.Seq.PageTokens }

// pageRules are the policy's page rules, in the order ties are
// attributed (the first rule asking for the lowest type names the
// conversion).
func (p *Policy) pageRules() []PageRule {
	var rs []PageRule
	if p.Hot > 0 {
		rs = append(rs, ageRule{p})
	}
	if len(p.LengthK) > 0 || len(p.LengthV) > 0 {
		rs = append(rs, lengthRule{p})
	}
	if p.hasRoles() {
		rs = append(rs, roleRule{p})
	}
	return rs
}

// roomRules are the rules that make room after the page rules.
func (p *Policy) roomRules() []RoomRule {
	if p.Budget > 0 {
		return []RoomRule{budgetRule{p}}
	}
	return nil
}

// ladder returns the policy's ladder for a side.
func (p *Policy) ladder(v bool) []tensor.Type {
	if v {
		return p.LadderV
	}
	return p.LadderK
}

// lower returns the lower-precision of a and b.
func lower(a, b tensor.Type) tensor.Type {
	if b.BitsPerValue() < a.BitsPerValue() {
		return b
	}
	return a
}

// higher returns the higher-precision of a and b.
func higher(a, b tensor.Type) tensor.Type {
	if b.BitsPerValue() > a.BitsPerValue() {
		return b
	}
	return a
}
