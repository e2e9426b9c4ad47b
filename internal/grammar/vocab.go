package grammar

import (
	"bytes"
	"slices"
)

// Vocab is a model's vocabulary prepared for masking: every token's bytes
// in a trie, stored in depth-first order so that a walk is one forward scan
// that can jump over a subtree. Build it once per model and share it; it is
// immutable.
type Vocab struct {
	n      int
	pieces [][]byte

	// Trie nodes (the root excluded), in depth-first order.
	tbyte []byte
	depth []uint16
	skip  []int32 // index of the first node after this node's subtree
	tok   []int32 // token ending here: its id, -1 none, <= -2 an index into extra
	extra [][]int32
	// sub[4i:4i+4] is the set of bytes in node i's subtree (its own
	// included); the tokens ending in the subtree are
	// order[first[i]:first[skip[i]]] (first has one more entry, for the end).
	sub   []uint64
	order []int32
	first []int32

	maxDepth int
	eog      []uint64 // end-of-generation tokens
	control  []uint64 // other control tokens
}

// TokenKind classifies a token for masking.
type TokenKind uint8

const (
	// Normal tokens are matched by their bytes.
	Normal TokenKind = iota
	// EOG (end-of-generation) tokens are allowed exactly when the grammar
	// can end, and end it.
	EOG
	// Control tokens other than EOG are matched by their text, but only
	// by matchers that allow special tokens (their text appears in the
	// output only when special tokens are rendered).
	Control
)

// NewVocab builds the trie of a vocabulary: pieces[id] is the text token id
// stands for (control tokens: their text), kind(id) its kind. Tokens with
// empty pieces (or pieces of 64 KiB or more) are never allowed.
func NewVocab(pieces [][]byte, kind func(id int) TokenKind) *Vocab {
	n := len(pieces)
	w := (n + 63) / 64
	v := &Vocab{n: n, pieces: make([][]byte, n), eog: make([]uint64, w), control: make([]uint64, w)}
	var ids []int32
	for id, p := range pieces {
		v.pieces[id] = slices.Clone(p)
		k := Normal
		if kind != nil {
			k = kind(id)
		}
		switch k {
		case EOG:
			v.eog[id>>6] |= 1 << (id & 63)
			continue
		case Control:
			v.control[id>>6] |= 1 << (id & 63)
		}
		if len(p) > 0 && len(p) < 1<<16 {
			ids = append(ids, int32(id))
		}
	}
	slices.SortFunc(ids, func(a, b int32) int {
		if c := bytes.Compare(pieces[a], pieces[b]); c != 0 {
			return c
		}
		return int(a - b)
	})
	// Sorted order is depth-first order: each piece adds the nodes past its
	// common prefix with the previous one.
	var path []int32 // nodes on the path to the previous piece
	var prev []byte
	for _, id := range ids {
		p := pieces[id]
		l := 0
		for l < len(prev) && l < len(p) && prev[l] == p[l] {
			l++
		}
		for len(path) > l {
			v.skip[path[len(path)-1]] = int32(len(v.tbyte))
			path = path[:len(path)-1]
		}
		for i := l; i < len(p); i++ {
			path = append(path, int32(len(v.tbyte)))
			v.tbyte = append(v.tbyte, p[i])
			v.depth = append(v.depth, uint16(i+1))
			v.skip = append(v.skip, 0)
			v.tok = append(v.tok, -1)
		}
		v.maxDepth = max(v.maxDepth, len(p))
		last := path[len(path)-1]
		switch t := v.tok[last]; {
		case t == -1:
			v.tok[last] = id
		case t >= 0:
			v.extra = append(v.extra, []int32{t, id})
			v.tok[last] = int32(-2 - (len(v.extra) - 1))
		default:
			x := -2 - t
			v.extra[x] = append(v.extra[x], id)
		}
		prev = p
	}
	for len(path) > 0 {
		v.skip[path[len(path)-1]] = int32(len(v.tbyte))
		path = path[:len(path)-1]
	}
	n = len(v.tbyte)
	v.sub = make([]uint64, 4*n)
	v.first = make([]int32, n+1)
	parent := make([]int32, n)
	for i := range n {
		v.first[i] = int32(len(v.order))
		switch t := v.tok[i]; {
		case t >= 0:
			v.order = append(v.order, t)
		case t <= -2:
			v.order = append(v.order, v.extra[-2-t]...)
		}
		parent[i] = -1
	}
	v.first[n] = int32(len(v.order))
	for i := range n { // a node's children follow it, within its skip range
		for j := i + 1; j < int(v.skip[i]); j = int(v.skip[j]) {
			parent[j] = int32(i)
		}
	}
	for i := n - 1; i >= 0; i-- {
		b := v.tbyte[i]
		v.sub[4*i+int(b>>6)] |= 1 << (b & 63)
		if p := parent[i]; p >= 0 {
			for w := range 4 {
				v.sub[4*int(p)+w] |= v.sub[4*i+w]
			}
		}
	}
	return v
}

// Size returns the number of tokens.
func (v *Vocab) Size() int { return v.n }

// Nodes returns the number of trie nodes (for reports).
func (v *Vocab) Nodes() int { return len(v.tbyte) }

// Piece returns the bytes of a token as the trie holds them.
func (v *Vocab) Piece(id int) []byte {
	if id < 0 || id >= v.n {
		return nil
	}
	return v.pieces[id]
}

// IsEOG reports whether a token is an end-of-generation token.
func (v *Vocab) IsEOG(id int) bool { return id >= 0 && id < v.n && v.eog[id>>6]&(1<<(id&63)) != 0 }

// IsControl reports whether a token is a control token (not EOG).
func (v *Vocab) IsControl(id int) bool {
	return id >= 0 && id < v.n && v.control[id>>6]&(1<<(id&63)) != 0
}

// MaskWords is the length in uint64 words of a mask over the vocabulary.
func (v *Vocab) MaskWords() int { return (v.n + 63) / 64 }
