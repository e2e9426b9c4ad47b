package grammar

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/tokenizer"
	"github.com/kvserve/kvserve/models"
)

// refStacks is a reference matcher written the plain way: explicit parse
// stacks (element positions, top last) copied at every step, no interning,
// no transition tables, no trie. The mask tests check Matcher against it.
type refStacks [][]int32

func refKey(st []int32) string {
	b := make([]byte, 0, 4*len(st))
	for _, x := range st {
		b = binary.LittleEndian.AppendUint32(b, uint32(x))
	}
	return string(b)
}

// refClose adds to out the stacks st becomes once its top is a byte set
// (or st is empty: the grammar matched).
func refClose(g *Grammar, st []int32, out map[string][]int32, seen map[string]bool) {
	if len(st) == 0 {
		out[""] = []int32{}
		return
	}
	top := st[len(st)-1]
	e := g.elems[top]
	switch e.kind {
	case kEnd:
		refClose(g, st[:len(st)-1], out, seen)
	case kBytes:
		if !g.sets[e.arg].empty() {
			out[refKey(st)] = st
		}
	case kRef:
		k := refKey(st)
		if seen[k] {
			return
		}
		seen[k] = true
		base := slices.Clone(st[:len(st)-1])
		if g.elems[top+1].kind != kEnd {
			base = append(base, top+1)
		}
		for _, a := range g.rules[e.arg] {
			refClose(g, append(slices.Clone(base), a), out, seen)
		}
	}
}

func refInit(g *Grammar) refStacks {
	out := map[string][]int32{}
	seen := map[string]bool{}
	for _, a := range g.rules[g.root] {
		refClose(g, []int32{a}, out, seen)
	}
	return refCollect(out)
}

func refCollect(out map[string][]int32) refStacks {
	keys := make([]string, 0, len(out))
	for k := range out {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var r refStacks
	for _, k := range keys {
		r = append(r, out[k])
	}
	return r
}

func refAdvance(g *Grammar, stacks refStacks, b byte) refStacks {
	out := map[string][]int32{}
	seen := map[string]bool{}
	for _, st := range stacks {
		if len(st) == 0 {
			continue
		}
		top := st[len(st)-1]
		if g.sets[g.elems[top].arg].has(b) {
			next := append(slices.Clone(st[:len(st)-1]), top+1)
			refClose(g, next, out, seen)
		}
	}
	return refCollect(out)
}

func refAccepting(s refStacks) bool {
	for _, st := range s {
		if len(st) == 0 {
			return true
		}
	}
	return false
}

// refAllowed checks one token by feeding its bytes to the reference.
func refAllowed(g *Grammar, v *Vocab, s refStacks, id int, special bool) bool {
	if v.IsEOG(id) {
		return refAccepting(s)
	}
	if v.IsControl(id) && !special {
		return false
	}
	p := v.Piece(id)
	if len(p) == 0 {
		return false
	}
	for _, b := range p {
		if s = refAdvance(g, s, b); len(s) == 0 {
			return false
		}
	}
	return true
}

func has(mask []uint64, id int) bool { return mask[id>>6]&(1<<(id&63)) != 0 }

var maskGrammars = []struct{ name, src string }{
	{"arithmetic", arithGBNF},
	{"free JSON", AnyJSONGBNF},
	{"schema", mustSchemaGBNF(`{"type":"object","properties":{"name":{"type":"string","maxLength":12},"n":{"type":"integer","minimum":-50,"maximum":5000},"ok":{"type":"boolean"},"tags":{"type":"array","items":{"enum":["a b","é","x\"y"]},"maxItems":4},"when":{"type":"string","format":"date"},"code":{"type":"string","pattern":"^[A-Z][a-z0-9_]{1,6}$"}},"required":["name","n"]}`)},
	{"utf-8 and repetition", `root ::= ([à-ÿ] | [一-龥] | "ab"{2,3} | [^a-z\n]) {1,12} "."`},
	{"nullable loops", "root ::= (x* \"-\")+ y\nx ::= \"ab\"? | \"c\"\ny ::= \"\" | \"end\""},
}

func mustSchemaGBNF(s string) string {
	src, err := JSONSchemaGBNF([]byte(s))
	if err != nil {
		panic(err)
	}
	return src
}

// checkMasks runs random walks through each grammar: at every step the
// Matcher's mask must equal the reference's verdict on every token; then a
// random allowed token (sometimes a random byte string through
// AcceptBytes) advances both.
func checkMasks(t *testing.T, v *Vocab, walks, steps int, special bool) {
	rng := rand.New(rand.NewPCG(1, 2))
	skips := 0
	defer func() {
		// The walks went through JSON strings, where whole subtrees are
		// allowed without being walked: that path was checked too.
		if skips == 0 {
			t.Error("no subtree was allowed whole")
		}
	}()
	for _, mg := range maskGrammars {
		g, err := Parse(mg.src, Limits{})
		if err != nil {
			t.Fatalf("%s: %v", mg.name, err)
		}
		for w := range walks {
			m, err := g.NewMatcher(v, special)
			if err != nil {
				t.Fatal(err)
			}
			ref := refInit(g)
			for step := range steps {
				mask, err := m.Mask()
				if err != nil {
					t.Fatalf("%s walk %d step %d: %v", mg.name, w, step, err)
				}
				var allowed []int
				for id := range v.Size() {
					want := refAllowed(g, v, ref, id, special)
					if has(mask, id) != want {
						t.Fatalf("%s walk %d step %d: token %d %q: mask %v, reference %v", mg.name, w, step, id, v.Piece(id), !want, want)
					}
					if want && !v.IsEOG(id) {
						allowed = append(allowed, id)
					}
				}
				if m.CanEnd() != refAccepting(ref) {
					t.Fatalf("%s: CanEnd %v, reference %v", mg.name, m.CanEnd(), refAccepting(ref))
				}
				if m.Done() != (len(ref) == 1 && len(ref[0]) == 0) {
					t.Fatalf("%s: Done %v, reference stacks %v", mg.name, m.Done(), ref)
				}
				skips += m.Stats().WholeSkips
				if len(allowed) == 0 {
					break
				}
				id := allowed[rng.IntN(len(allowed))]
				if err := m.Accept(id); err != nil {
					t.Fatalf("%s: Accept(%d) of an allowed token: %v", mg.name, id, err)
				}
				for _, b := range v.Piece(id) {
					ref = refAdvance(g, ref, b)
				}
				// A disallowed token is refused and leaves the state as it was.
				for range 3 {
					bad := rng.IntN(v.Size())
					if !refAllowed(g, v, ref, bad, special) && !v.IsEOG(bad) {
						before := m.cur
						if m.Accept(bad) == nil {
							t.Fatalf("%s: Accept(%d) of a disallowed token succeeded", mg.name, bad)
						}
						if m.cur != before {
							t.Fatalf("%s: a refused token changed the state", mg.name)
						}
					}
				}
			}
		}
	}
}

// A small vocabulary: every byte, and random strings of bytes and of
// pieces of the grammars' own alphabet (so long tokens get far), including
// partial UTF-8, duplicates, an EOG and a control token.
func smallVocab() *Vocab {
	rng := rand.New(rand.NewPCG(7, 7))
	alphabet := []string{"{", "}", "[", "]", `"`, ":", ",", " ", "\n", "name", "n", "ok", "true", "false", "null", "-", "1", "23", "0", ".", "e", "a", "b", "c", "ab", "é", "\xc3", "\xa9", "一", "\xe4\xb8", "x", "A", "Z", "_", "=", "+", "(", ")", "end", `\`, "tags", "2024-", "01", "\t"}
	var pieces [][]byte
	for b := range 256 {
		pieces = append(pieces, []byte{byte(b)})
	}
	for range 1500 {
		var p []byte
		for range 1 + rng.IntN(5) {
			p = append(p, alphabet[rng.IntN(len(alphabet))]...)
		}
		pieces = append(pieces, p)
	}
	pieces = append(pieces, []byte(`"name"`), []byte(`"name"`), []byte("<eos>"), []byte("<ctl>"), nil)
	n := len(pieces)
	return NewVocab(pieces, func(id int) TokenKind {
		switch id {
		case n - 3:
			return EOG
		case n - 2:
			return Control
		}
		return Normal
	})
}

func TestMaskSmallVocab(t *testing.T) {
	v := smallVocab()
	checkMasks(t, v, 4, 40, false)
	checkMasks(t, v, 1, 20, true)
}

// modelVocab is kvtest-27m's vocabulary (the embedded model), as the
// engine builds it: each token's piece with special tokens rendered.
func modelVocab(t testing.TB) (*Vocab, *tokenizer.Tokenizer) {
	b := models.Default()
	f, err := gguf.Parse(append([]byte(nil), b...))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	pieces := make([][]byte, tok.VocabSize())
	for id := range pieces {
		pieces[id] = tok.Piece(id, true)
	}
	return NewVocab(pieces, func(id int) TokenKind {
		switch {
		case tok.IsEOG(id):
			return EOG
		case tok.TokenType(id) == tokenizer.TypeControl:
			return Control
		}
		return Normal
	}), tok
}

func TestMaskModelVocab(t *testing.T) {
	v, _ := modelVocab(t)
	steps := 25
	if testing.Short() {
		steps = 8
	}
	checkMasks(t, v, 2, steps, false)
}
