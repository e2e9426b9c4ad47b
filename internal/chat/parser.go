package chat

import (
	"fmt"
)

// This file parses the lexed template with jinja2's grammar
// (jinja2/parser.py) into a small AST, which eval.go evaluates directly.
// Operator precedence, filters and tests follow jinja2 exactly.

// ---- expressions ----

type expr interface{}

type (
	eConst struct{ v V }
	eName  struct{ name string }
	eList  struct {
		items []expr
		tuple bool
	}
	eDict    struct{ keys, vals []expr }
	eGetattr struct {
		obj  expr
		attr string
	}
	eGetitem struct{ obj, key expr }
	eSlice   struct{ obj, start, stop, step expr }
	eCall    struct {
		fn      expr
		args    []expr
		kwNames []string
		kwVals  []expr
	}
	eFilter struct {
		arg     expr // nil for filter blocks / set blocks (applied to body)
		name    string
		args    []expr
		kwNames []string
		kwVals  []expr
	}
	eTest struct {
		arg     expr
		name    string
		args    []expr
		kwNames []string
		kwVals  []expr
	}
	eNot struct{ x expr }
	eNeg struct{ x expr }
	ePos struct{ x expr }
	eAnd struct{ l, r expr }
	eOr  struct{ l, r expr }
	eBin struct {
		op   string
		l, r expr
	}
	eConcat  struct{ items []expr }
	eCompare struct {
		first expr
		ops   []string
		rest  []expr
	}
	eCond struct{ test, a, b expr } // b may be nil
)

// ---- statements ----

type stmt interface{}

type (
	sData   struct{ text string }
	sOutput struct{ e expr }
	sIf     struct {
		conds  []expr
		bodies [][]stmt
		els    []stmt // nil when absent
	}
	sFor struct {
		targets    []string
		tuple      bool
		iter       expr
		filter     expr
		body       []stmt
		els        []stmt
		recursive  bool
		freshScope bool // the body defines macros or call blocks, which keep its scope
	}
	sSet struct {
		targets []string // names; len>1 or tuple => unpacking
		tuple   bool
		ns      string // for `set ns.attr = ...`
		attr    string
		value   expr
	}
	sSetBlock struct {
		name    string
		filters []*eFilter
		body    []stmt
	}
	sMacro struct {
		name     string
		params   []string
		defaults []expr
		body     []stmt
		// whether the body refers to the special names (jinja2 accepts the
		// corresponding arguments only then)
		usesCaller, usesVarargs, usesKwargs bool
	}
	sCallBlock struct {
		params []string
		call   *eCall
		body   []stmt
	}
	sFilterBlock struct {
		filters []*eFilter
		body    []stmt
	}
	sWith struct {
		names []string
		vals  []expr
		body  []stmt
	}
	sBreak      struct{}
	sContinue   struct{}
	sGeneration struct{ body []stmt }
)

const maxNesting = 128

type parser struct {
	items []item
	pos   int
	depth int
	loops int // enclosing for loops (for break/continue)

	// current tag's token stream
	toks []token
	tp   int
	line int
}

func parseTemplate(items []item) ([]stmt, error) {
	p := &parser{items: items}
	body, end, err := p.parseBody(nil)
	if err != nil {
		return nil, err
	}
	if end != "" {
		return nil, p.errf("encountered unknown tag '%s'", end)
	}
	return body, nil
}

func (p *parser) errf(format string, args ...any) error {
	return &SyntaxError{p.line, fmt.Sprintf(format, args...)}
}

// parseBody parses statements until a block tag whose keyword is in ends
// (returned, with its tokens positioned after the keyword) or EOF ("").
func (p *parser) parseBody(ends []string) ([]stmt, string, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxNesting {
		return nil, "", p.errf("template nesting too deep")
	}
	var out []stmt
	for p.pos < len(p.items) {
		it := p.items[p.pos]
		p.pos++
		p.toks, p.tp, p.line = it.toks, 0, it.line
		switch it.kind {
		case itemData:
			out = append(out, &sData{it.text})
		case itemVariable:
			e, err := p.parseTuple(false, true, nil, false)
			if err != nil {
				return nil, "", err
			}
			if err := p.expectEnd(); err != nil {
				return nil, "", err
			}
			out = append(out, &sOutput{e})
		case itemBlock:
			kw := p.cur()
			if kw.kind != tkName {
				return nil, "", p.errf("tag name expected")
			}
			for _, e := range ends {
				if kw.s == e {
					p.tp++
					return out, e, nil
				}
			}
			p.tp++
			s, err := p.parseStatement(kw.s)
			if err != nil {
				return nil, "", err
			}
			if s != nil {
				out = append(out, s)
			}
		}
	}
	if len(ends) > 0 {
		return nil, "", p.errf("unexpected end of template; expected one of %v", ends)
	}
	return out, "", nil
}

func (p *parser) parseStatement(kw string) (stmt, error) {
	switch kw {
	case "if":
		return p.parseIf()
	case "for":
		return p.parseFor()
	case "set":
		return p.parseSet()
	case "macro":
		return p.parseMacro()
	case "call":
		return p.parseCallBlock()
	case "filter":
		return p.parseFilterBlock()
	case "break", "continue":
		if p.loops == 0 {
			return nil, p.errf("'%s' outside of a loop", kw)
		}
		if err := p.expectEnd(); err != nil {
			return nil, err
		}
		if kw == "break" {
			return &sBreak{}, nil
		}
		return &sContinue{}, nil
	case "generation":
		if err := p.expectEnd(); err != nil {
			return nil, err
		}
		body, _, err := p.parseBody([]string{"endgeneration"})
		if err != nil {
			return nil, err
		}
		if err := p.expectEnd(); err != nil {
			return nil, err
		}
		return &sGeneration{body}, nil
	case "with":
		return p.parseWith()
	case "include", "import", "from", "extends", "block", "autoescape", "do":
		return nil, p.errf("the '%s' tag is not supported", kw)
	}
	return nil, p.errf("encountered unknown tag '%s'", kw)
}

func (p *parser) parseIf() (stmt, error) {
	s := &sIf{}
	for {
		cond, err := p.parseTuple(false, false, nil, false)
		if err != nil {
			return nil, err
		}
		if err := p.expectEnd(); err != nil {
			return nil, err
		}
		body, end, err := p.parseBody([]string{"elif", "else", "endif"})
		if err != nil {
			return nil, err
		}
		s.conds = append(s.conds, cond)
		s.bodies = append(s.bodies, body)
		switch end {
		case "elif":
			continue
		case "else":
			if err := p.expectEnd(); err != nil {
				return nil, err
			}
			els, _, err := p.parseBody([]string{"endif"})
			if err != nil {
				return nil, err
			}
			if els == nil {
				els = []stmt{}
			}
			s.els = els
		}
		return s, p.expectEnd()
	}
}

func (p *parser) parseFor() (stmt, error) {
	s := &sFor{}
	targets, tuple, err := p.parseAssignTargets("in")
	if err != nil {
		return nil, err
	}
	s.targets, s.tuple = targets, tuple
	if !p.skipName("in") {
		return nil, p.errf("expected 'in'")
	}
	if s.iter, err = p.parseTuple(false, false, []string{"recursive"}, false); err != nil {
		return nil, err
	}
	if p.skipName("if") {
		if s.filter, err = p.parseExpression(true); err != nil {
			return nil, err
		}
	}
	s.recursive = p.skipName("recursive")
	if err := p.expectEnd(); err != nil {
		return nil, err
	}
	p.loops++
	body, end, err := p.parseBody([]string{"endfor", "else"})
	p.loops--
	if err != nil {
		return nil, err
	}
	s.body = body
	if end == "else" {
		if err := p.expectEnd(); err != nil {
			return nil, err
		}
		if s.els, _, err = p.parseBody([]string{"endfor"}); err != nil {
			return nil, err
		}
		if s.els == nil {
			s.els = []stmt{}
		}
	}
	return s, p.expectEnd()
}

// parseAssignTargets parses a name or a tuple of names.
func (p *parser) parseAssignTargets(stop string) ([]string, bool, error) {
	var names []string
	tuple := false
	paren := false
	if p.isOp("(") {
		p.tp++
		paren = true
		tuple = true
	}
	for {
		t := p.cur()
		if t.kind != tkName {
			return nil, false, p.errf("can't assign to %s", t)
		}
		names = append(names, t.s)
		p.tp++
		if p.isOp(",") {
			p.tp++
			tuple = true
			if paren && p.isOp(")") {
				break
			}
			if !paren && (p.cur().kind == tkEOF || p.isOp("=") || (p.cur().kind == tkName && p.cur().s == stop)) {
				break
			}
			continue
		}
		break
	}
	if paren {
		if !p.isOp(")") {
			return nil, false, p.errf("expected ')'")
		}
		p.tp++
	}
	return names, tuple, nil
}

func (p *parser) parseSet() (stmt, error) {
	// namespace attribute
	if p.cur().kind == tkName && p.peek(1).kind == tkOp && p.peek(1).s == "." {
		ns := p.cur().s
		p.tp += 2
		if p.cur().kind != tkName {
			return nil, p.errf("expected attribute name")
		}
		attr := p.cur().s
		p.tp++
		if !p.isOp("=") {
			return nil, p.errf("expected '='")
		}
		p.tp++
		v, err := p.parseTuple(false, true, nil, false)
		if err != nil {
			return nil, err
		}
		return &sSet{ns: ns, attr: attr, value: v}, p.expectEnd()
	}
	targets, tuple, err := p.parseAssignTargets("")
	if err != nil {
		return nil, err
	}
	if p.isOp("=") {
		p.tp++
		v, err := p.parseTuple(false, true, nil, false)
		if err != nil {
			return nil, err
		}
		return &sSet{targets: targets, tuple: tuple, value: v}, p.expectEnd()
	}
	if tuple || len(targets) != 1 {
		return nil, p.errf("block set needs a single name")
	}
	s := &sSetBlock{name: targets[0]}
	for p.isOp("|") {
		p.tp++
		f, err := p.parseFilterCall(nil)
		if err != nil {
			return nil, err
		}
		s.filters = append(s.filters, f)
	}
	if err := p.expectEnd(); err != nil {
		return nil, err
	}
	body, _, err := p.parseBody([]string{"endset"})
	if err != nil {
		return nil, err
	}
	s.body = body
	return s, p.expectEnd()
}

func (p *parser) parseSignature() ([]string, []expr, error) {
	if !p.isOp("(") {
		return nil, nil, p.errf("expected '('")
	}
	p.tp++
	var names []string
	var defs []expr
	for !p.isOp(")") {
		if len(names) > 0 {
			if !p.isOp(",") {
				return nil, nil, p.errf("expected ','")
			}
			p.tp++
			if p.isOp(")") {
				break
			}
		}
		t := p.cur()
		if t.kind != tkName {
			return nil, nil, p.errf("expected parameter name, got %s", t)
		}
		p.tp++
		var d expr
		if p.isOp("=") {
			p.tp++
			var err error
			if d, err = p.parseExpression(true); err != nil {
				return nil, nil, err
			}
		} else if len(defs) > 0 && defs[len(defs)-1] != nil {
			return nil, nil, p.errf("non-default argument follows default argument")
		}
		names = append(names, t.s)
		defs = append(defs, d)
	}
	p.tp++
	return names, defs, nil
}

func (p *parser) parseMacro() (stmt, error) {
	t := p.cur()
	if t.kind != tkName {
		return nil, p.errf("expected macro name")
	}
	p.tp++
	params, defs, err := p.parseSignature()
	if err != nil {
		return nil, err
	}
	if err := p.expectEnd(); err != nil {
		return nil, err
	}
	loops := p.loops
	p.loops = 0
	body, _, err := p.parseBody([]string{"endmacro"})
	p.loops = loops
	if err != nil {
		return nil, err
	}
	if p.cur().kind == tkName && p.cur().s == t.s {
		p.tp++ // {% endmacro name %}
	}
	return &sMacro{name: t.s, params: params, defaults: defs, body: body}, p.expectEnd()
}

func (p *parser) parseWith() (stmt, error) {
	s := &sWith{}
	for p.cur().kind != tkEOF {
		if len(s.names) > 0 {
			if err := p.expectOp(","); err != nil {
				return nil, err
			}
		}
		t := p.cur()
		if t.kind != tkName {
			return nil, p.errf("expected a name, got %s", t)
		}
		p.tp++
		if err := p.expectOp("="); err != nil {
			return nil, err
		}
		v, err := p.parseExpression(true)
		if err != nil {
			return nil, err
		}
		s.names = append(s.names, t.s)
		s.vals = append(s.vals, v)
	}
	body, _, err := p.parseBody([]string{"endwith"})
	if err != nil {
		return nil, err
	}
	s.body = body
	return s, p.expectEnd()
}

func (p *parser) parseCallBlock() (stmt, error) {
	s := &sCallBlock{}
	if p.isOp("(") {
		params, defs, err := p.parseSignature()
		if err != nil {
			return nil, err
		}
		for _, d := range defs {
			if d != nil {
				return nil, p.errf("defaults for call block parameters are not supported")
			}
		}
		s.params = params
	}
	e, err := p.parseExpression(true)
	if err != nil {
		return nil, err
	}
	c, ok := e.(*eCall)
	if !ok {
		return nil, p.errf("expected call")
	}
	s.call = c
	if err := p.expectEnd(); err != nil {
		return nil, err
	}
	loops := p.loops
	p.loops = 0
	body, _, err := p.parseBody([]string{"endcall"})
	p.loops = loops
	if err != nil {
		return nil, err
	}
	s.body = body
	return s, p.expectEnd()
}

func (p *parser) parseFilterBlock() (stmt, error) {
	s := &sFilterBlock{}
	for {
		f, err := p.parseFilterCall(nil)
		if err != nil {
			return nil, err
		}
		s.filters = append(s.filters, f)
		if !p.isOp("|") {
			break
		}
		p.tp++
	}
	if err := p.expectEnd(); err != nil {
		return nil, err
	}
	body, _, err := p.parseBody([]string{"endfilter"})
	if err != nil {
		return nil, err
	}
	s.body = body
	return s, p.expectEnd()
}

// ---- token helpers ----

func (p *parser) cur() token { return p.peek(0) }

func (p *parser) peek(n int) token {
	if p.tp+n < len(p.toks) {
		return p.toks[p.tp+n]
	}
	return token{kind: tkEOF, line: p.line}
}

func (p *parser) isOp(op string) bool {
	t := p.cur()
	return t.kind == tkOp && t.s == op
}

func (p *parser) isName(n string) bool {
	t := p.cur()
	return t.kind == tkName && t.s == n
}

func (p *parser) skipName(n string) bool {
	if p.isName(n) {
		p.tp++
		return true
	}
	return false
}

func (p *parser) expectOp(op string) error {
	if !p.isOp(op) {
		return p.errf("expected '%s', got %s", op, p.cur())
	}
	p.tp++
	return nil
}

func (p *parser) expectEnd() error {
	if p.cur().kind != tkEOF {
		return p.errf("expected end of statement, got %s", p.cur())
	}
	return nil
}

// ---- expressions (jinja2 precedence) ----

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxNesting {
		return p.errf("expression nesting too deep")
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

// parseTuple: comma-separated expressions form a tuple (a list here).
func (p *parser) parseTuple(simplified, withCondexpr bool, extraEnd []string, explicitParens bool) (expr, error) {
	var items []expr
	isTuple := false
	for {
		if len(items) > 0 {
			if err := p.expectOp(","); err != nil {
				return nil, err
			}
		}
		if p.isTupleEnd(extraEnd) {
			break
		}
		e, err := p.parseExpression(withCondexpr)
		if err != nil {
			return nil, err
		}
		items = append(items, e)
		if p.isOp(",") {
			isTuple = true
		} else {
			break
		}
	}
	if !isTuple {
		if len(items) > 0 {
			return items[0], nil
		}
		if !explicitParens {
			return nil, p.errf("expected an expression, got %s", p.cur())
		}
	}
	return &eList{items: items, tuple: true}, nil
}

func (p *parser) isTupleEnd(extra []string) bool {
	t := p.cur()
	if t.kind == tkEOF || (t.kind == tkOp && t.s == ")") {
		return true
	}
	for _, e := range extra {
		if t.kind == tkName && t.s == e {
			return true
		}
	}
	return false
}

func (p *parser) parseExpression(withCondexpr bool) (expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	if !withCondexpr {
		return p.parseOr()
	}
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	for p.skipName("if") {
		test, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		var b expr
		if p.skipName("else") {
			if b, err = p.parseExpression(true); err != nil {
				return nil, err
			}
		}
		e = &eCond{test: test, a: e, b: b}
	}
	return e, nil
}

func (p *parser) parseOr() (expr, error) {
	l, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.skipName("or") {
		r, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		l = &eOr{l, r}
	}
	return l, nil
}

func (p *parser) parseAnd() (expr, error) {
	l, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	for p.skipName("and") {
		r, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		l = &eAnd{l, r}
	}
	return l, nil
}

func (p *parser) parseNot() (expr, error) {
	if p.skipName("not") {
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer p.leave()
		x, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		return &eNot{x}, nil
	}
	return p.parseCompare()
}

func (p *parser) parseCompare() (expr, error) {
	first, err := p.parseMath1()
	if err != nil {
		return nil, err
	}
	c := &eCompare{first: first}
	for {
		t := p.cur()
		var op string
		switch {
		case t.kind == tkOp && (t.s == "==" || t.s == "!=" || t.s == "<" || t.s == ">" || t.s == "<=" || t.s == ">="):
			op = t.s
			p.tp++
		case t.kind == tkName && t.s == "in":
			op = "in"
			p.tp++
		case t.kind == tkName && t.s == "not" && p.peek(1).kind == tkName && p.peek(1).s == "in":
			op = "notin"
			p.tp += 2
		}
		if op == "" {
			break
		}
		r, err := p.parseMath1()
		if err != nil {
			return nil, err
		}
		c.ops = append(c.ops, op)
		c.rest = append(c.rest, r)
	}
	if len(c.ops) == 0 {
		return first, nil
	}
	return c, nil
}

func (p *parser) parseMath1() (expr, error) {
	l, err := p.parseConcat()
	if err != nil {
		return nil, err
	}
	for p.isOp("+") || p.isOp("-") {
		op := p.cur().s
		p.tp++
		r, err := p.parseConcat()
		if err != nil {
			return nil, err
		}
		l = &eBin{op, l, r}
	}
	return l, nil
}

func (p *parser) parseConcat() (expr, error) {
	first, err := p.parseMath2()
	if err != nil {
		return nil, err
	}
	items := []expr{first}
	for p.isOp("~") {
		p.tp++
		e, err := p.parseMath2()
		if err != nil {
			return nil, err
		}
		items = append(items, e)
	}
	if len(items) == 1 {
		return first, nil
	}
	return &eConcat{items}, nil
}

func (p *parser) parseMath2() (expr, error) {
	l, err := p.parsePow()
	if err != nil {
		return nil, err
	}
	for p.isOp("*") || p.isOp("/") || p.isOp("//") || p.isOp("%") {
		op := p.cur().s
		p.tp++
		r, err := p.parsePow()
		if err != nil {
			return nil, err
		}
		l = &eBin{op, l, r}
	}
	return l, nil
}

func (p *parser) parsePow() (expr, error) {
	l, err := p.parseUnary(true)
	if err != nil {
		return nil, err
	}
	for p.isOp("**") {
		p.tp++
		r, err := p.parseUnary(true)
		if err != nil {
			return nil, err
		}
		l = &eBin{"**", l, r}
	}
	return l, nil
}

func (p *parser) parseUnary(withFilter bool) (expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	var node expr
	var err error
	switch {
	case p.isOp("-"):
		p.tp++
		x, err := p.parseUnary(false)
		if err != nil {
			return nil, err
		}
		node = &eNeg{x}
	case p.isOp("+"):
		p.tp++
		x, err := p.parseUnary(false)
		if err != nil {
			return nil, err
		}
		node = &ePos{x}
	default:
		if node, err = p.parsePrimary(); err != nil {
			return nil, err
		}
	}
	if node, err = p.parsePostfix(node); err != nil {
		return nil, err
	}
	if withFilter {
		return p.parseFilterExpr(node)
	}
	return node, nil
}

func (p *parser) parsePrimary() (expr, error) {
	t := p.cur()
	switch t.kind {
	case tkName:
		p.tp++
		switch t.s {
		case "true", "True":
			return &eConst{vTrue}, nil
		case "false", "False":
			return &eConst{vFalse}, nil
		case "none", "None":
			return &eConst{vNone}, nil
		}
		return &eName{t.s}, nil
	case tkString:
		p.tp++
		s := t.s
		for p.cur().kind == tkString {
			s += p.cur().s
			p.tp++
		}
		return &eConst{vStr(s)}, nil
	case tkInt:
		p.tp++
		return &eConst{vInt(t.i)}, nil
	case tkFloat:
		p.tp++
		return &eConst{vFloat(t.f)}, nil
	case tkOp:
		switch t.s {
		case "(":
			p.tp++
			e, err := p.parseTuple(false, true, nil, true)
			if err != nil {
				return nil, err
			}
			return e, p.expectOp(")")
		case "[":
			p.tp++
			l := &eList{}
			for !p.isOp("]") {
				if len(l.items) > 0 {
					if err := p.expectOp(","); err != nil {
						return nil, err
					}
					if p.isOp("]") {
						break
					}
				}
				e, err := p.parseExpression(true)
				if err != nil {
					return nil, err
				}
				l.items = append(l.items, e)
			}
			p.tp++
			return l, nil
		case "{":
			p.tp++
			d := &eDict{}
			for !p.isOp("}") {
				if len(d.keys) > 0 {
					if err := p.expectOp(","); err != nil {
						return nil, err
					}
					if p.isOp("}") {
						break
					}
				}
				k, err := p.parseExpression(true)
				if err != nil {
					return nil, err
				}
				if err := p.expectOp(":"); err != nil {
					return nil, err
				}
				v, err := p.parseExpression(true)
				if err != nil {
					return nil, err
				}
				d.keys = append(d.keys, k)
				d.vals = append(d.vals, v)
			}
			p.tp++
			return d, nil
		}
	}
	return nil, p.errf("unexpected %s", t)
}

func (p *parser) parsePostfix(node expr) (expr, error) {
	for {
		switch {
		case p.isOp("."):
			p.tp++
			t := p.cur()
			p.tp++
			switch t.kind {
			case tkName:
				node = &eGetattr{node, t.s}
			case tkInt:
				node = &eGetitem{node, &eConst{vInt(t.i)}}
			default:
				return nil, p.errf("expected name or number")
			}
		case p.isOp("["):
			p.tp++
			var args []expr
			for !p.isOp("]") {
				if len(args) > 0 {
					if err := p.expectOp(","); err != nil {
						return nil, err
					}
				}
				a, err := p.parseSubscribed(node)
				if err != nil {
					return nil, err
				}
				args = append(args, a)
			}
			p.tp++
			switch len(args) {
			case 0:
				return nil, p.errf("expected subscript expression")
			case 1:
				if s, ok := args[0].(*eSlice); ok {
					node = s
				} else {
					node = &eGetitem{node, args[0]}
				}
			default:
				node = &eGetitem{node, &eList{items: args, tuple: true}}
			}
		case p.isOp("("):
			c, err := p.parseCall(node)
			if err != nil {
				return nil, err
			}
			node = c
		default:
			return node, nil
		}
	}
}

func (p *parser) parseSubscribed(obj expr) (expr, error) {
	var args []expr
	if p.isOp(":") {
		p.tp++
		args = []expr{nil}
	} else {
		e, err := p.parseExpression(true)
		if err != nil {
			return nil, err
		}
		if !p.isOp(":") {
			return e, nil
		}
		p.tp++
		args = []expr{e}
	}
	switch {
	case p.isOp(":"):
		args = append(args, nil)
	case !p.isOp("]") && !p.isOp(","):
		e, err := p.parseExpression(true)
		if err != nil {
			return nil, err
		}
		args = append(args, e)
	default:
		args = append(args, nil)
	}
	if p.isOp(":") {
		p.tp++
		if !p.isOp("]") && !p.isOp(",") {
			e, err := p.parseExpression(true)
			if err != nil {
				return nil, err
			}
			args = append(args, e)
		} else {
			args = append(args, nil)
		}
	} else {
		args = append(args, nil)
	}
	return &eSlice{obj, args[0], args[1], args[2]}, nil
}

func (p *parser) parseCallArgs() ([]expr, []string, []expr, error) {
	if err := p.expectOp("("); err != nil {
		return nil, nil, nil, err
	}
	var args []expr
	var kwNames []string
	var kwVals []expr
	needComma := false
	for !p.isOp(")") {
		if needComma {
			if err := p.expectOp(","); err != nil {
				return nil, nil, nil, err
			}
			if p.isOp(")") {
				break
			}
		}
		if p.isOp("*") || p.isOp("**") {
			return nil, nil, nil, p.errf("*args and **kwargs in calls are not supported")
		}
		if p.cur().kind == tkName && p.peek(1).kind == tkOp && p.peek(1).s == "=" {
			name := p.cur().s
			p.tp += 2
			v, err := p.parseExpression(true)
			if err != nil {
				return nil, nil, nil, err
			}
			kwNames = append(kwNames, name)
			kwVals = append(kwVals, v)
		} else {
			if len(kwNames) > 0 {
				return nil, nil, nil, p.errf("invalid syntax for function call expression")
			}
			v, err := p.parseExpression(true)
			if err != nil {
				return nil, nil, nil, err
			}
			args = append(args, v)
		}
		needComma = true
	}
	p.tp++
	return args, kwNames, kwVals, nil
}

func (p *parser) parseCall(fn expr) (expr, error) {
	args, kn, kv, err := p.parseCallArgs()
	if err != nil {
		return nil, err
	}
	return &eCall{fn: fn, args: args, kwNames: kn, kwVals: kv}, nil
}

func (p *parser) parseFilterExpr(node expr) (expr, error) {
	for {
		switch {
		case p.isOp("|"):
			p.tp++
			f, err := p.parseFilterCall(node)
			if err != nil {
				return nil, err
			}
			node = f
		case p.isName("is"):
			p.tp++
			t, err := p.parseTest(node)
			if err != nil {
				return nil, err
			}
			node = t
		case p.isOp("("):
			c, err := p.parseCall(node)
			if err != nil {
				return nil, err
			}
			node = c
		default:
			return node, nil
		}
	}
}

func (p *parser) dottedName() (string, error) {
	t := p.cur()
	if t.kind != tkName {
		return "", p.errf("expected name, got %s", t)
	}
	p.tp++
	name := t.s
	for p.isOp(".") {
		p.tp++
		if p.cur().kind != tkName {
			return "", p.errf("expected name")
		}
		name += "." + p.cur().s
		p.tp++
	}
	return name, nil
}

func (p *parser) parseFilterCall(arg expr) (*eFilter, error) {
	name, err := p.dottedName()
	if err != nil {
		return nil, err
	}
	f := &eFilter{arg: arg, name: name}
	if p.isOp("(") {
		if f.args, f.kwNames, f.kwVals, err = p.parseCallArgs(); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func (p *parser) parseTest(arg expr) (expr, error) {
	negated := p.skipName("not")
	name, err := p.dottedName()
	if err != nil {
		return nil, err
	}
	t := &eTest{arg: arg, name: name}
	cur := p.cur()
	switch {
	case p.isOp("("):
		if t.args, t.kwNames, t.kwVals, err = p.parseCallArgs(); err != nil {
			return nil, err
		}
	case (cur.kind == tkName || cur.kind == tkString || cur.kind == tkInt || cur.kind == tkFloat ||
		(cur.kind == tkOp && (cur.s == "(" || cur.s == "[" || cur.s == "{"))) &&
		!(cur.kind == tkName && (cur.s == "else" || cur.s == "or" || cur.s == "and")):
		if cur.kind == tkName && cur.s == "is" {
			return nil, p.errf("you cannot chain multiple tests with is")
		}
		a, err := p.parsePrimary()
		if err != nil {
			return nil, err
		}
		if a, err = p.parsePostfix(a); err != nil {
			return nil, err
		}
		t.args = []expr{a}
	}
	if negated {
		return &eNot{t}, nil
	}
	return t, nil
}

// ---- preparation for the evaluator ----

// prepare sets the flags the evaluator needs: the special names each macro
// refers to, and the loops whose body scope must outlive an iteration.
func prepare(body []stmt) {
	walkStmts(body, func(st stmt) {
		switch st := st.(type) {
		case *sMacro:
			walkStmts(st.body, nil, func(e expr) {
				if n, ok := e.(*eName); ok {
					switch n.name {
					case "caller":
						st.usesCaller = true
					case "varargs":
						st.usesVarargs = true
					case "kwargs":
						st.usesKwargs = true
					}
				}
			})
		case *sFor:
			walkStmts(st.body, func(x stmt) {
				switch x.(type) {
				case *sMacro, *sCallBlock:
					st.freshScope = true
				}
			}, nil)
		}
	}, nil)
}

// walkStmts calls fs for every statement and fe for every expression in
// body, nested ones included.
func walkStmts(body []stmt, fs func(stmt), fe func(expr)) {
	ex := func(es ...expr) {
		if fe == nil {
			return
		}
		for _, e := range es {
			walkExpr(e, fe)
		}
	}
	filters := func(fl []*eFilter) {
		for _, f := range fl {
			ex(f)
		}
	}
	for _, st := range body {
		if fs != nil {
			fs(st)
		}
		switch st := st.(type) {
		case *sOutput:
			ex(st.e)
		case *sIf:
			ex(st.conds...)
			for _, b := range st.bodies {
				walkStmts(b, fs, fe)
			}
			walkStmts(st.els, fs, fe)
		case *sFor:
			ex(st.iter, st.filter)
			walkStmts(st.body, fs, fe)
			walkStmts(st.els, fs, fe)
		case *sSet:
			ex(st.value)
		case *sSetBlock:
			filters(st.filters)
			walkStmts(st.body, fs, fe)
		case *sFilterBlock:
			filters(st.filters)
			walkStmts(st.body, fs, fe)
		case *sMacro:
			ex(st.defaults...)
			walkStmts(st.body, fs, fe)
		case *sCallBlock:
			ex(st.call)
			walkStmts(st.body, fs, fe)
		case *sWith:
			ex(st.vals...)
			walkStmts(st.body, fs, fe)
		case *sGeneration:
			walkStmts(st.body, fs, fe)
		}
	}
}

// walkExpr calls f for e and every expression inside it.
func walkExpr(e expr, f func(expr)) {
	if e == nil {
		return
	}
	switch x := e.(type) {
	case *eList:
		if x == nil {
			return
		}
	case *eFilter:
		if x == nil {
			return
		}
	}
	f(e)
	all := func(es ...expr) {
		for _, x := range es {
			walkExpr(x, f)
		}
	}
	switch x := e.(type) {
	case *eList:
		all(x.items...)
	case *eDict:
		all(x.keys...)
		all(x.vals...)
	case *eGetattr:
		all(x.obj)
	case *eGetitem:
		all(x.obj, x.key)
	case *eSlice:
		all(x.obj, x.start, x.stop, x.step)
	case *eCall:
		all(x.fn)
		all(x.args...)
		all(x.kwVals...)
	case *eFilter:
		all(x.arg)
		all(x.args...)
		all(x.kwVals...)
	case *eTest:
		all(x.arg)
		all(x.args...)
		all(x.kwVals...)
	case *eNot:
		all(x.x)
	case *eNeg:
		all(x.x)
	case *ePos:
		all(x.x)
	case *eAnd:
		all(x.l, x.r)
	case *eOr:
		all(x.l, x.r)
	case *eBin:
		all(x.l, x.r)
	case *eConcat:
		all(x.items...)
	case *eCompare:
		all(x.first)
		all(x.rest...)
	case *eCond:
		all(x.test, x.a, x.b)
	}
}
