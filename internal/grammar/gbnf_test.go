package grammar

import (
	"errors"
	"strings"
	"testing"
)

// byteVocab has one token per byte value, so any text can be fed.
var byteVocab = func() *Vocab {
	pieces := make([][]byte, 256)
	for i := range pieces {
		pieces[i] = []byte{byte(i)}
	}
	return NewVocab(pieces, nil)
}()

// matches reports whether g accepts exactly s.
func matches(t *testing.T, g *Grammar, s string) bool {
	t.Helper()
	m, err := g.NewMatcher(byteVocab, false)
	if err != nil {
		t.Fatal(err)
	}
	return m.AcceptBytes([]byte(s)) == nil && m.CanEnd()
}

const arithGBNF = `# arithmetic, as in llama.cpp's grammars/arithmetic.gbnf
root  ::= (expr "=" ws term "\n")+
expr  ::= term ([-+*/] term)*
term  ::= ident | num | "(" ws expr ")" ws
ident ::= [a-z] [a-z0-9_]* ws
num   ::= [0-9]+ ws
ws    ::= [ \t\n]*
`

func TestParseValid(t *testing.T) {
	cases := []struct {
		name, g string
		ok, bad []string
	}{
		{"arithmetic", arithGBNF, []string{"1+2= 3\n", "(a+b)*c= x1\n", "x= y\nz= 2\n"}, []string{"", "1+2=3", "1+=3\n", "A= 1\n"}},
		{"literal and alternatives", `root ::= "yes" | "no" | "maybe"`, []string{"yes", "no", "maybe"}, []string{"", "ye", "yesno", "Yes"}},
		{"repetitions", `root ::= "a"{2} "b"{1,3} "c"{2,} "d"?`, []string{"aabcc", "aabbbccccd"}, []string{"abcc", "aabbbbcc", "aabc", "aabccdd"}},
		{"repeated group", `root ::= ("ab" | "c"){0,2}`, []string{"", "ab", "cab", "cc"}, []string{"abcab", "a"}},
		{"nullable star", "root ::= x* \"!\"\nx ::= \"a\"?", []string{"!", "aaa!"}, []string{"a", "b!"}},
		{"classes", `root ::= [a-c0-2] [^a-z] .`, []string{"a0é", "2Zx", "bé\n"}, []string{"d00", "aaa", "a0"}},
		{"utf-8 ranges", `root ::= [é-ë]+ [^\x00-\x7F] [\U0001F600]`, []string{"éêë€😀", "é😀😀"}, []string{"e€😀", "é€😁"}},
		{"escapes", `root ::= "\x41\u00e9\t\n\r\\\"\[\]"`, []string{"Aé\t\n\r\\\"[]"}, []string{"A"}},
		{"multi-line with comments", "root ::= ( # a group\n  \"a\" |\n  \"b\" # the second\n)\n# trailing comment", []string{"a", "b"}, []string{"ab"}},
		{"alternative after | on the next line", "root ::= \"a\" |\n  \"b\"", []string{"a", "b"}, []string{""}},
		{"tail recursion", "root ::= item\nitem ::= \"x\" item | \"y\"", []string{"y", "xxxy"}, []string{"x"}},
		{"nested recursion", "root ::= \"(\" root \")\" | \"\"", []string{"", "()", "((()))"}, []string{"(()", ")("}},
		{"dead alternatives pruned", "root ::= \"a\" dead | \"a\" \"b\" | [] \"c\"\ndead ::= \"x\" dead", []string{"ab"}, []string{"a", "ax", "c"}},
	}
	for _, c := range cases {
		g, err := Parse(c.g, Limits{})
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		for _, s := range c.ok {
			if !matches(t, g, s) {
				t.Errorf("%s: %q rejected", c.name, s)
			}
		}
		for _, s := range c.bad {
			if matches(t, g, s) {
				t.Errorf("%s: %q accepted", c.name, s)
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		g, want string
		limit   bool
	}{
		{`root ::= "a`, `line 1, column 10: unterminated string literal`, false},
		{`root ::= [a-`, `unterminated character class`, false},
		{`root ::= foo`, `line 1, column 10: undefined rule "foo"`, false},
		{`foo ::= "a"`, `the grammar has no rule named "root"`, false},
		{"root ::= \"a\"\nroot ::= \"b\"", `line 2, column 1: rule "root" is defined more than once`, false},
		{`root ::= ( "a"`, `expecting ')' to close the group opened at line 1, found the end of the grammar`, false},
		{`root ::= "a" )`, `unbalanced ')'`, false},
		{`root ::= *`, `repetition '*' has no preceding item`, false},
		{`root ::= "a"{3,2}`, `repetition {3,2}: the maximum is below the minimum`, false},
		{`root ::= "a"{5000}`, `repetition count 5000 is over the limit of 2000`, true},
		{`root ::= "\q"`, `unknown escape \q`, false},
		{`root ::= [z-a]`, `invalid range 'z'-'a' in a character class`, false},
		{`root ::= root "a" | "b"`, `left recursion in rule "root"`, false},
		{"root ::= x \"a\"\nx ::= y\ny ::= \"\" | root", `left recursion in rule`, false},
		{`root ::= <[123]>`, `token references (<...>, !<...>) are not supported`, false},
		{`root ::= "\xZZ"`, `expecting 2 hex digits after \x`, false},
		{`root ::= "\uD800"`, `is not a Unicode scalar value`, false},
		{`root "a"`, `expecting ::= after rule name "root", found '"'`, false},
		{`root ::= []`, `the grammar matches nothing`, false},
		{`::= "a"`, `line 1, column 1: expecting a rule name, found ':'`, false},
		{`root ::= "a" "b" = "c"`, `unexpected '=' in rule "root"`, false},
		{"root ::= x\nx ::= x", `the grammar matches nothing`, false},
		{"root ::= \"a\" x\nx ::= \"b\" x", `the grammar matches nothing`, false},
		{string([]byte{'r', 'o', 'o', 't', ' ', ':', ':', '=', ' ', '"', 0xff, '"'}), `not valid UTF-8`, false},
	}
	for _, c := range cases {
		_, err := Parse(c.g, Limits{})
		if err == nil {
			t.Errorf("%q: no error, want %q", c.g, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %q, want it to contain %q", c.g, err, c.want)
		}
		if errors.Is(err, ErrLimit) != c.limit {
			t.Errorf("%q: errors.Is(ErrLimit) = %v, want %v", c.g, !c.limit, c.limit)
		}
	}
	// The element limit: repetitions are expanded.
	if _, err := Parse(`root ::= "a"{2000} "b"{2000} "c"{2000}`, Limits{MaxElements: 5000}); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "more than 5000 elements") {
		t.Errorf("element limit: %v", err)
	}
	// Nested repetitions stay linear in size.
	if g, err := Parse(`root ::= ((("a"{100}){100}){100}){100}`, Limits{}); err != nil {
		t.Errorf("nested repetitions: %v", err)
	} else if _, n := g.Size(); n > 10000 {
		t.Errorf("nested repetitions: %d elements", n)
	}
	// The source size limit.
	if _, err := Parse(`root ::= "`+strings.Repeat("a", 100)+`"`, Limits{MaxSourceBytes: 64}); !errors.Is(err, ErrLimit) {
		t.Errorf("source limit: %v", err)
	}
}

// Run-time limits: an ambiguous grammar multiplies parse stacks, deep
// nesting deepens them; both end in an ErrLimit error, not a hang.
func TestRuntimeLimits(t *testing.T) {
	// After k letters a, 2^k stacks (each frame expects b or c).
	g, err := Parse(`root ::= "a" root "b" | "a" root "c" | ""`, Limits{MaxStacks: 64})
	if err != nil {
		t.Fatal(err)
	}
	m, err := g.NewMatcher(byteVocab, false)
	if err != nil {
		t.Fatal(err)
	}
	var lerr error
	for range 200 {
		if lerr = m.AcceptBytes([]byte("a")); lerr != nil {
			break
		}
	}
	if !errors.Is(lerr, ErrLimit) || !strings.Contains(lerr.Error(), "parse stacks") {
		t.Errorf("stack limit: %v", lerr)
	}
	g, err = Parse(`root ::= "(" root ")" | "x"`, Limits{MaxStackDepth: 50})
	if err != nil {
		t.Fatal(err)
	}
	m, _ = g.NewMatcher(byteVocab, false)
	if err := m.AcceptBytes([]byte(strings.Repeat("(", 40))); err != nil {
		t.Fatalf("depth 40: %v", err)
	}
	if err := m.AcceptBytes([]byte(strings.Repeat("(", 20))); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "deeper than 50") {
		t.Errorf("depth limit: %v", err)
	}
	// Mask reports the limit too.
	m, _ = g.NewMatcher(byteVocab, false)
	m.AcceptBytes([]byte(strings.Repeat("(", 50)))
	if _, err := m.Mask(); !errors.Is(err, ErrLimit) {
		t.Errorf("mask at the depth limit: %v", err)
	}
}

// A Matcher that exceeds MaxStates starts its caches afresh and goes on
// matching the same language.
func TestStateCacheReset(t *testing.T) {
	g, err := Parse(`root ::= "(" root ")" | [a-z]*`, Limits{MaxStates: 40})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := g.NewMatcher(byteVocab, false)
	text := strings.Repeat("(", 60) + "abc" + strings.Repeat(")", 60)
	for i := range len(text) {
		if err := m.AcceptBytes([]byte{text[i]}); err != nil {
			t.Fatalf("byte %d: %v", i, err)
		}
		if len(m.m.states) > 40+64 {
			t.Fatalf("%d states cached", len(m.m.states))
		}
	}
	if !m.CanEnd() || !m.Done() {
		t.Errorf("complete text: CanEnd %v Done %v", m.CanEnd(), m.Done())
	}
	if m.AcceptBytes([]byte(")")) == nil {
		t.Error("an extra ) was accepted")
	}
}

// Alternatives that can never complete are removed, so the matcher never
// accepts a prefix it cannot finish.
func TestDeadEndsPruned(t *testing.T) {
	g := MustParse("root ::= \"a\" dead | \"a\" \"b\"\ndead ::= \"x\" dead")
	m, _ := g.NewMatcher(byteVocab, false)
	if err := m.AcceptBytes([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if m.AcceptBytes([]byte("x")) == nil {
		t.Error(`"ax" accepted: a dead end`)
	}
}
