package grammar

import (
	"fmt"
	"strings"
)

// compiler turns parsed rules into the flat element form. Groups become
// generated rules; repetitions are rewritten as llama.cpp does
// (S{m,n} = S×m then n-m nested optional rules; S{m,} = S×m then
// S' ::= S S' | ε); character classes outside ASCII become generated rules
// whose alternatives are UTF-8 byte-range sequences.
type compiler struct {
	lim       Limits
	p         *parser
	ruleID    map[string]int32
	names     []string
	alts      [][][]elem
	setIdx    map[byteSet]int32
	sets      []byteSet
	classRule map[string]int32
	nElems    int
	gen       map[string]int // generated rules per origin, for names
}

func compile(src string, defs []ruleDef, lim Limits) (*Grammar, error) {
	c := &compiler{
		lim: lim, p: &parser{src: src}, ruleID: map[string]int32{},
		setIdx: map[byteSet]int32{}, classRule: map[string]int32{}, gen: map[string]int{},
	}
	for _, d := range defs {
		if _, dup := c.ruleID[d.name]; dup {
			return nil, c.p.errAt(d.off, "rule %q is defined more than once", d.name)
		}
		c.ruleID[d.name] = int32(len(c.names))
		c.names = append(c.names, d.name)
		c.alts = append(c.alts, nil)
	}
	root, ok := c.ruleID["root"]
	if !ok {
		return nil, &Error{Msg: `the grammar has no rule named "root"`}
	}
	for _, d := range defs {
		a, err := c.alternatives(d.name, d.body)
		if err != nil {
			return nil, err
		}
		if err := c.store(c.ruleID[d.name], a); err != nil {
			return nil, err
		}
	}
	if err := c.prune(root); err != nil {
		return nil, err
	}
	g := &Grammar{src: src, names: c.names, sets: c.sets, root: root, limits: lim}
	g.rules = make([][]int32, len(c.alts))
	g.elems = make([]elem, 0, c.nElems)
	for r, alts := range c.alts {
		for _, a := range alts {
			g.rules[r] = append(g.rules[r], int32(len(g.elems)))
			g.elems = append(g.elems, a...)
			g.elems = append(g.elems, elem{kind: kEnd})
		}
	}
	if err := g.checkLeftRecursion(); err != nil {
		return nil, err
	}
	g.computeClasses()
	m := newMachine(g)
	if st, err := m.initial(); err != nil {
		return nil, err
	} else if st < 0 {
		return nil, &Error{Msg: "the grammar matches nothing"}
	}
	return g, nil
}

// prune removes the alternatives that can match no text (an empty
// character class, or a rule that matches nothing, such as one that only
// refers to itself), so that matching never enters a dead end: every
// prefix the automaton accepts can be completed.
func (c *compiler) prune(root int32) error {
	ok := func(e elem, productive []bool) bool {
		if e.kind == kBytes {
			return !c.sets[e.arg].empty()
		}
		return productive[e.arg]
	}
	productive := make([]bool, len(c.alts))
	for changed := true; changed; {
		changed = false
		for r, alts := range c.alts {
			if productive[r] {
				continue
			}
			for _, a := range alts {
				all := true
				for _, e := range a {
					all = all && ok(e, productive)
				}
				if all {
					productive[r], changed = true, true
					break
				}
			}
		}
	}
	if !productive[root] {
		return &Error{Msg: "the grammar matches nothing"}
	}
	for r, alts := range c.alts {
		kept := alts[:0]
		for _, a := range alts {
			all := true
			for _, e := range a {
				all = all && ok(e, productive)
			}
			if all {
				kept = append(kept, a)
			}
		}
		c.alts[r] = kept
	}
	return nil
}

func (c *compiler) store(r int32, alts [][]elem) error {
	for _, a := range alts {
		c.nElems += len(a) + 1
	}
	if c.nElems > c.lim.MaxElements {
		return limitErr("the grammar compiles to more than %d elements (repetitions and character classes are expanded)", c.lim.MaxElements)
	}
	c.alts[r] = alts
	return nil
}

func (c *compiler) newRule(origin string) int32 {
	c.gen[origin]++
	id := int32(len(c.names))
	c.names = append(c.names, fmt.Sprintf("%s_%d", origin, c.gen[origin]))
	c.alts = append(c.alts, nil)
	return id
}

func (c *compiler) alternatives(origin string, e *expr) ([][]elem, error) {
	kids := []*expr{e}
	if e.kind == xAlt {
		kids = e.kids
	}
	out := make([][]elem, 0, len(kids))
	for _, k := range kids {
		var seq []elem
		if err := c.item(origin, k, &seq); err != nil {
			return nil, err
		}
		out = append(out, seq)
	}
	return out, nil
}

func (c *compiler) setElem(s byteSet) elem {
	id, ok := c.setIdx[s]
	if !ok {
		id = int32(len(c.sets))
		c.sets = append(c.sets, s)
		c.setIdx[s] = id
	}
	return elem{kind: kBytes, arg: id}
}

func (c *compiler) grow(out *[]elem, add int) error {
	if len(*out)+add+c.nElems > c.lim.MaxElements {
		return limitErr("the grammar compiles to more than %d elements (repetitions and character classes are expanded)", c.lim.MaxElements)
	}
	return nil
}

func (c *compiler) item(origin string, e *expr, out *[]elem) error {
	switch e.kind {
	case xSeq:
		for _, k := range e.kids {
			if err := c.item(origin, k, out); err != nil {
				return err
			}
		}
	case xLit:
		if err := c.grow(out, len(e.lit)); err != nil {
			return err
		}
		for i := 0; i < len(e.lit); i++ {
			var s byteSet
			s.add(e.lit[i], e.lit[i])
			*out = append(*out, c.setElem(s))
		}
	case xChars:
		ascii := true
		for _, r := range e.ranges {
			ascii = ascii && r.hi < 0x80
		}
		if ascii {
			var s byteSet
			for _, r := range e.ranges {
				s.add(byte(r.lo), byte(r.hi))
			}
			*out = append(*out, c.setElem(s))
			return nil
		}
		r, err := c.charRule(origin, e.ranges)
		if err != nil {
			return err
		}
		*out = append(*out, elem{kind: kRef, arg: r})
	case xRef:
		id, ok := c.ruleID[e.name]
		if !ok {
			return c.p.errAt(e.off, "undefined rule %q", e.name)
		}
		*out = append(*out, elem{kind: kRef, arg: id})
	case xAlt:
		r := c.newRule(origin)
		a, err := c.alternatives(origin, e)
		if err != nil {
			return err
		}
		if err := c.store(r, a); err != nil {
			return err
		}
		*out = append(*out, elem{kind: kRef, arg: r})
	case xRepeat:
		var unit []elem
		if err := c.item(origin, e.kids[0], &unit); err != nil {
			return err
		}
		copies := e.min
		if e.max != e.min {
			copies++
		}
		if len(unit) > 1 && copies > 1 {
			r := c.newRule(origin)
			if err := c.store(r, [][]elem{unit}); err != nil {
				return err
			}
			unit = []elem{{kind: kRef, arg: r}}
		}
		if err := c.grow(out, e.min*len(unit)); err != nil {
			return err
		}
		for range e.min {
			*out = append(*out, unit...)
		}
		switch {
		case e.max < 0:
			r := c.newRule(origin)
			loop := append(append([]elem(nil), unit...), elem{kind: kRef, arg: r})
			if err := c.store(r, [][]elem{loop, nil}); err != nil {
				return err
			}
			*out = append(*out, elem{kind: kRef, arg: r})
		case e.max > e.min:
			prev := int32(-1)
			for range e.max - e.min {
				r := c.newRule(origin)
				a := append([]elem(nil), unit...)
				if prev >= 0 {
					a = append(a, elem{kind: kRef, arg: prev})
				}
				if err := c.store(r, [][]elem{a, nil}); err != nil {
					return err
				}
				prev = r
			}
			*out = append(*out, elem{kind: kRef, arg: prev})
		}
	default:
		return fmt.Errorf("grammar: internal error: expression kind %d", e.kind)
	}
	return nil
}

// charRule returns a rule matching the UTF-8 encoding of one code point in
// ranges (shared by identical classes).
func (c *compiler) charRule(origin string, ranges []cpRange) (int32, error) {
	var key strings.Builder
	for _, r := range ranges {
		fmt.Fprintf(&key, "%x-%x,", r.lo, r.hi)
	}
	if id, ok := c.classRule[key.String()]; ok {
		return id, nil
	}
	var seqs [][]byteRange
	for _, r := range ranges {
		seqs = utf8Seqs(r.lo, r.hi, seqs)
	}
	var ascii byteSet
	var alts [][]elem
	for _, s := range seqs {
		if len(s) == 1 {
			ascii.add(s[0].lo, s[0].hi)
			continue
		}
		a := make([]elem, len(s))
		for i, br := range s {
			var bs byteSet
			bs.add(br.lo, br.hi)
			a[i] = c.setElem(bs)
		}
		alts = append(alts, a)
	}
	if !ascii.empty() {
		alts = append([][]elem{{c.setElem(ascii)}}, alts...)
	}
	r := c.newRule(origin)
	if err := c.store(r, alts); err != nil {
		return 0, err
	}
	c.classRule[key.String()] = r
	return r, nil
}

// checkLeftRecursion refuses grammars whose matching would push parse
// stacks without bound: a rule that can reach itself as its leftmost symbol
// (after rules that match the empty string) through a reference that is
// followed by more symbols. Cycles made only of references in the last
// position (tail calls) do not grow the stack and are allowed.
func (g *Grammar) checkLeftRecursion() error {
	n := len(g.rules)
	nullable := make([]bool, n)
	for changed := true; changed; {
		changed = false
		for r := range n {
			if nullable[r] {
				continue
			}
			for _, start := range g.rules[r] {
				ok := true
				for p := start; g.elems[p].kind != kEnd; p++ {
					e := g.elems[p]
					if e.kind == kBytes || !nullable[e.arg] {
						ok = false
						break
					}
				}
				if ok {
					nullable[r] = true
					changed = true
					break
				}
			}
		}
	}
	type edge struct {
		to   int32
		push bool
	}
	edges := make([][]edge, n)
	for r := range n {
		for _, start := range g.rules[r] {
			for p := start; g.elems[p].kind != kEnd; p++ {
				e := g.elems[p]
				if e.kind == kBytes {
					break
				}
				edges[r] = append(edges[r], edge{e.arg, g.elems[p+1].kind != kEnd})
				if !nullable[e.arg] {
					break
				}
			}
		}
	}
	// Tarjan's strongly connected components, iteratively.
	index := make([]int32, n)
	low := make([]int32, n)
	comp := make([]int32, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var stack []int32
	next, ncomp := int32(0), int32(0)
	type frame struct {
		v int32
		i int
	}
	for s := range n {
		if index[s] >= 0 {
			continue
		}
		call := []frame{{int32(s), 0}}
		index[s], low[s] = next, next
		next++
		stack = append(stack, int32(s))
		onStack[s] = true
		for len(call) > 0 {
			f := &call[len(call)-1]
			v := f.v
			if f.i < len(edges[v]) {
				w := edges[v][f.i].to
				f.i++
				if index[w] < 0 {
					index[w], low[w] = next, next
					next++
					stack = append(stack, w)
					onStack[w] = true
					call = append(call, frame{w, 0})
				} else if onStack[w] {
					low[v] = min(low[v], index[w])
				}
				continue
			}
			if low[v] == index[v] {
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[w] = false
					comp[w] = ncomp
					if w == v {
						break
					}
				}
				ncomp++
			}
			call = call[:len(call)-1]
			if len(call) > 0 {
				u := call[len(call)-1].v
				low[u] = min(low[u], low[v])
			}
		}
	}
	for r := range n {
		for _, e := range edges[r] {
			if e.push && comp[e.to] == comp[r] {
				return &Error{Msg: fmt.Sprintf("left recursion in rule %q (a rule that can start with itself never ends matching)", g.userName(int32(r)))}
			}
		}
	}
	return nil
}

// userName is the name of the rule a generated rule came from.
func (g *Grammar) userName(r int32) string {
	name := g.names[r]
	if i := strings.LastIndexByte(name, '_'); i > 0 {
		return name[:i]
	}
	return name
}

// computeClasses partitions the 256 byte values into classes that every
// byte set of the grammar treats alike.
func (g *Grammar) computeClasses() {
	var cls [256]int
	n := 1
	for _, s := range g.sets {
		var remap [256][2]int
		for i := range n {
			remap[i] = [2]int{-1, -1}
		}
		m := 0
		var next [256]int
		for b := range 256 {
			in := 0
			if s.has(byte(b)) {
				in = 1
			}
			r := &remap[cls[b]][in]
			if *r < 0 {
				*r = m
				m++
			}
			next[b] = *r
		}
		cls, n = next, m
	}
	g.nClasses = n
	g.classRep = make([]byte, n)
	g.classBytes = make([][4]uint64, n)
	seen := make([]bool, n)
	for b := range 256 {
		g.classOf[b] = uint8(cls[b])
		g.classBytes[cls[b]][b>>6] |= 1 << (b & 63)
		if !seen[cls[b]] {
			seen[cls[b]] = true
			g.classRep[cls[b]] = byte(b)
		}
	}
}
