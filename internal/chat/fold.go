package chat

import (
	"errors"
	"time"
)

// Constant folding, as jinja2 does it when it compiles a template (its
// optimizer, and the code generator for {{ }}): every expression that can
// be evaluated without the template's variables is evaluated once, and
// replaced by its value when that value is plain data ("has a safe repr":
// None, bool, int, float, str, range, and lists, tuples and dicts of
// those). A {{ }} whose expression is constant becomes text, whatever its
// value. This matters beyond speed: at compile time jinja2 evaluates slices
// through the sandbox's getitem, so slicing something that is not a
// sequence gives Undefined there but raises TypeError at run time.

// errNotConst aborts a compile-time evaluation that needs run-time data.
var errNotConst = errors.New("not a constant")

// contextFilters take the template context; jinja2 never folds them.
var contextFilters = map[string]bool{"map": true, "select": true, "reject": true, "selectattr": true, "rejectattr": true}

type folder struct{ s *state }

// Folding is bounded: values larger than foldMaxLen, and anything after
// foldTimeout of compile-time evaluation, are left to run time (where
// the rendering's own limits apply).
const (
	foldMaxLen  = 1 << 20
	foldTimeout = 250 * time.Millisecond
)

func foldConstants(body []stmt) []stmt {
	s := &state{constMode: true, limit: foldMaxLen, start: time.Now()}
	s.deadline = s.start.Add(foldTimeout)
	f := &folder{s: s}
	return f.stmts(body)
}

// eval evaluates e at compile time; ok is false if it is not constant or
// fails (then it is left to run time, where it fails again).
func (f *folder) eval(e expr) (v V, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	if f.s.checkTime() != nil {
		return vUndef, false
	}
	v, err := f.s.eval(e, nil)
	return v, err == nil
}

func safeRepr(v V) bool {
	switch v.k {
	case kNone, kBool, kInt, kFloat, kStr, kRange:
		return true
	case kList, kTuple:
		for _, it := range v.items() {
			if !safeRepr(it) {
				return false
			}
		}
		return true
	case kDict:
		for _, e := range v.AsDict().ents {
			if !safeRepr(e.k) || !safeRepr(e.v) {
				return false
			}
		}
		return true
	}
	return false
}

func (f *folder) stmts(body []stmt) []stmt {
	for i, st := range body {
		body[i] = f.stmt(st)
	}
	return body
}

func (f *folder) stmt(st stmt) stmt {
	switch st := st.(type) {
	case *sOutput:
		st.e = f.expr(st.e)
		if v, ok := f.eval(st.e); ok {
			if text := reprMax(v, foldMaxLen); v.k == kUndef || len(text) <= foldMaxLen {
				return &sData{f.s.str(v)}
			}
		}
	case *sIf:
		for i := range st.conds {
			st.conds[i] = f.expr(st.conds[i])
			st.bodies[i] = f.stmts(st.bodies[i])
		}
		st.els = f.stmts(st.els)
	case *sFor:
		st.iter = f.expr(st.iter)
		st.filter = f.expr(st.filter)
		st.body = f.stmts(st.body)
		st.els = f.stmts(st.els)
	case *sSet:
		st.value = f.expr(st.value)
	case *sSetBlock:
		f.filterArgs(st.filters)
		st.body = f.stmts(st.body)
	case *sFilterBlock:
		f.filterArgs(st.filters)
		st.body = f.stmts(st.body)
	case *sMacro:
		for i := range st.defaults {
			st.defaults[i] = f.expr(st.defaults[i])
		}
		st.body = f.stmts(st.body)
	case *sCallBlock:
		f.callArgs(st.call)
		st.body = f.stmts(st.body)
	case *sWith:
		for i := range st.vals {
			st.vals[i] = f.expr(st.vals[i])
		}
		st.body = f.stmts(st.body)
	case *sGeneration:
		st.body = f.stmts(st.body)
	}
	return st
}

func (f *folder) filterArgs(fs []*eFilter) {
	for _, x := range fs {
		f.exprs(x.args)
		f.exprs(x.kwVals)
	}
}

func (f *folder) callArgs(c *eCall) {
	f.exprs(c.args)
	f.exprs(c.kwVals)
}

func (f *folder) exprs(es []expr) {
	for i := range es {
		es[i] = f.expr(es[i])
	}
}

// expr folds e's subexpressions, then e.
func (f *folder) expr(e expr) expr {
	switch x := e.(type) {
	case nil, *eConst, *eName:
		return e
	case *eList:
		f.exprs(x.items)
	case *eDict:
		f.exprs(x.keys)
		f.exprs(x.vals)
	case *eGetattr:
		x.obj = f.expr(x.obj)
	case *eGetitem:
		x.obj, x.key = f.expr(x.obj), f.expr(x.key)
	case *eSlice:
		x.obj, x.start, x.stop, x.step = f.expr(x.obj), f.expr(x.start), f.expr(x.stop), f.expr(x.step)
	case *eCall:
		// a call is never constant; obj.method stays as it is for the
		// evaluator's method-call path
		if ga, ok := x.fn.(*eGetattr); ok {
			ga.obj = f.expr(ga.obj)
		}
		f.callArgs(x)
		return e
	case *eFilter:
		x.arg = f.expr(x.arg)
		f.exprs(x.args)
		f.exprs(x.kwVals)
	case *eTest:
		x.arg = f.expr(x.arg)
		f.exprs(x.args)
		f.exprs(x.kwVals)
	case *eNot:
		x.x = f.expr(x.x)
	case *eNeg:
		x.x = f.expr(x.x)
	case *ePos:
		x.x = f.expr(x.x)
	case *eAnd:
		x.l, x.r = f.expr(x.l), f.expr(x.r)
	case *eOr:
		x.l, x.r = f.expr(x.l), f.expr(x.r)
	case *eBin:
		x.l, x.r = f.expr(x.l), f.expr(x.r)
	case *eConcat:
		f.exprs(x.items)
	case *eCompare:
		x.first = f.expr(x.first)
		f.exprs(x.rest)
	case *eCond:
		x.test, x.a, x.b = f.expr(x.test), f.expr(x.a), f.expr(x.b)
	}
	if v, ok := f.eval(e); ok && safeRepr(v) {
		return &eConst{v}
	}
	return e
}
