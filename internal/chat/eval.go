package chat

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// This file evaluates the syntax tree directly: statements write to the
// current output buffer, expressions produce values with jinja2's Python
// semantics, and scoping follows jinja2 (a for loop's body, a macro, a call
// block's body, a with block and the bodies of set and filter blocks each
// get their own scope; if does not; every loop iteration starts fresh).

// state is one rendering: its output, limits and counters.
type state struct {
	t         *Template
	out       *strings.Builder
	produced  int64
	ticks     int64
	depth     int
	constMode bool  // evaluating constants at compile time (fold.go)
	work      int64 // cost of value operations, checked against the deadline
	nextWork  int64
	start     time.Time
	deadline  time.Time
	limit     int64
}

const (
	maxTicks      = 10_000_000
	maxMacroDepth = 128
	maxRange      = 100_000 // jinja2's sandbox MAX_RANGE
)

// scope holds the names assigned at one level; lookups walk to the parent.
type scope struct {
	parent *scope
	names  []string
	vals   []V
}

func (sc *scope) lookup(name string) (V, bool) {
	for c := sc; c != nil; c = c.parent {
		for i := range c.names {
			if c.names[i] == name {
				return c.vals[i], true
			}
		}
	}
	return vUndef, false
}

func (sc *scope) set(name string, v V) {
	for i := range sc.names {
		if sc.names[i] == name {
			sc.vals[i] = v
			return
		}
	}
	sc.names = append(sc.names, name)
	sc.vals = append(sc.vals, v)
}

func (sc *scope) reset() {
	clear(sc.vals)
	sc.names, sc.vals = sc.names[:0], sc.vals[:0]
}

// ---- limits ----

func (s *state) tick() error {
	s.ticks++
	if s.ticks > maxTicks {
		return limitErr("more than %d loop iterations", maxTicks)
	}
	if s.ticks&255 == 0 {
		return s.checkTime()
	}
	return nil
}

// spend accounts n units of work (an item copied, compared or visited) and
// checks the deadline every so often, so that one expensive operation on a
// large value cannot outlast the timeout.
func (s *state) spend(n int) error {
	s.work += int64(n)
	if s.work < s.nextWork {
		return nil
	}
	s.nextWork = s.work + 1<<16
	return s.checkTime()
}

func (s *state) checkTime() error {
	if !s.deadline.IsZero() && time.Now().After(s.deadline) {
		return limitErr("rendering took longer than %v", s.deadline.Sub(s.start))
	}
	return nil
}

func (s *state) write(str string) error {
	s.produced += int64(len(str))
	if s.produced > s.limit {
		return limitErr("template produced more than %d bytes", s.limit)
	}
	s.out.WriteString(str)
	return nil
}

func (s *state) checkSize(n int) error {
	if int64(n) > s.limit {
		return limitErr("value of %d bytes exceeds the %d-byte limit", n, s.limit)
	}
	return nil
}

// str is Python's str() for this rendering, whose size limit also bounds
// the text built.
func (s *state) str(v V) string {
	switch v.k {
	case kStr:
		return v.s
	case kUndef:
		return ""
	}
	return reprMax(v, s.limit)
}

// maxLen is the largest string (in bytes) a rendering may build.
func (s *state) maxLen() int64 {
	if s == nil || s.limit <= 0 {
		return DefaultMaxOutput
	}
	return s.limit
}

func (s *state) sizeOf(v V) error {
	switch v.k {
	case kStr:
		return s.checkSize(len(v.s))
	case kList, kTuple, kView:
		return s.checkSize(len(v.items()) * 16)
	}
	return nil
}

// capture renders body into a string instead of the output.
func (s *state) capture(body []stmt, sc *scope) (string, error) {
	saved := s.out
	var b strings.Builder
	s.out = &b
	_, err := s.exec(body, sc)
	s.out = saved
	return b.String(), err
}

// ---- statements ----

type flow uint8

const (
	flowNext flow = iota
	flowBreak
	flowContinue
)

func (s *state) exec(body []stmt, sc *scope) (flow, error) {
	for _, st := range body {
		switch st := st.(type) {
		case *sData:
			if err := s.write(st.text); err != nil {
				return 0, err
			}
		case *sOutput:
			v, err := s.eval(st.e, sc)
			if err != nil {
				return 0, err
			}
			if err := s.write(s.str(v)); err != nil {
				return 0, err
			}
		case *sIf:
			branch := st.els
			for i, c := range st.conds {
				v, err := s.eval(c, sc)
				if err != nil {
					return 0, err
				}
				if truthy(v) {
					branch = st.bodies[i]
					break
				}
			}
			if f, err := s.exec(branch, sc); err != nil || f != flowNext {
				return f, err
			}
		case *sFor:
			v, err := s.eval(st.iter, sc)
			if err != nil {
				return 0, err
			}
			if err := s.execFor(st, sc, v, 1); err != nil {
				return 0, err
			}
		case *sSet:
			if err := s.execSet(st, sc); err != nil {
				return 0, err
			}
		case *sSetBlock:
			out, err := s.capture(st.body, &scope{parent: sc})
			if err != nil {
				return 0, err
			}
			v := vStr(out)
			if v, err = s.applyFilters(st.filters, v, sc); err != nil {
				return 0, err
			}
			sc.set(st.name, v)
		case *sFilterBlock:
			out, err := s.capture(st.body, &scope{parent: sc})
			if err != nil {
				return 0, err
			}
			v, err := s.applyFilters(st.filters, vStr(out), sc)
			if err != nil {
				return 0, err
			}
			if err := s.write(s.str(v)); err != nil {
				return 0, err
			}
		case *sMacro:
			sc.set(st.name, s.macroValue(st, sc))
		case *sCallBlock:
			v, err := s.execCallBlock(st, sc)
			if err != nil {
				return 0, err
			}
			if err := s.write(s.str(v)); err != nil {
				return 0, err
			}
		case *sWith:
			inner := &scope{parent: sc}
			for i, name := range st.names {
				v, err := s.eval(st.vals[i], sc)
				if err != nil {
					return 0, err
				}
				inner.set(name, v)
			}
			if f, err := s.exec(st.body, inner); err != nil || f != flowNext {
				return f, err
			}
		case *sGeneration:
			if _, err := s.exec(st.body, &scope{parent: sc}); err != nil {
				return 0, err
			}
		case *sBreak:
			return flowBreak, nil
		case *sContinue:
			return flowContinue, nil
		default:
			return 0, fmt.Errorf("chat: internal error: unknown statement %T", st)
		}
	}
	return flowNext, nil
}

func (s *state) execSet(st *sSet, sc *scope) error {
	v, err := s.eval(st.value, sc)
	if err != nil {
		return err
	}
	if st.ns != "" {
		ns, _ := sc.lookup(st.ns)
		if ns.k != kNS {
			return &Error{Kind: "TemplateRuntimeError", Msg: "cannot assign attribute on non-namespace object"}
		}
		ns.AsNS().attrs.Set(st.attr, v)
		return nil
	}
	if !st.tuple {
		sc.set(st.targets[0], v)
		return nil
	}
	items, err := unpack(v, len(st.targets))
	if err != nil {
		return err
	}
	for i, t := range st.targets {
		sc.set(t, items[i])
	}
	return nil
}

// unpack is Python's tuple unpacking into n names.
func unpack(v V, n int) ([]V, error) {
	if v.k == kUndef {
		return nil, undefErrOf(v)
	}
	items, err := iterate(v)
	if err != nil {
		return nil, typeErr("cannot unpack non-iterable %s object", pyType(v))
	}
	if len(items) > n {
		return nil, &Error{Kind: "ValueError", Msg: fmt.Sprintf("too many values to unpack (expected %d)", n)}
	}
	if len(items) < n {
		return nil, &Error{Kind: "ValueError", Msg: fmt.Sprintf("not enough values to unpack (expected %d, got %d)", n, len(items))}
	}
	return items, nil
}

func bindTargets(sc *scope, st *sFor, x V) error {
	if !st.tuple {
		sc.set(st.targets[0], x)
		return nil
	}
	items, err := unpack(x, len(st.targets))
	if err != nil {
		return err
	}
	for i, t := range st.targets {
		sc.set(t, items[i])
	}
	return nil
}

// loopCtx is the loop variable of one for loop.
type loopCtx struct {
	items   []V
	i       int
	depth   int
	changed []V // last arguments of loop.changed
	seen    bool
	st      *sFor  // recursive loops: the loop to run again
	sc      *scope // and the scope it runs in
}

func (s *state) execFor(st *sFor, sc *scope, iter V, depth int) error {
	if iter.k == kUndef {
		iter = vList(nil) // jinja2's Undefined iterates as empty
	}
	items, err := iterate(iter)
	if err != nil {
		return err
	}
	if st.filter != nil {
		fs := &scope{parent: sc}
		var kept []V
		for _, x := range items {
			if err := s.tick(); err != nil {
				return err
			}
			fs.reset()
			if err := bindTargets(fs, st, x); err != nil {
				return err
			}
			ok, err := s.eval(st.filter, fs)
			if err != nil {
				return err
			}
			if truthy(ok) {
				kept = append(kept, x)
			}
		}
		items = kept
	}
	if len(items) == 0 {
		if st.els != nil {
			_, err := s.exec(st.els, &scope{parent: sc})
			return err
		}
		return nil
	}
	loop := &loopCtx{items: items, depth: depth}
	if st.recursive {
		loop.st, loop.sc = st, sc
	}
	lv := V{k: kLoop, p: loop}
	body := &scope{parent: sc}
	// jinja2 runs the else block unless some iteration reached the end of
	// the body (so also after a break or continue in every iteration).
	completed := false
	for i, x := range items {
		if err := s.tick(); err != nil {
			return err
		}
		loop.i = i
		if st.freshScope {
			body = &scope{parent: sc}
		} else {
			body.reset()
		}
		body.set("loop", lv)
		if err := bindTargets(body, st, x); err != nil {
			return err
		}
		f, err := s.exec(st.body, body)
		if err != nil {
			return err
		}
		if f == flowBreak {
			break
		}
		completed = completed || f == flowNext
	}
	if !completed && st.els != nil {
		_, err := s.exec(st.els, &scope{parent: sc})
		return err
	}
	return nil
}

func (s *state) loopAttr(l *loopCtx, name string) V {
	n := len(l.items)
	switch name {
	case "index":
		return vInt(int64(l.i + 1))
	case "index0":
		return vInt(int64(l.i))
	case "revindex":
		return vInt(int64(n - l.i))
	case "revindex0":
		return vInt(int64(n - l.i - 1))
	case "first":
		return vBool(l.i == 0)
	case "last":
		return vBool(l.i == n-1)
	case "length":
		return vInt(int64(n))
	case "depth":
		return vInt(int64(l.depth))
	case "depth0":
		return vInt(int64(l.depth - 1))
	case "previtem":
		if l.i > 0 {
			return l.items[l.i-1]
		}
		return undefined("there is no previous item")
	case "nextitem":
		if l.i < n-1 {
			return l.items[l.i+1]
		}
		return undefined("there is no next item")
	case "cycle":
		return vFunc("loop.cycle", func(s *state, args []V, _ []kwarg) (V, error) {
			if len(args) == 0 {
				return vUndef, typeErr("no items for cycling given")
			}
			return args[l.i%len(args)], nil
		})
	case "changed":
		return vFunc("loop.changed", func(s *state, args []V, _ []kwarg) (V, error) {
			if l.seen && pyEq(vTuple(args), vTuple(l.changed)) {
				return vFalse, nil
			}
			l.seen, l.changed = true, append([]V(nil), args...)
			return vTrue, nil
		})
	}
	return undefined(fmt.Sprintf("'LoopContext object' has no attribute '%s'", name))
}

// callLoop runs a recursive loop again over a new iterable: loop(x).
func (s *state) callLoop(l *loopCtx, args []V) (V, error) {
	if l.st == nil {
		return vUndef, typeErr("'LoopContext' object is not callable (the loop is not recursive)")
	}
	if len(args) != 1 {
		return vUndef, typeErr("loop() takes exactly one argument")
	}
	s.depth++
	defer func() { s.depth-- }()
	if s.depth > maxMacroDepth {
		return vUndef, limitErr("recursion deeper than %d", maxMacroDepth)
	}
	saved := s.out
	var b strings.Builder
	s.out = &b
	err := s.execFor(l.st, l.sc, args[0], l.depth+1)
	s.out = saved
	return vStr(b.String()), err
}

// ---- macros and call blocks ----

func (s *state) macroValue(m *sMacro, closure *scope) V {
	return V{k: kFunc, p: &Func{name: m.name, macro: true, fn: func(s *state, args []V, kw []kwarg) (V, error) {
		return s.callMacro(m, closure, args, kw)
	}}}
}

func (s *state) callMacro(m *sMacro, closure *scope, args []V, kw []kwarg) (V, error) {
	s.depth++
	defer func() { s.depth-- }()
	if s.depth > maxMacroDepth {
		return vUndef, limitErr("macro recursion deeper than %d", maxMacroDepth)
	}
	s.ticks++
	if err := s.checkTime(); err != nil {
		return vUndef, err
	}
	if len(args) > len(m.params) && !m.usesVarargs {
		return vUndef, typeErr("macro '%s' takes not more than %d argument(s)", m.name, len(m.params))
	}
	sc := &scope{parent: closure}
	used := make([]bool, len(kw))
	for i, p := range m.params {
		ki := -1
		for j := range kw {
			if kw[j].name == p {
				ki = j
				break
			}
		}
		switch {
		case i < len(args):
			if ki >= 0 {
				return vUndef, typeErr("macro '%s' got multiple values for argument '%s'", m.name, p)
			}
			sc.set(p, args[i])
		case ki >= 0:
			used[ki] = true
			sc.set(p, kw[ki].v)
		case m.defaults[i] != nil:
			v, err := s.eval(m.defaults[i], sc)
			if err != nil {
				return vUndef, err
			}
			sc.set(p, v)
		default:
			sc.set(p, undefined(fmt.Sprintf("parameter '%s' was not provided", p)))
		}
	}
	if m.usesCaller {
		// caller is a parameter of the macro: it never comes from an
		// enclosing macro
		sc.set("caller", undefined("No caller defined"))
	}
	var extra *Dict
	for j, a := range kw {
		if used[j] {
			continue
		}
		switch {
		case a.name == "caller":
			// jinja2 rejects a call block calling a macro that never refers
			// to caller; this package accepts it (kept from earlier versions).
			sc.set("caller", a.v)
		case m.usesKwargs:
			if extra == nil {
				extra = newDict(len(kw))
			}
			extra.Set(a.name, a.v)
		default:
			return vUndef, typeErr("macro '%s' takes no keyword argument '%s'", m.name, a.name)
		}
	}
	if m.usesVarargs {
		var rest []V
		if len(args) > len(m.params) {
			rest = append(rest, args[len(m.params):]...)
		}
		sc.set("varargs", vTuple(rest))
	}
	if m.usesKwargs {
		if extra == nil {
			extra = newDict(0)
		}
		sc.set("kwargs", vDict(extra))
	}
	out, err := s.capture(m.body, sc)
	if err != nil {
		return vUndef, err
	}
	return vStr(out), nil
}

func (s *state) execCallBlock(st *sCallBlock, sc *scope) (V, error) {
	caller := V{k: kFunc, p: &Func{name: "caller", macro: true, fn: func(s *state, args []V, kw []kwarg) (V, error) {
		s.depth++
		defer func() { s.depth-- }()
		if s.depth > maxMacroDepth {
			return vUndef, limitErr("macro recursion deeper than %d", maxMacroDepth)
		}
		s.ticks++
		if err := s.checkTime(); err != nil {
			return vUndef, err
		}
		if len(args) > len(st.params) {
			return vUndef, typeErr("macro 'caller' takes not more than %d argument(s)", len(st.params))
		}
		inner := &scope{parent: sc}
		for i, p := range st.params {
			v := undefined(fmt.Sprintf("parameter '%s' was not provided", p))
			if i < len(args) {
				v = args[i]
			}
			for _, a := range kw {
				if a.name == p {
					v = a.v
				}
			}
			inner.set(p, v)
		}
		out, err := s.capture(st.body, inner)
		return vStr(out), err
	}}}
	fn, err := s.eval(st.call.fn, sc)
	if err != nil {
		return vUndef, err
	}
	args, kw, err := s.evalArgs(st.call, sc)
	if err != nil {
		return vUndef, err
	}
	return s.callValue(fn, args, append(kw, kwarg{"caller", caller}))
}

// ---- expressions ----

func (s *state) eval(e expr, sc *scope) (V, error) {
	switch e := e.(type) {
	case *eConst:
		return e.v, nil
	case *eName:
		if s.constMode {
			return vUndef, errNotConst
		}
		if v, ok := sc.lookup(e.name); ok {
			return v, nil
		}
		if g, ok := globals[e.name]; ok {
			return g, nil
		}
		return undefined(fmt.Sprintf("'%s' is undefined", e.name)), nil
	case *eGetattr:
		obj, err := s.eval(e.obj, sc)
		if err != nil {
			return vUndef, err
		}
		return s.getattr(obj, e.attr)
	case *eGetitem:
		obj, err := s.eval(e.obj, sc)
		if err != nil {
			return vUndef, err
		}
		key, err := s.eval(e.key, sc)
		if err != nil {
			return vUndef, err
		}
		return s.getitem(obj, key)
	case *eSlice:
		var vs [4]V
		for i, x := range [4]expr{e.obj, e.start, e.stop, e.step} {
			if x == nil {
				vs[i] = vNone
				continue
			}
			v, err := s.eval(x, sc)
			if err != nil {
				return vUndef, err
			}
			vs[i] = v
		}
		if err := s.spend(cost(vs[0])); err != nil {
			return vUndef, err
		}
		v, err := slice(vs[0], vs[1], vs[2], vs[3])
		var ce *Error
		if s.constMode && errors.As(err, &ce) && ce.Kind == "TypeError" {
			// at compile time jinja2 slices through the sandbox's getitem
			return undefined(fmt.Sprintf("'%s object' has no element slice", pyType(vs[0]))), nil
		}
		return v, err
	case *eCall:
		if s.constMode {
			return vUndef, errNotConst
		}
		return s.evalCall(e, sc)
	case *eFilter:
		if s.constMode && contextFilters[e.name] {
			return vUndef, errNotConst
		}
		v, err := s.eval(e.arg, sc)
		if err != nil {
			return vUndef, err
		}
		return s.applyFilter(e, v, sc)
	case *eTest:
		v, err := s.eval(e.arg, sc)
		if err != nil {
			return vUndef, err
		}
		args := make([]V, len(e.args))
		for i, a := range e.args {
			if args[i], err = s.eval(a, sc); err != nil {
				return vUndef, err
			}
		}
		r, err := s.test(e.name, v, args)
		return vBool(r), err
	case *eNot:
		v, err := s.eval(e.x, sc)
		return vBool(!truthy(v)), err
	case *eNeg, *ePos:
		var x expr
		op := "-"
		if n, ok := e.(*eNeg); ok {
			x = n.x
		} else {
			x, op = e.(*ePos).x, "+"
		}
		v, err := s.eval(x, sc)
		if err != nil {
			return vUndef, err
		}
		return unary(op, v)
	case *eAnd:
		l, err := s.eval(e.l, sc)
		if err != nil || !truthy(l) {
			return l, err
		}
		return s.eval(e.r, sc)
	case *eOr:
		l, err := s.eval(e.l, sc)
		if err != nil || truthy(l) {
			return l, err
		}
		return s.eval(e.r, sc)
	case *eBin:
		l, err := s.eval(e.l, sc)
		if err != nil {
			return vUndef, err
		}
		r, err := s.eval(e.r, sc)
		if err != nil {
			return vUndef, err
		}
		v, err := s.binop(e.op, l, r)
		if err == nil {
			err = s.sizeOf(v)
		}
		if err == nil {
			err = s.spend(cost(v))
		}
		return v, err
	case *eConcat:
		var b strings.Builder
		for _, x := range e.items {
			v, err := s.eval(x, sc)
			if err != nil {
				return vUndef, err
			}
			b.WriteString(s.str(v))
			if err := s.checkSize(b.Len()); err != nil {
				return vUndef, err
			}
		}
		return vStr(b.String()), nil
	case *eCompare:
		left, err := s.eval(e.first, sc)
		if err != nil {
			return vUndef, err
		}
		for i, op := range e.ops {
			right, err := s.eval(e.rest[i], sc)
			if err != nil {
				return vUndef, err
			}
			if err := s.spend(cost(left) + cost(right)); err != nil {
				return vUndef, err
			}
			ok, err := compareOp(op, left, right)
			if err != nil || !ok {
				return vFalse, err
			}
			left = right
		}
		return vTrue, nil
	case *eCond:
		t, err := s.eval(e.test, sc)
		if err != nil {
			return vUndef, err
		}
		if truthy(t) {
			return s.eval(e.a, sc)
		}
		if e.b == nil {
			if s.constMode {
				return vUndef, errNotConst
			}
			return undefined("the inline if-expression evaluated to false and no else section was defined"), nil
		}
		return s.eval(e.b, sc)
	case *eList:
		items := make([]V, len(e.items))
		for i, x := range e.items {
			v, err := s.eval(x, sc)
			if err != nil {
				return vUndef, err
			}
			items[i] = v
		}
		if e.tuple {
			return vTuple(items), nil
		}
		return vList(items), nil
	case *eDict:
		d := newDict(len(e.keys))
		for i := range e.keys {
			k, err := s.eval(e.keys[i], sc)
			if err != nil {
				return vUndef, err
			}
			if err := hashable(k); err != nil {
				return vUndef, err
			}
			v, err := s.eval(e.vals[i], sc)
			if err != nil {
				return vUndef, err
			}
			d.SetV(k, v)
		}
		return vDict(d), nil
	}
	return vUndef, fmt.Errorf("chat: internal error: unknown expression %T", e)
}

// cost is the work an operation over v is charged (see spend).
func cost(v V) int {
	switch v.k {
	case kStr:
		return len(v.s) / 16
	case kList, kTuple, kRange, kView:
		return len(v.items())
	case kDict:
		return v.AsDict().Len()
	}
	return 0
}

func compareOp(op string, a, b V) (bool, error) {
	switch op {
	case "==":
		return pyEq(a, b), nil
	case "!=":
		return !pyEq(a, b), nil
	case "in", "notin":
		in, err := pyIn(a, b)
		return in == (op == "in"), err
	}
	return pyLess(op, a, b)
}

func (s *state) evalArgs(c *eCall, sc *scope) ([]V, []kwarg, error) {
	var args []V
	if len(c.args) > 0 {
		args = make([]V, len(c.args))
		for i, a := range c.args {
			v, err := s.eval(a, sc)
			if err != nil {
				return nil, nil, err
			}
			args[i] = v
		}
	}
	var kw []kwarg
	if len(c.kwNames) > 0 {
		kw = make([]kwarg, len(c.kwNames))
		for i, name := range c.kwNames {
			v, err := s.eval(c.kwVals[i], sc)
			if err != nil {
				return nil, nil, err
			}
			kw[i] = kwarg{name, v}
		}
	}
	return args, kw, nil
}

func (s *state) evalCall(c *eCall, sc *scope) (V, error) {
	if ga, ok := c.fn.(*eGetattr); ok {
		// obj.method(...) without materialising the bound method.
		obj, err := s.eval(ga.obj, sc)
		if err != nil {
			return vUndef, err
		}
		args, kw, err := s.evalArgs(c, sc)
		if err != nil {
			return vUndef, err
		}
		return s.callMethod(obj, ga.attr, args, kw)
	}
	fn, err := s.eval(c.fn, sc)
	if err != nil {
		return vUndef, err
	}
	args, kw, err := s.evalArgs(c, sc)
	if err != nil {
		return vUndef, err
	}
	return s.callValue(fn, args, kw)
}

func (s *state) callValue(fn V, args []V, kw []kwarg) (V, error) {
	switch fn.k {
	case kFunc:
		v, err := fn.AsFunc().fn(s, args, kw)
		if err == nil {
			err = s.sizeOf(v)
		}
		return v, err
	case kLoop:
		return s.callLoop(fn.asLoop(), args)
	case kUndef:
		return vUndef, undefErrOf(fn)
	}
	return vUndef, typeErr("'%s' object is not callable", pyType(fn))
}

func (s *state) applyFilter(f *eFilter, v V, sc *scope) (V, error) {
	var args []V
	if len(f.args) > 0 {
		args = make([]V, len(f.args))
		for i, a := range f.args {
			x, err := s.eval(a, sc)
			if err != nil {
				return vUndef, err
			}
			args[i] = x
		}
	}
	var kw []kwarg
	for i, name := range f.kwNames {
		x, err := s.eval(f.kwVals[i], sc)
		if err != nil {
			return vUndef, err
		}
		kw = append(kw, kwarg{name, x})
	}
	r, err := s.filter(f.name, v, args, kw)
	if err == nil {
		err = s.sizeOf(r)
	}
	return r, err
}

func (s *state) applyFilters(fs []*eFilter, v V, sc *scope) (V, error) {
	for _, f := range fs {
		var err error
		if v, err = s.applyFilter(f, v, sc); err != nil {
			return vUndef, err
		}
	}
	return v, nil
}

// ---- globals ----

// globals are jinja2's default globals and Hugging Face's additions.
var globals = map[string]V{}

func init() {
	add := func(name string, fn func(s *state, args []V, kw []kwarg) (V, error)) {
		globals[name] = vFunc(name, fn)
	}
	add("range", builtinRange)
	add("dict", func(s *state, args []V, kw []kwarg) (V, error) {
		d := newDict(len(kw))
		if len(args) > 1 {
			return vUndef, typeErr("dict expected at most 1 argument, got %d", len(args))
		}
		if len(args) == 1 {
			a := args[0]
			switch a.k {
			case kDict:
				src := a.AsDict()
				for _, x := range src.ents {
					d.SetV(x.k, x.v)
				}
			case kList, kTuple:
				for _, it := range a.items() {
					kv, err := unpack(it, 2)
					if err != nil {
						return vUndef, err
					}
					if err := hashable(kv[0]); err != nil {
						return vUndef, err
					}
					d.SetV(kv[0], kv[1])
				}
			default:
				return vUndef, typeErr("'%s' object is not iterable", pyType(a))
			}
		}
		for _, a := range kw {
			d.Set(a.name, a.v)
		}
		return vDict(d), nil
	})
	add("namespace", func(s *state, args []V, kw []kwarg) (V, error) {
		ns := &Namespace{}
		if len(args) > 1 {
			return vUndef, typeErr("namespace expected at most 1 argument, got %d", len(args))
		}
		if len(args) == 1 {
			if args[0].k != kDict {
				return vUndef, typeErr("namespace() argument must be a mapping")
			}
			src := args[0].AsDict()
			for _, x := range src.ents {
				ns.attrs.SetV(x.k, x.v)
			}
		}
		for _, a := range kw {
			ns.attrs.Set(a.name, a.v)
		}
		return V{k: kNS, p: ns}, nil
	})
	add("joiner", func(s *state, args []V, kw []kwarg) (V, error) {
		sep := vStr(", ")
		if v := param(args, kw, 0, "sep", vUndef); v.k != kUndef {
			sep = v
		}
		used := false
		return vFunc("joiner", func(*state, []V, []kwarg) (V, error) {
			if !used {
				used = true
				return vEmpty, nil
			}
			return sep, nil
		}), nil
	})
	for _, name := range []string{"cycler", "lipsum"} {
		add(name, func(*state, []V, []kwarg) (V, error) {
			return vUndef, &Error{Kind: "TemplateRuntimeError", Msg: "the global " + name + "() is not supported"}
		})
	}
	// Hugging Face's globals.
	add("raise_exception", func(s *state, args []V, _ []kwarg) (V, error) {
		return vUndef, &Error{Kind: "TemplateError", Msg: pyStr(arg(args, 0))}
	})
	add("strftime_now", func(s *state, args []V, _ []kwarg) (V, error) {
		now := time.Now()
		if s.t.Now != nil {
			now = s.t.Now()
		}
		return vStr(strftime(pyStr(arg(args, 0)), now)), nil
	})
}

func builtinRange(s *state, args []V, _ []kwarg) (V, error) {
	var a [3]int64
	a[2] = 1
	for i, v := range args {
		n, ok := asInt(v)
		if !ok {
			return vUndef, typeErr("'%s' object cannot be interpreted as an integer", pyType(v))
		}
		if i < 3 {
			a[i] = n
		}
	}
	start, stop, step := a[0], a[1], a[2]
	switch len(args) {
	case 1:
		start, stop = 0, a[0]
	case 2, 3:
	default:
		return vUndef, typeErr("range expected 1 to 3 arguments, got %d", len(args))
	}
	if step == 0 {
		return vUndef, &Error{Kind: "ValueError", Msg: "range() arg 3 must not be zero"}
	}
	var n uint64
	if step > 0 && stop > start {
		d := uint64(stop) - uint64(start)
		n = d / uint64(step)
		if d%uint64(step) != 0 {
			n++
		}
	} else if step < 0 && stop < start {
		d := uint64(start) - uint64(stop)
		n = d / (uint64(-(step + 1)) + 1)
		if d%(uint64(-(step+1))+1) != 0 {
			n++
		}
	}
	if n > maxRange {
		return vUndef, &Error{Kind: "OverflowError", Msg: fmt.Sprintf("Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).", maxRange)}
	}
	return newRange(start, stop, step, int64(n)), nil
}

// newRange is range(start, stop, step), which has n items.
func newRange(start, stop, step, n int64) V {
	items := make([]V, n)
	for i := range items {
		items[i] = vInt(start + int64(i)*step)
	}
	return V{k: kRange, p: &rangeObj{List: List{Items: items}, start: start, stop: stop, step: step}}
}
