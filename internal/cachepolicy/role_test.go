package cachepolicy

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/tensor"
)

func typed(k, v tensor.Type) RoleRule { return RoleRule{K: k, V: v, HasK: true, HasV: true} }

// fillRoles stores n tokens of seq, the role of position i given by role(i).
func fillRoles(c *kvcache.Cache, seq, from, n int, role func(int) kvcache.Role, r *rand.Rand) {
	for pos := from; pos < from+n; pos++ {
		c.SetWriteRole(seq, role(pos))
		store(c, seq, pos, r)
	}
}

// The stricter rule wins: a page's target is the lowest precision any
// rule asks for, and no rule steps a page back up. Each case is a row of
// the table in docs/cache.md.
func TestStricterWins(t *testing.T) {
	k, v := DefaultLadders()
	cases := []struct {
		name  string
		p     Policy
		roles func(int) kvcache.Role
		page  int // page of the sequence (64 tokens each, 512 tokens)
		want  tensor.Type
	}{
		{"prompt rule alone", Policy{Roles: [3]RoleRule{typed(tensor.Q8_0, tensor.Q8_0)}}, promptOnly, 0, tensor.Q8_0},
		{"role stricter than age", Policy{Hot: 64, Warm: 10000, Roles: [3]RoleRule{typed(tensor.Q4_0, tensor.Q4_0)}}, promptOnly, 2, tensor.Q4_0},
		{"age stricter than role", Policy{Hot: 64, Warm: 0, Roles: [3]RoleRule{typed(tensor.Q8_0, tensor.Q8_0)}}, promptOnly, 2, tensor.Q4_0},
		{"hot page, role still applies", Policy{Hot: 64, Roles: [3]RoleRule{typed(tensor.Q8_0, tensor.Q8_0)}}, promptOnly, 7, tensor.Q8_0},
		{"sink page, role still applies", Policy{Hot: 64, Sink: 64, Warm: 0, Roles: [3]RoleRule{typed(tensor.Q8_0, tensor.Q8_0)}}, promptOnly, 0, tensor.Q8_0},
		{"length stricter than role", Policy{LengthV: []LengthStep{{0, tensor.Q4_0}}, Roles: [3]RoleRule{typed(tensor.Q8_0, tensor.Q8_0)}}, promptOnly, 3, tensor.Q4_0},
		{"generated rule only: prompt pages untouched", Policy{Roles: [3]RoleRule{{}, typed(tensor.Q8_0, tensor.Q8_0)}}, halfGenerated, 1, tensor.F16},
		{"generated rule only: generated pages", Policy{Roles: [3]RoleRule{{}, typed(tensor.Q8_0, tensor.Q8_0)}}, halfGenerated, 6, tensor.Q8_0},
		{"mixed page: the higher precision", Policy{Roles: [3]RoleRule{typed(tensor.Q4_0, tensor.Q4_0), typed(tensor.Q8_0, tensor.Q8_0)}}, mixedAt100, 1, tensor.Q8_0},
		{"mixed page, one role without rule: none", Policy{Roles: [3]RoleRule{typed(tensor.Q4_0, tensor.Q4_0)}}, mixedAt100, 1, tensor.F16},
		{"reasoning before the answer: as generated", Policy{Roles: [3]RoleRule{{}, typed(tensor.Q8_0, tensor.Q8_0), {K: tensor.Q4_0, V: tensor.Q4_0, HasK: true, HasV: true, After: AfterAnswer}}}, reasoningThen, 2, tensor.Q8_0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			p.LadderK, p.LadderV = k, v
			if err := p.Validate(8, 64, 64); err != nil {
				t.Fatal(err)
			}
			c := newCache(t, 1, 1024, 64)
			fillRoles(c, 0, 0, 512, tc.roles, rand.New(rand.NewPCG(1, 1)))
			var st Stats
			if err := apply(&p, c, Input{Seqs: []SeqState{{Seq: 0, Active: true}}}, &st); err != nil {
				t.Fatal(err)
			}
			got, _, _ := c.Page(kvcache.PageRef{Seq: 0, Layer: 1, V: true, Index: tc.page})
			if got != tc.want {
				t.Errorf("V page %d is %s, want %s", tc.page, got, tc.want)
			}
			// Planning again changes nothing: rules never step a page up,
			// and a page at its target is not converted again.
			pl, _ := p.Plan(c, Input{Seqs: []SeqState{{Seq: 0, Active: true}}})
			if len(pl.Steps) != 0 {
				t.Errorf("a second plan converts %d pages", len(pl.Steps))
			}
		})
	}
}

func promptOnly(int) kvcache.Role { return kvcache.RolePrompt }
func halfGenerated(i int) kvcache.Role {
	if i >= 256 {
		return kvcache.RoleGenerated
	}
	return kvcache.RolePrompt
}
func mixedAt100(i int) kvcache.Role {
	if i >= 100 {
		return kvcache.RoleGenerated
	}
	return kvcache.RolePrompt
}
func reasoningThen(i int) kvcache.Role {
	if i >= 64 {
		return kvcache.RoleReasoning
	}
	return kvcache.RolePrompt
}

// Reasoning pages step down once the answer starts (after: answer), and
// new pages are written in the role's type; the page where the prompt
// ends and generation begins is written at the higher precision.
func TestReasoningAfterAnswer(t *testing.T) {
	k, v := DefaultLadders()
	p := &Policy{LadderK: k, LadderV: v, Roles: [3]RoleRule{
		typed(tensor.Q8_0, tensor.Q8_0), typed(tensor.F16, tensor.F16),
		{K: tensor.Q4_0, V: tensor.Q4_0, HasK: true, HasV: true, After: AfterAnswer}}}
	if err := p.Validate(8, 64, 64); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(2, 2))
	c := newCache(t, 1, 2048, 64)
	var st Stats
	// The prompt: 100 tokens, the page holding positions 64-127 will also
	// hold generated ones.
	in := Input{Seqs: []SeqState{{Seq: 0, Active: true, Adding: 100, Next: 1 << kvcache.RolePrompt,
		MixedPage: 1, MixedRoles: 1<<kvcache.RolePrompt | 1<<kvcache.RoleReasoning}}}
	apply(p, c, in, &st)
	fillRoles(c, 0, 0, 100, promptOnly, r)
	typ := func(i int) tensor.Type { t, _, _ := c.Page(kvcache.PageRef{Seq: 0, Layer: 0, Index: i}); return t }
	if typ(0) != tensor.Q8_0 || typ(1) != tensor.F16 {
		t.Fatalf("prompt pages %s, %s; want q8_0 and (mixed with reasoning) f16", typ(0), typ(1))
	}
	// Reasoning: 300 tokens, written as generated (f16) before the answer.
	for pos := 100; pos < 400; pos++ {
		apply(p, c, Input{Seqs: []SeqState{{Seq: 0, Active: true, Adding: 1, Next: 1 << kvcache.RoleReasoning}}}, &st)
		fillRoles(c, 0, pos, 1, func(int) kvcache.Role { return kvcache.RoleReasoning }, r)
	}
	before := c.Bytes()
	for i := 1; i < 7; i++ {
		if typ(i) != tensor.F16 {
			t.Fatalf("before the answer, reasoning page %d is %s", i, typ(i))
		}
	}
	// The answer starts: pure reasoning pages step down, the page shared
	// with the answer keeps f16, the prompt's page shared with reasoning
	// takes the higher of q8_0 and q4_0.
	apply(p, c, Input{Seqs: []SeqState{{Seq: 0, Active: true, Adding: 1, Next: 1 << kvcache.RoleGenerated, Answer: true}}}, &st)
	fillRoles(c, 0, 400, 20, func(int) kvcache.Role { return kvcache.RoleGenerated }, r)
	apply(p, c, Input{Seqs: []SeqState{{Seq: 0, Active: true, Next: 1 << kvcache.RoleGenerated, Answer: true}}}, &st)
	for i, want := range []tensor.Type{tensor.Q8_0, tensor.Q8_0, tensor.Q4_0, tensor.Q4_0, tensor.Q4_0, tensor.Q4_0, tensor.F16} {
		if typ(i) != want {
			t.Errorf("after the answer started, page %d (%s) is %s, want %s", i, c.PageRoles(0, i).Label(), typ(i), want)
		}
	}
	if c.Bytes() >= before || st.ByRole == 0 {
		t.Errorf("bytes %d -> %d, %d role conversions", before, c.Bytes(), st.ByRole)
	}
}

// A plan converts nothing, and the budget's simulation is exact: carried
// out, the plan leaves the cache at BytesAfter, under the budget with the
// next step's pages.
func TestPlanIsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	k, v := DefaultLadders()
	c := newCache(t, 2, 4096, 64)
	p := &Policy{LadderK: k, LadderV: v, Hot: 128, Warm: 256, Sink: 64}
	fillRoles(c, 0, 0, 1500, promptOnly, r)
	fillRoles(c, 1, 0, 900, promptOnly, r)
	p.Budget = c.Bytes() * 35 / 100
	before, pages := c.Bytes(), c.Pages(0)
	in := Input{Seqs: []SeqState{{Seq: 0, Active: true, Adding: 1}, {Seq: 1, Active: true, Adding: 30}}, Order: []int{1, 0}}
	pl, err := p.Plan(c, in)
	if err != nil {
		t.Fatal(err)
	}
	if c.Bytes() != before || len(c.Pages(0)) != len(pages) || c.Pages(0)[3].Type != pages[3].Type {
		t.Fatal("Plan changed the cache")
	}
	seen := map[kvcache.PageRef]bool{}
	reasons := map[string]int{}
	for _, s := range pl.Steps {
		if seen[s.PageRef] {
			t.Fatalf("page %+v planned twice", s.PageRef)
		}
		seen[s.PageRef] = true
		reasons[s.Reason]++
	}
	if reasons["age"] == 0 || reasons["budget"] == 0 {
		t.Fatalf("reasons %v, want age and budget steps", reasons)
	}
	var st Stats
	apply(p, c, in, &st)
	if c.Bytes() != pl.BytesAfter {
		t.Errorf("carried out: %d bytes, plan said %d", c.Bytes(), pl.BytesAfter)
	}
	if c.Bytes()+pl.Need > p.Budget {
		t.Errorf("%d + %d needed > budget %d", c.Bytes(), pl.Need, p.Budget)
	}
	// Exactly enough: undoing the last budget step would not fit.
	last := pl.Steps[len(pl.Steps)-1]
	if last.Reason == "budget" && c.Bytes()+pl.Need-int64(last.BytesAfter)+int64(last.BytesBefore) <= p.Budget {
		t.Errorf("the budget demoted more than it needed")
	}
	if st.ByAge+st.ByBudget != int64(len(pl.Steps)) {
		t.Errorf("stats %+v for %d steps", st, len(pl.Steps))
	}
}

// Role rules through the schema: JSON and flags give the same policy, and
// every invalid field is an error naming it.
func TestRoleSchema(t *testing.T) {
	var u Update
	body := `{"prompt": {"type_k": "q8_0", "type_v": "q8_0"}, "generated": {"type_k": "f16", "type_v": "f16"}, "reasoning": {"type_k": "q4_0", "type_v": "q4_0", "after": "answer", "drop": true}}`
	if err := json.Unmarshal([]byte(body), &u); err != nil {
		t.Fatal(err)
	}
	p, err := u.Apply(nil, 8, 64, 64)
	if err != nil || p == nil {
		t.Fatal(p, err)
	}
	r := p.Roles[kvcache.RoleReasoning]
	if p.Roles[kvcache.RolePrompt] != typed(tensor.Q8_0, tensor.Q8_0) || r.K != tensor.Q4_0 || r.After != AfterAnswer || !r.Drop || !p.DropReasoning() {
		t.Fatalf("policy %+v", p.Roles)
	}
	f := Flags{LadderK: "f16,q8_0,q5_0", LadderV: "f16,q8_0,q4_0", Warm: DefaultWarm, Prompt: "q8_0", Generated: "f16/f16", Reasoning: "q4_0", ReasoningAfter: "answer", ReasoningDrop: true}
	fp, err := f.Policy()
	if err != nil {
		t.Fatal(err)
	}
	if fp.Roles != p.Roles {
		t.Errorf("flags give %+v, JSON %+v", fp.Roles, p.Roles)
	}
	back, _ := json.Marshal(p.JSON())
	if !strings.Contains(string(back), `"reasoning":{"after":"answer","drop":true,"type_k":"q4_0","type_v":"q4_0"}`) {
		t.Errorf("JSON %s", back)
	}
	for _, c := range []struct{ body, field string }{
		{`{"prompt": {"type_k": "q9_0"}}`, "prompt.type_k"},
		{`{"generated": {"type_v": "nope"}}`, "generated.type_v"},
		{`{"reasoning": {"after": "later"}}`, "reasoning.after"},
		{`{"prompt": {"type_k": "q8_0", "after": "answer"}}`, "prompt.after"},
		{`{"generated": {"drop": true}}`, "generated.drop"},
	} {
		var u Update
		if err := json.Unmarshal([]byte(c.body), &u); err != nil {
			t.Fatal(err)
		}
		_, err := u.Apply(nil, 8, 64, 64)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: %v, want an error naming %s", c.body, err, c.field)
		}
	}
	// A type whose block does not divide the head dimension.
	u = Update{LadderK: []string{"f16"}, LadderV: []string{"f16"}, Prompt: &RoleUpdate{TypeK: ptr("q8_0")}}
	if _, err := u.Apply(nil, 8, 48, 48); err == nil || !strings.Contains(err.Error(), "prompt.type_k") {
		t.Errorf("q8_0 for head dim 48: %v", err)
	}
	// Flags name the flag.
	f = Flags{LadderK: "f16", LadderV: "f16", Prompt: "q9"}
	if _, err := f.Policy(); err == nil || !strings.Contains(err.Error(), "--cache-type-prompt") {
		t.Errorf("bad --cache-type-prompt: %v", err)
	}
	f = Flags{LadderK: "f16", LadderV: "f16", Reasoning: "q4_0", ReasoningAfter: "soon"}
	if _, err := f.Policy(); err == nil || !strings.Contains(err.Error(), "--cache-reasoning-after") {
		t.Errorf("bad --cache-reasoning-after: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }
