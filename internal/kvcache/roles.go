package kvcache

import (
	"fmt"

	"github.com/kvserve/kvserve/internal/tensor"
)

// Role is what a cached token is: part of the prompt, generated output
// (the answer), or generated reasoning (inside the model's thinking
// markers). Policies choose precision by role; a page knows the roles of
// the tokens it holds.
type Role uint8

const (
	RolePrompt Role = iota
	RoleGenerated
	RoleReasoning
	NumRoles
)

var roleNames = [NumRoles]string{"prompt", "generated", "reasoning"}

func (r Role) String() string {
	if r < NumRoles {
		return roleNames[r]
	}
	return fmt.Sprintf("role(%d)", r)
}

// ParseRole parses "prompt", "generated" or "reasoning".
func ParseRole(s string) (Role, error) {
	for i, n := range roleNames {
		if n == s {
			return Role(i), nil
		}
	}
	return 0, fmt.Errorf("unknown role %q (prompt, generated, reasoning)", s)
}

// RoleSet is a set of roles (bit r for role r).
type RoleSet uint8

// Has reports whether the set holds r.
func (s RoleSet) Has(r Role) bool { return s&(1<<r) != 0 }

// Label names the set: the role's name for one role, "mixed" for more,
// "" for none.
func (s RoleSet) Label() string {
	var name string
	for r := Role(0); r < NumRoles; r++ {
		if s.Has(r) {
			if name != "" {
				return "mixed"
			}
			name = r.String()
		}
	}
	return name
}

// SetWriteRole sets the role of the tokens stored next for seq (until it
// is set again). A new sequence's tokens are prompt tokens.
func (c *Cache) SetWriteRole(seq int, r Role) { c.wrole[seq] = r }

// SetRole changes the role of the token seq holds at pos (nothing when it
// holds none there): a token stored before its role was known, as a
// speculated token is.
func (c *Cache) SetRole(seq, pos int, r Role) {
	if rs := c.roles[seq]; pos >= 0 && pos < len(rs) {
		rs[pos] = r
	}
}

// WriteRole returns the role the next tokens of seq are stored with.
func (c *Cache) WriteRole(seq int) Role { return c.wrole[seq] }

// Roles returns the role of each position seq holds (the slice is the
// cache's: read it, do not keep it).
func (c *Cache) Roles(seq int) []Role { return c.roles[seq] }

// PageRoles returns the roles of the tokens page `index` of seq holds.
func (c *Cache) PageRoles(seq, index int) RoleSet {
	rs := c.roles[seq]
	P := c.cfg.PageTokens
	var s RoleSet
	for _, r := range rs[min(index*P, len(rs)):min((index+1)*P, len(rs))] {
		s |= 1 << r
	}
	return s
}

// setRole records the role of position pos of seq (called once per token,
// by the first layer's Store).
func (c *Cache) setRole(seq, pos int) {
	rs := c.roles[seq]
	if pos < len(rs) {
		rs[pos] = c.wrole[seq]
		return
	}
	c.roles[seq] = append(rs, c.wrole[seq])
}

// SetPageWriteTypes makes page `index` of seq, when it is allocated, take
// the given per-layer types instead of the sequence's write types (a page
// that will hold tokens of two roles takes the higher precision); index
// -1 clears it. Types are checked.
func (c *Cache) SetPageWriteTypes(seq, index int, k, v []tensor.Type) error {
	if index < 0 {
		c.pageOver[seq] = pageOverride{index: -1}
		return nil
	}
	for i, ts := range [][]tensor.Type{k, v} {
		dim := c.cfg.HeadDimK
		if i == 1 {
			dim = c.cfg.HeadDimV
		}
		if len(ts) != c.cfg.Layers {
			return fmt.Errorf("kvcache: %d layer types for %d layers", len(ts), c.cfg.Layers)
		}
		for _, t := range ts {
			if err := CheckType(t, dim); err != nil {
				return err
			}
		}
	}
	c.pageOver[seq] = pageOverride{index: index, k: append([]tensor.Type(nil), k...), v: append([]tensor.Type(nil), v...)}
	return nil
}

// pageOverride is a type for one page of a sequence, set ahead of its
// allocation.
type pageOverride struct {
	index int // -1: none
	k, v  []tensor.Type
}

// pageTypes returns the types page pi of layer l of seq is allocated in.
func (c *Cache) pageTypes(seq, l, pi int) (k, v tensor.Type) {
	if o := &c.pageOver[seq]; o.index == pi && o.k != nil {
		return o.k[l], o.v[l]
	}
	return c.WriteTypes(seq, l)
}
