package grammar

import (
	"fmt"
)

// maskCacheBytes bounds the masks one Matcher keeps.
const maskCacheBytes = 8 << 20

// Matcher matches one token sequence against a grammar: Mask gives the
// tokens allowed next, Accept advances by the chosen token. It caches the
// states, transitions and masks it has computed. Not safe for concurrent
// use.
type Matcher struct {
	g       *Grammar
	m       *machine
	v       *Vocab
	special bool
	cur     int32
	ended   bool

	stats MatcherStats

	masks    map[int32][]uint64
	order    []int32 // cached mask states, oldest first
	maxMasks int
	st       []int32 // walk scratch: the state at each trie depth
}

// NewMatcher starts matching g from its beginning over vocabulary v.
// special allows control tokens (whose text is matched like any other);
// without it they are never allowed (their text is not part of the output).
func (g *Grammar) NewMatcher(v *Vocab, special bool) (*Matcher, error) {
	m := newMachine(g)
	cur, err := m.initial()
	if err != nil {
		return nil, err
	}
	if cur < 0 {
		return nil, &Error{Msg: "the grammar matches nothing"}
	}
	words := v.MaskWords()
	return &Matcher{
		g: g, m: m, v: v, special: special, cur: cur,
		masks:    map[int32][]uint64{},
		maxMasks: max(16, maskCacheBytes/(8*max(words, 1))),
		st:       make([]int32, v.maxDepth+1),
	}, nil
}

// MatcherStats count a Matcher's work (for benchmarks and diagnostics).
type MatcherStats struct {
	Masks      int // masks requested
	Computed   int // masks computed (the others came from the cache)
	Nodes      int // trie nodes visited while computing them
	WholeSkips int // subtrees allowed whole without being walked
	States     int // states created
}

// Stats returns the counts so far.
func (mt *Matcher) Stats() MatcherStats {
	st := mt.stats
	st.States = len(mt.m.states)
	return st
}

// CanEnd reports whether the text so far is a complete match (an
// end-of-generation token is allowed now).
func (mt *Matcher) CanEnd() bool { return mt.ended || mt.m.accept[mt.cur] }

// Done reports whether the match is complete and nothing may follow (or an
// end-of-generation token was accepted).
func (mt *Matcher) Done() bool { return mt.ended || mt.m.onlyEnd[mt.cur] }

// Mask returns the tokens allowed next as a bitmap (bit id%64 of word
// id/64): tokens whose whole text the grammar accepts from the current
// state, and end-of-generation tokens when the grammar can end. The slice
// is shared with the Matcher's cache: read it before the next call and do
// not modify it.
func (mt *Matcher) Mask() ([]uint64, error) {
	if mt.ended {
		return make([]uint64, mt.v.MaskWords()), nil
	}
	mt.stats.Masks++
	if mk, ok := mt.masks[mt.cur]; ok {
		return mk, nil
	}
	mt.stats.Computed++
	mk := make([]uint64, mt.v.MaskWords())
	if err := mt.fill(mt.cur, mk); err != nil {
		return nil, err
	}
	if len(mt.order) >= mt.maxMasks {
		drop := mt.order[:len(mt.order)/2]
		for _, s := range drop {
			delete(mt.masks, s)
		}
		mt.order = append(mt.order[:0], mt.order[len(drop):]...)
	}
	mt.masks[mt.cur] = mk
	mt.order = append(mt.order, mt.cur)
	return mk, nil
}

// fill sets in mk the tokens allowed from state s: one depth-first scan of
// the trie in which a byte the grammar rejects skips the subtree below it,
// and a subtree whose every byte leads from s back to s (text inside a
// JSON string, say) is allowed whole without being walked.
func (mt *Matcher) fill(s int32, mk []uint64) error {
	m, v := mt.m, mt.v
	m.work = 0
	loops, err := m.selfLoops(s)
	if err != nil {
		return err
	}
	hasLoops := loops != [4]uint64{}
	nc := m.g.nClasses
	classOf := &m.g.classOf
	st := mt.st
	st[0] = s
	tbyte, depth, skip, tok, sub := v.tbyte, v.depth, v.skip, v.tok, v.sub
	visited, whole := 0, 0
	defer func() { mt.stats.Nodes += visited; mt.stats.WholeSkips += whole }()
	for i := 0; i < len(tbyte); {
		visited++
		d := depth[i]
		from := st[d-1]
		if hasLoops && from == s {
			b := sub[4*i : 4*i+4 : 4*i+4]
			if b[0]&^loops[0]|b[1]&^loops[1]|b[2]&^loops[2]|b[3]&^loops[3] == 0 {
				for _, x := range v.order[v.first[i]:v.first[skip[i]]] {
					mk[x>>6] |= 1 << (x & 63)
				}
				whole++
				i = int(skip[i])
				continue
			}
		}
		c := classOf[tbyte[i]]
		t := m.trans[int(from)*nc+int(c)]
		if t == transUnknown {
			var err error
			if t, err = m.step(from, c); err != nil {
				return err
			}
		}
		if t < 0 {
			i = int(skip[i])
			continue
		}
		st[d] = t
		if id := tok[i]; id >= 0 {
			mk[id>>6] |= 1 << (id & 63)
		} else if id <= -2 {
			for _, x := range v.extra[-2-id] {
				mk[x>>6] |= 1 << (x & 63)
			}
		}
		i++
	}
	if !mt.special {
		for w, c := range v.control {
			mk[w] &^= c
		}
	}
	if m.accept[s] {
		for w, e := range v.eog {
			mk[w] |= e
		}
	}
	return nil
}

// Accept advances by one token. A token the grammar does not allow here
// is an error (and leaves the state unchanged).
func (mt *Matcher) Accept(id int) error {
	v := mt.v
	if id < 0 || id >= v.n {
		return fmt.Errorf("grammar: token %d is outside the vocabulary", id)
	}
	if mt.ended {
		return fmt.Errorf("grammar: token %d after the end of generation", id)
	}
	if v.IsEOG(id) {
		if !mt.m.accept[mt.cur] {
			return fmt.Errorf("grammar: end of generation (token %d) before the grammar is complete", id)
		}
		mt.ended = true
		return nil
	}
	if v.IsControl(id) && !mt.special {
		return fmt.Errorf("grammar: control token %d is not allowed without special tokens", id)
	}
	p := v.pieces[id]
	if len(p) == 0 {
		return fmt.Errorf("grammar: token %d has no text", id)
	}
	if err := mt.advance(p); err != nil {
		return fmt.Errorf("grammar: token %d (%q) %w", id, p, err)
	}
	return nil
}

// AcceptBytes advances by text (a prompt prefix the output continues, or
// a test string). Text the grammar does not allow is an error and leaves
// the state unchanged.
func (mt *Matcher) AcceptBytes(b []byte) error {
	if mt.ended {
		return fmt.Errorf("grammar: text after the end of generation")
	}
	if err := mt.advance(b); err != nil {
		return fmt.Errorf("grammar: text %q %w", b, err)
	}
	return nil
}

func (mt *Matcher) advance(p []byte) error {
	m := mt.m
	m.work = 0
	s := mt.cur
	for i, b := range p {
		t, err := m.step(s, m.g.classOf[b])
		if err != nil {
			return err
		}
		if t < 0 {
			return fmt.Errorf("is not allowed by the grammar here (at byte %d)", i)
		}
		s = t
	}
	mt.cur = s
	if len(m.states) > m.lim.MaxStates {
		// Start the caches afresh from the current stacks.
		stacks := m.stacks(s)
		m.reset()
		cur, err := m.restore(stacks)
		if err != nil {
			return err
		}
		mt.cur = cur
		clear(mt.masks)
		mt.order = mt.order[:0]
	}
	return nil
}
