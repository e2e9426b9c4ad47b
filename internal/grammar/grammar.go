// Package grammar owns constrained decoding: it compiles GBNF grammars
// (llama.cpp's syntax) and JSON Schemas into a byte-level pushdown
// automaton, and computes, for each decoding step, the set of vocabulary
// tokens whose bytes the grammar allows next.
//
// A Grammar is compiled once per request (Parse, FromJSONSchema); a Vocab
// holds a model's token byte strings as a trie, built once per model and
// shared; a Matcher tracks one sequence: its state is the set of the
// grammar's parse stacks, interned (stacks share their tails, states are
// numbered), so the transition of a state on a byte is computed once and
// then read from a table. Mask walks the vocabulary trie from the current
// state: a byte the grammar rejects prunes the whole subtree below it, and
// the resulting mask is cached per state.
//
// Characters are matched as UTF-8 bytes (character classes are compiled to
// byte sequences), so tokens that hold part of a character are handled
// exactly. End-of-generation tokens are allowed only when the grammar can
// end. Every size (grammar text, rules, elements, repetition counts) and
// every run-time quantity (parse stacks, stack depth, work per step) is
// bounded by Limits: a hostile grammar gets an error naming the limit.
package grammar

import (
	"errors"
	"fmt"
)

// Limits bound a grammar's size and the work of matching it. Zero fields
// take the defaults of DefaultLimits.
type Limits struct {
	MaxSourceBytes int // grammar text
	MaxRepetition  int // the largest count in {m,n}
	MaxElements    int // compiled elements (after expanding repetitions and classes)
	MaxStacks      int // parse stacks alive at once
	MaxStackDepth  int // nesting depth of one parse stack
	MaxStates      int // states a Matcher keeps cached before it starts afresh
	MaxStepWork    int // stack expansions one Accept or Mask may do
}

// DefaultLimits are the limits used when a field of Limits is zero.
var DefaultLimits = Limits{
	MaxSourceBytes: 1 << 20,
	MaxRepetition:  2000,
	MaxElements:    1 << 20,
	MaxStacks:      2048,
	MaxStackDepth:  2048,
	MaxStates:      1 << 16,
	MaxStepWork:    1 << 24,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.MaxSourceBytes, d.MaxSourceBytes)
	set(&l.MaxRepetition, d.MaxRepetition)
	set(&l.MaxElements, d.MaxElements)
	set(&l.MaxStacks, d.MaxStacks)
	set(&l.MaxStackDepth, d.MaxStackDepth)
	set(&l.MaxStates, d.MaxStates)
	set(&l.MaxStepWork, d.MaxStepWork)
	return l
}

// ErrLimit is wrapped by every error caused by a limit of Limits.
var ErrLimit = errors.New("grammar too large or too complex")

// Error is a grammar or schema that does not compile: Msg names the
// problem; Line and Col (1-based, 0 when unknown) locate it in GBNF text.
type Error struct {
	Line, Col int
	Msg       string
	limit     bool
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Col, e.Msg)
	}
	return e.Msg
}

// Unwrap makes errors.Is(err, ErrLimit) true for limit errors.
func (e *Error) Unwrap() error {
	if e.limit {
		return ErrLimit
	}
	return nil
}

func limitErr(format string, args ...any) error {
	return &Error{Msg: fmt.Sprintf(format, args...), limit: true}
}

// element kinds of the compiled grammar.
const (
	kEnd   uint8 = iota // end of an alternative
	kBytes              // one byte from a set
	kRef                // a rule
)

type elem struct {
	kind uint8
	arg  int32 // kBytes: byte-set index; kRef: rule index
}

// byteSet is a set of byte values.
type byteSet [4]uint64

func (s *byteSet) add(lo, hi byte) {
	for c := int(lo); c <= int(hi); c++ {
		s[c>>6] |= 1 << (c & 63)
	}
}

func (s *byteSet) has(c byte) bool { return s[c>>6]&(1<<(c&63)) != 0 }

func (s *byteSet) empty() bool { return s[0]|s[1]|s[2]|s[3] == 0 }

// Grammar is a compiled grammar. It is immutable and safe for concurrent
// use; each sequence matches it with its own Matcher.
type Grammar struct {
	src    string
	elems  []elem    // alternatives, each ended by kEnd
	rules  [][]int32 // rule -> start element of each alternative
	names  []string  // rule names (generated ones included)
	sets   []byteSet
	root   int32
	limits Limits

	// Byte classes: bytes no set tells apart share a class.
	classOf    [256]uint8
	nClasses   int
	classRep   []byte      // one byte of each class
	classBytes [][4]uint64 // the bytes of each class
}

// Source returns the grammar's GBNF text (for a JSON Schema, the grammar it
// was compiled to).
func (g *Grammar) Source() string { return g.src }

// Size returns the number of compiled rules (generated ones included) and
// elements, for diagnostics.
func (g *Grammar) Size() (rules, elements int) { return len(g.rules), len(g.elems) }
