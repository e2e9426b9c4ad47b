package grammar

import (
	"encoding/binary"
	"slices"
)

// machine runs the grammar as a pushdown automaton over bytes. A parse
// stack is a chain of nodes, each a position in the elements and the node
// below it; nodes are interned, so stacks share their tails and compare by
// id. The stack top is always a byte-set element. Node 0 is the bottom: as
// a member of a state it is the empty stack, the grammar having matched
// completely. A state is the sorted set of its stacks' top nodes, interned
// and numbered; trans caches each state's successor per byte class
// (unknown until first needed, -1 when no stack accepts the byte).
type machine struct {
	g   *Grammar
	lim Limits

	nodes   []node
	nodeIdx map[uint64]int32

	states   [][]int32
	stateIdx map[string]int32
	trans    []int32     // state*nClasses + class
	accept   []bool      // the state holds the empty stack
	onlyEnd  []bool      // the state holds only the empty stack
	loops    [][4]uint64 // per state: the bytes that lead back to it (valid when loopsDone)
	loopsOK  []bool

	work  int
	err   error
	mark  []uint32 // per node: expansion visited in the current step
	in    []uint32 // per node: already in out
	stamp uint32
	out   []int32
	key   []byte
}

type node struct {
	pos, parent int32
	depth       int32
}

const (
	transUnknown int32 = -2
	dead         int32 = -1
)

func newMachine(g *Grammar) *machine {
	m := &machine{g: g, lim: g.limits}
	m.reset()
	return m
}

func (m *machine) reset() {
	m.nodes = append(m.nodes[:0], node{pos: -1, parent: -1})
	m.nodeIdx = map[uint64]int32{}
	m.states = m.states[:0]
	m.stateIdx = map[string]int32{}
	m.trans = m.trans[:0]
	m.accept = m.accept[:0]
	m.onlyEnd = m.onlyEnd[:0]
	m.loops = m.loops[:0]
	m.loopsOK = m.loopsOK[:0]
	m.mark = append(m.mark[:0], 0)
	m.in = append(m.in[:0], 0)
}

func (m *machine) intern(pos, parent int32) int32 {
	k := uint64(uint32(pos))<<32 | uint64(uint32(parent))
	if id, ok := m.nodeIdx[k]; ok {
		return id
	}
	d := int32(0)
	if parent > 0 {
		d = m.nodes[parent].depth + 1
	}
	if int(d) > m.lim.MaxStackDepth && m.err == nil {
		m.err = limitErr("a parse stack is deeper than %d (too much nesting or recursion)", m.lim.MaxStackDepth)
	}
	id := int32(len(m.nodes))
	m.nodes = append(m.nodes, node{pos: pos, parent: parent, depth: d})
	m.mark = append(m.mark, 0)
	m.in = append(m.in, 0)
	m.nodeIdx[k] = id
	return id
}

func (m *machine) add(id int32) {
	if m.in[id] == m.stamp {
		return
	}
	m.in[id] = m.stamp
	m.out = append(m.out, id)
	if len(m.out) > m.lim.MaxStacks && m.err == nil {
		m.err = limitErr("more than %d parse stacks are alive at once (the grammar is too ambiguous)", m.lim.MaxStacks)
	}
}

// expand adds to out the stacks that continue at element pos with the
// stack parent below: rule references are replaced by their alternatives
// (a reference in last position does not push a return node), the end of
// an alternative returns to the parent.
func (m *machine) expand(pos, parent int32) {
	if m.err != nil {
		return
	}
	m.work++
	if m.work > m.lim.MaxStepWork {
		m.err = limitErr("matching one step took more than %d stack expansions", m.lim.MaxStepWork)
		return
	}
	e := m.g.elems[pos]
	switch e.kind {
	case kEnd:
		if parent == 0 {
			m.add(0)
			return
		}
		p := m.nodes[parent]
		m.expand(p.pos, p.parent)
	case kBytes:
		if !m.g.sets[e.arg].empty() {
			m.add(m.intern(pos, parent))
		}
	case kRef:
		id := m.intern(pos, parent)
		if m.mark[id] == m.stamp {
			return // already expanded in this step (a cycle of tail calls)
		}
		m.mark[id] = m.stamp
		ret := parent
		if m.g.elems[pos+1].kind != kEnd {
			ret = m.intern(pos+1, parent)
		}
		for _, a := range m.g.rules[e.arg] {
			m.expand(a, ret)
		}
	}
}

func (m *machine) begin() {
	m.stamp++
	if m.stamp == 0 { // wrapped: clear the marks
		clear(m.mark)
		clear(m.in)
		m.stamp = 1
	}
	m.out = m.out[:0]
}

// finish interns the stacks in out as a state (dead when there are none).
func (m *machine) finish() (int32, error) {
	if m.err != nil {
		err := m.err
		m.err = nil
		return dead, err
	}
	if len(m.out) == 0 {
		return dead, nil
	}
	slices.Sort(m.out)
	m.key = m.key[:0]
	for _, id := range m.out {
		m.key = binary.LittleEndian.AppendUint32(m.key, uint32(id))
	}
	if id, ok := m.stateIdx[string(m.key)]; ok {
		return id, nil
	}
	id := int32(len(m.states))
	m.states = append(m.states, slices.Clone(m.out))
	m.stateIdx[string(m.key)] = id
	for range m.g.nClasses {
		m.trans = append(m.trans, transUnknown)
	}
	m.accept = append(m.accept, m.out[0] == 0)
	m.onlyEnd = append(m.onlyEnd, len(m.out) == 1 && m.out[0] == 0)
	m.loops = append(m.loops, [4]uint64{})
	m.loopsOK = append(m.loopsOK, false)
	return id, nil
}

// initial returns the start state (dead if the grammar matches nothing).
func (m *machine) initial() (int32, error) {
	m.begin()
	for _, a := range m.g.rules[m.g.root] {
		m.expand(a, 0)
	}
	return m.finish()
}

// step returns the successor of state s on byte class c, computing and
// caching it if needed.
func (m *machine) step(s int32, c uint8) (int32, error) {
	i := int(s)*m.g.nClasses + int(c)
	if t := m.trans[i]; t != transUnknown {
		return t, nil
	}
	b := m.g.classRep[c]
	m.begin()
	for _, id := range m.states[s] {
		if id == 0 {
			continue
		}
		n := m.nodes[id]
		if m.g.sets[m.g.elems[n.pos].arg].has(b) {
			m.expand(n.pos+1, n.parent)
		}
	}
	t, err := m.finish()
	if err != nil {
		return dead, err
	}
	m.trans[i] = t
	return t, nil
}

// selfLoops returns the bytes on which state s goes back to itself.
func (m *machine) selfLoops(s int32) ([4]uint64, error) {
	if m.loopsOK[s] {
		return m.loops[s], nil
	}
	var set [4]uint64
	for c := range m.g.nClasses {
		t, err := m.step(s, uint8(c))
		if err != nil {
			return set, err
		}
		if t == s {
			for w := range 4 {
				set[w] |= m.g.classBytes[c][w]
			}
		}
	}
	m.loops[s], m.loopsOK[s] = set, true
	return set, nil
}

// stacks returns the stacks of a state as element positions, top first
// (the empty stack as an empty slice).
func (m *machine) stacks(s int32) [][]int32 {
	var out [][]int32
	for _, id := range m.states[s] {
		st := []int32{}
		for n := id; n != 0; n = m.nodes[n].parent {
			st = append(st, m.nodes[n].pos)
		}
		out = append(out, st)
	}
	return out
}

// restore interns stacks given as element positions (from stacks, possibly
// of a machine since reset) and returns their state.
func (m *machine) restore(stacks [][]int32) (int32, error) {
	m.begin()
	for _, st := range stacks {
		id := int32(0)
		for i := len(st) - 1; i >= 0; i-- {
			id = m.intern(st[i], id)
		}
		m.add(id)
	}
	return m.finish()
}
