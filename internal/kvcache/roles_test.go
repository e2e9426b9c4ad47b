package kvcache

import (
	"math/rand/v2"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
)

// Positions record their tokens' roles; pages report the set; truncation,
// shifts and clearing keep the record in step with the positions; a page
// override types one page ahead of its allocation.
func TestRoles(t *testing.T) {
	c := testCache(t, tensor.F16, tensor.F16, false, 1, 256, 16)
	r := rand.New(rand.NewPCG(1, 2))
	put := func(pos int, role Role) {
		c.SetWriteRole(0, role)
		for l := 0; l < 2; l++ {
			c.Store(l, 0, pos, randRow(r, 128, 1), randRow(r, 128, 1))
		}
	}
	q8 := []tensor.Type{tensor.Q8_0, tensor.Q8_0}
	if err := c.SetPageWriteTypes(0, 2, q8, q8); err != nil {
		t.Fatal(err)
	}
	for pos := 0; pos < 40; pos++ {
		role := RolePrompt
		switch {
		case pos >= 30:
			role = RoleReasoning
		case pos >= 20:
			role = RoleGenerated
		}
		put(pos, role)
	}
	for i, want := range []string{"prompt", "mixed", "reasoning"} {
		if got := c.PageRoles(0, i).Label(); got != want {
			t.Errorf("page %d: %s, want %s", i, got, want)
		}
	}
	if tk, _, _ := c.Page(PageRef{Seq: 0, Layer: 1, Index: 2}); tk != tensor.Q8_0 {
		t.Errorf("page 2 allocated as %s, want the override q8_0", tk)
	}
	if tk, _, _ := c.Page(PageRef{Seq: 0, Layer: 1, Index: 1}); tk != tensor.F16 {
		t.Errorf("page 1 allocated as %s", tk)
	}
	if ps := c.Pages(0); ps[len(ps)-1].Roles.Label() != "reasoning" || ps[0].Roles.Label() != "prompt" {
		t.Error("PageInfo roles")
	}
	c.Truncate(0, 25)
	if len(c.Roles(0)) != 25 || c.PageRoles(0, 1).Label() != "mixed" {
		t.Errorf("after truncation: %d roles, page 1 %s", len(c.Roles(0)), c.PageRoles(0, 1).Label())
	}
	if err := c.Shift(0, 4, 16, func(int, []float32, int) {}); err != nil {
		t.Fatal(err)
	}
	rs := c.Roles(0)
	if len(rs) != 9 || rs[3] != RolePrompt || rs[4] != RoleGenerated || rs[8] != RoleGenerated {
		t.Errorf("after a shift: %v", rs)
	}
	c.Clear(0)
	if len(c.Roles(0)) != 0 || c.WriteRole(0) != RolePrompt {
		t.Error("Clear kept roles")
	}
	put(0, RolePrompt)
	if tk, _, _ := c.Page(PageRef{Seq: 0, Layer: 0, Index: 0}); tk != tensor.F16 {
		t.Errorf("after Clear the page override still applies: %s", tk)
	}
	if _, err := ParseRole("thinking"); err == nil {
		t.Error("unknown role accepted")
	}
}
