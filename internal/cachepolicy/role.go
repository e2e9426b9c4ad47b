package cachepolicy

import (
	"fmt"

	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/tensor"
)

// AfterAnswer is the RoleRule.After that holds a reasoning rule back
// until the answer starts (until then reasoning is held as generated
// output is: the model still reads its reasoning while it reasons).
const AfterAnswer = "answer"

// RoleRule is the precision of the pages holding one role's tokens.
type RoleRule struct {
	K, V       tensor.Type // the role's types, when HasK / HasV
	HasK, HasV bool
	// After: "" applies the rule as the tokens are written; AfterAnswer
	// (reasoning only) once the answer starts.
	After string
	// Drop (reasoning only): when the request ends, the slot's cache is
	// cut before its reasoning (for templates that do not show the
	// reasoning of earlier turns: the next turn could not reuse it).
	Drop bool
}

// On reports whether the rule says anything.
func (r RoleRule) On() bool { return r.HasK || r.HasV || r.Drop }

func (r RoleRule) validate(role kvcache.Role, headDimK, headDimV int) error {
	name := role.String()
	for _, s := range []struct {
		field string
		t     tensor.Type
		has   bool
		dim   int
	}{{"type_k", r.K, r.HasK, headDimK}, {"type_v", r.V, r.HasV, headDimV}} {
		if s.has {
			if err := kvcache.CheckType(s.t, s.dim); err != nil {
				return &FieldError{Field: name + "." + s.field, Err: err}
			}
		}
	}
	switch r.After {
	case "":
	case AfterAnswer:
		if role != kvcache.RoleReasoning {
			return &FieldError{Field: name + ".after", Err: fmt.Errorf(`only reasoning pages wait for the answer ("after": %q)`, AfterAnswer)}
		}
	default:
		return &FieldError{Field: name + ".after", Err: fmt.Errorf(`want %q or nothing, not %q`, AfterAnswer, r.After)}
	}
	if r.Drop && role != kvcache.RoleReasoning {
		return &FieldError{Field: name + ".drop", Err: fmt.Errorf("only reasoning can be dropped")}
	}
	return nil
}

// DropReasoning reports whether reasoning is dropped when a request ends.
func (p *Policy) DropReasoning() bool { return p != nil && p.Roles[kvcache.RoleReasoning].Drop }

// roleRule is precision by the role of a page's tokens. A page that holds
// tokens of several roles takes the highest precision among them (a role
// without a rule asks for none), so a page's mixing never costs the more
// precise role its precision.
type roleRule struct{ p *Policy }

func (roleRule) Name() string { return "role" }

func (r roleRule) Target(pg *Page) (tensor.Type, bool) {
	return r.p.rolesType(pg.Roles, pg.V, pg.Seq.Answer)
}

func (r roleRule) Write(sq *Seq, _ int, v bool, roles kvcache.RoleSet) (tensor.Type, bool) {
	return r.p.rolesType(roles, v, sq.Answer)
}

// rolesType is the type pages holding the given roles are held at: the
// highest precision of the roles' types; no opinion when the set is empty
// or one of its roles has no type for the side.
func (p *Policy) rolesType(roles kvcache.RoleSet, v, answer bool) (tensor.Type, bool) {
	var t tensor.Type
	any := false
	for role := kvcache.Role(0); role < kvcache.NumRoles; role++ {
		if !roles.Has(role) {
			continue
		}
		rt, ok := p.roleType(role, v, answer)
		if !ok {
			return 0, false
		}
		if !any {
			t, any = rt, true
		} else {
			t = higher(t, rt)
		}
	}
	return t, any
}

// roleType is the type one role's pages are held at now.
func (p *Policy) roleType(role kvcache.Role, v, answer bool) (tensor.Type, bool) {
	r := p.Roles[role]
	if r.After == AfterAnswer && !answer {
		if role == kvcache.RoleReasoning {
			return p.roleType(kvcache.RoleGenerated, v, answer)
		}
		return 0, false
	}
	if v {
		return r.V, r.HasV
	}
	return r.K, r.HasK
}
