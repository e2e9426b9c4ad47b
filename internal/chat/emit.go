package chat

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The emitter compiles the AST into source for the execution engine
// (github.com/ardanlabs/jinja). The engine runs control flow (if/for/set/
// macro/call), scoping and literals; every value operation is a call to a
// helper (runtime.go) that implements jinja2's Python semantics, and all
// template text is fetched by index, so the engine's own whitespace handling
// never sees any text.
//
// Helpers (all names start with "__kv_"):
//
//	__kv_d(i)            template text chunk i (counted against the output limit)
//	__kv_out(v)          str(v) for {{ }} output
//	__kv_ga(o, name)     attribute access   __kv_gi(o, k)  item access
//	__kv_sl(o, a, b, c)  slicing            __kv_op(op, a, b)  arithmetic
//	__kv_neg / __kv_pos  unary minus/plus   __kv_cat(...)  the ~ operator
//	__kv_cmp(op, a, b)   comparisons and in / not in
//	__kv_f(name, v, ...) filters            __kv_t(name, v, ...) tests
//	__kv_iter(v)         a for loop's iterable  __kv_unpack(v, n) tuple unpacking
//	__kv_tick, __kv_enter, __kv_leave   loop/recursion guards
//	__kv_undef(v)        macro default handling
//	__kv_mkdict(k, v, ...)  dict(k=v, ...) keeping argument order

type emitter struct {
	b      strings.Builder
	data   []string
	nbody  int
	nsetb  int
	rename map[string]string // loop-filter target substitution
}

func compileAST(body []stmt) (string, []string, error) {
	e := &emitter{}
	if err := e.stmts(body); err != nil {
		return "", nil, err
	}
	return e.b.String(), e.data, nil
}

func (e *emitter) w(s ...string) {
	for _, x := range s {
		e.b.WriteString(x)
	}
}

func (e *emitter) stmts(body []stmt) error {
	for _, s := range body {
		if err := e.stmt(s); err != nil {
			return err
		}
	}
	return nil
}

func (e *emitter) stmt(s stmt) error {
	switch s := s.(type) {
	case *sData:
		e.data = append(e.data, s.text)
		e.w("{{ __kv_d(", strconv.Itoa(len(e.data)-1), ") }}")
	case *sOutput:
		e.w("{{ __kv_out(", e.expr(s.e), ") }}")
	case *sIf:
		for i, c := range s.conds {
			if i == 0 {
				e.w("{% if ", e.expr(c), " %}")
			} else {
				e.w("{% elif ", e.expr(c), " %}")
			}
			if err := e.stmts(s.bodies[i]); err != nil {
				return err
			}
		}
		if s.els != nil {
			e.w("{% else %}")
			if err := e.stmts(s.els); err != nil {
				return err
			}
		}
		e.w("{% endif %}")
	case *sFor:
		return e.forStmt(s)
	case *sSet:
		if s.ns != "" {
			e.w("{% set ", ident(s.ns), ".", ident(s.attr), " = ", e.expr(s.value), " %}")
			return nil
		}
		if !s.tuple {
			e.w("{% set ", ident(s.targets[0]), " = ", e.expr(s.value), " %}")
			return nil
		}
		e.w("{% set __kv_u = __kv_unpack(", e.expr(s.value), ", ", strconv.Itoa(len(s.targets)), ") %}")
		for i, t := range s.targets {
			e.w("{% set ", ident(t), " = __kv_gi(__kv_u, ", strconv.Itoa(i), ") %}")
		}
	case *sSetBlock:
		if len(s.filters) == 0 {
			e.w("{% set ", ident(s.name), " %}")
			if err := e.stmts(s.body); err != nil {
				return err
			}
			e.w("{% endset %}")
			return nil
		}
		tmp := e.tmp()
		e.w("{% set ", tmp, " %}")
		if err := e.stmts(s.body); err != nil {
			return err
		}
		e.w("{% endset %}{% set ", ident(s.name), " = ", e.filterChain(s.filters, tmp), " %}")
	case *sFilterBlock:
		tmp := e.tmp()
		e.w("{% set ", tmp, " %}")
		if err := e.stmts(s.body); err != nil {
			return err
		}
		e.w("{% endset %}{{ __kv_out(", e.filterChain(s.filters, tmp), ") }}")
	case *sMacro:
		params := make([]string, len(s.params))
		for i, p := range s.params {
			params[i] = ident(p)
		}
		e.w("{% macro ", ident(s.name), "(", strings.Join(params, ", "), ") %}{{ __kv_enter() }}")
		for i, d := range s.defaults {
			if d != nil {
				e.w("{% if __kv_undef(", params[i], ") %}{% set ", params[i], " = ", e.expr(d), " %}{% endif %}")
			}
		}
		if err := e.stmts(s.body); err != nil {
			return err
		}
		e.w("{{ __kv_leave() }}{% endmacro %}")
	case *sCallBlock:
		params := make([]string, len(s.params))
		for i, p := range s.params {
			params[i] = ident(p)
		}
		e.w("{% call(", strings.Join(params, ", "), ") ", e.call(s.call), " %}")
		if err := e.stmts(s.body); err != nil {
			return err
		}
		e.w("{% endcall %}")
	case *sBreak:
		e.w("{% break %}")
	case *sContinue:
		e.w("{% continue %}")
	case *sGeneration:
		return e.stmts(s.body)
	default:
		return fmt.Errorf("chat: internal error: unknown statement %T", s)
	}
	return nil
}

func (e *emitter) tmp() string {
	e.nsetb++
	return "__kv_sb" + strconv.Itoa(e.nsetb)
}

// forStmt compiles a for loop. jinja2 gives every iteration a fresh scope
// (a variable set in one iteration is not visible in the next); the engine
// reuses one scope, so the body is compiled into a macro called once per
// iteration, whose scope is fresh on every call. break/continue propagate
// out of the macro call to the engine's loop.
func (e *emitter) forStmt(s *sFor) error {
	e.nbody++
	name := "__kv_b" + strconv.Itoa(e.nbody)
	e.w("{% macro ", name, "(__kv_it, loop) %}{{ __kv_tick() }}")
	if s.tuple {
		e.w("{% set __kv_u = __kv_unpack(__kv_it, ", strconv.Itoa(len(s.targets)), ") %}")
		for i, t := range s.targets {
			e.w("{% set ", ident(t), " = __kv_gi(__kv_u, ", strconv.Itoa(i), ") %}")
		}
	} else {
		e.w("{% set ", ident(s.targets[0]), " = __kv_it %}")
	}
	if err := e.stmts(s.body); err != nil {
		return err
	}
	e.w("{% endmacro %}")
	e.w("{% for __kv_it in __kv_iter(", e.expr(s.iter), ")")
	if s.filter != nil {
		// The engine binds only the loop variable while evaluating the
		// filter; rewrite the targets in terms of it.
		old := e.rename
		e.rename = map[string]string{}
		for k, v := range old {
			e.rename[k] = v
		}
		for i, t := range s.targets {
			if s.tuple {
				e.rename[t] = "__kv_gi(__kv_unpack(__kv_it, " + strconv.Itoa(len(s.targets)) + "), " + strconv.Itoa(i) + ")"
			} else {
				e.rename[t] = "__kv_it"
			}
		}
		e.w(" if ", e.expr(s.filter))
		e.rename = old
	}
	e.w(" %}{{ ", name, "(__kv_it, loop) }}")
	if s.hasElse {
		e.w("{% else %}")
		if err := e.stmts(s.els); err != nil {
			return err
		}
	}
	e.w("{% endfor %}")
	return nil
}

func (e *emitter) filterChain(fs []*eFilter, arg string) string {
	cur := arg
	for _, f := range fs {
		cur = e.filterCall(f, cur)
	}
	return cur
}

func (e *emitter) filterCall(f *eFilter, arg string) string {
	parts := []string{quote(f.name), arg}
	for _, a := range f.args {
		parts = append(parts, e.expr(a))
	}
	for i, k := range f.kwNames {
		parts = append(parts, ident(k)+"="+e.expr(f.kwVals[i]))
	}
	return "__kv_f(" + strings.Join(parts, ", ") + ")"
}

func (e *emitter) call(c *eCall) string {
	if n, ok := c.fn.(*eName); ok && n.name == "dict" && len(c.args) == 0 && e.rename[n.name] == "" {
		parts := []string{}
		for i, k := range c.kwNames {
			parts = append(parts, quote(k), e.expr(c.kwVals[i]))
		}
		return "__kv_mkdict(" + strings.Join(parts, ", ") + ")"
	}
	var parts []string
	for _, a := range c.args {
		parts = append(parts, e.expr(a))
	}
	for i, k := range c.kwNames {
		parts = append(parts, ident(k)+"="+e.expr(c.kwVals[i]))
	}
	fn := e.expr(c.fn)
	return fn + "(" + strings.Join(parts, ", ") + ")"
}

func (e *emitter) exprs(xs []expr) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = e.expr(x)
	}
	return out
}

func (e *emitter) expr(x expr) string {
	switch x := x.(type) {
	case nil:
		return "none"
	case *eConst:
		return constLit(x.v)
	case *eName:
		if r, ok := e.rename[x.name]; ok {
			return r
		}
		return ident(x.name)
	case *eList:
		if x.tuple {
			return "__kv_tuple(" + strings.Join(e.exprs(x.items), ", ") + ")"
		}
		return "[" + strings.Join(e.exprs(x.items), ", ") + "]"
	case *eDict:
		parts := []string{}
		for i := range x.keys {
			parts = append(parts, e.expr(x.keys[i]), e.expr(x.vals[i]))
		}
		return "__kv_mkdict(" + strings.Join(parts, ", ") + ")"
	case *eGetattr:
		return "__kv_ga(" + e.expr(x.obj) + ", " + quote(x.attr) + ")"
	case *eGetitem:
		return "__kv_gi(" + e.expr(x.obj) + ", " + e.expr(x.key) + ")"
	case *eSlice:
		return "__kv_sl(" + e.expr(x.obj) + ", " + e.expr(x.start) + ", " + e.expr(x.stop) + ", " + e.expr(x.step) + ")"
	case *eCall:
		return e.call(x)
	case *eFilter:
		return e.filterCall(x, e.expr(x.arg))
	case *eTest:
		parts := []string{quote(x.name), e.expr(x.arg)}
		parts = append(parts, e.exprs(x.args)...)
		for i, k := range x.kwNames {
			parts = append(parts, ident(k)+"="+e.expr(x.kwVals[i]))
		}
		return "__kv_t(" + strings.Join(parts, ", ") + ")"
	case *eNot:
		return "(not " + e.expr(x.x) + ")"
	case *eNeg:
		return "__kv_neg(" + e.expr(x.x) + ")"
	case *ePos:
		return "__kv_pos(" + e.expr(x.x) + ")"
	case *eAnd:
		return "(" + e.expr(x.l) + " and " + e.expr(x.r) + ")"
	case *eOr:
		return "(" + e.expr(x.l) + " or " + e.expr(x.r) + ")"
	case *eBin:
		return "__kv_op(" + quote(x.op) + ", " + e.expr(x.l) + ", " + e.expr(x.r) + ")"
	case *eConcat:
		return "__kv_cat(" + strings.Join(e.exprs(x.items), ", ") + ")"
	case *eCompare:
		left := e.expr(x.first)
		var parts []string
		for i, op := range x.ops {
			right := e.expr(x.rest[i])
			parts = append(parts, "__kv_cmp("+quote(op)+", "+left+", "+right+")")
			left = right
		}
		if len(parts) == 1 {
			return parts[0]
		}
		return "(" + strings.Join(parts, " and ") + ")"
	case *eCond:
		if x.b == nil {
			return "(" + e.expr(x.a) + " if " + e.expr(x.test) + ")"
		}
		return "(" + e.expr(x.a) + " if " + e.expr(x.test) + " else " + e.expr(x.b) + ")"
	}
	return "none"
}

func constLit(v any) string {
	switch v := v.(type) {
	case nil:
		return "none"
	case bool:
		if v {
			return "true"
		}
		return "false"
	case int64:
		if v < 0 {
			return "__kv_neg(" + strconv.FormatInt(-v, 10) + ")"
		}
		return strconv.FormatInt(v, 10)
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) || v < 0 {
			return "__kv_float(" + quote(strconv.FormatFloat(v, 'g', -1, 64)) + ")"
		}
		s := strconv.FormatFloat(v, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	case string:
		return quote(v)
	}
	return "none"
}

// quote renders a string literal for the engine's tokenizer, which
// understands \\ and \' escapes and takes every other byte literally.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		default:
			b.WriteByte(s[i])
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// ident maps a jinja2 identifier to one the engine accepts (ASCII only).
// Names the engine treats as keywords or literals are mangled too.
func ident(name string) string {
	ok := name != ""
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')) {
			ok = false
			break
		}
	}
	switch name {
	case "null": // a literal in the engine, a plain name in jinja2
		ok = false
	}
	if ok && !strings.HasPrefix(name, "__kv") {
		return name
	}
	return "__kvn_" + fmt.Sprintf("%x", name)
}
