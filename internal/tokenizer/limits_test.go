package tokenizer

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/gguf"
	kvmodels "github.com/kvserve/kvserve/models"
)

// embedded is the embedded default model's tokenizer (no test assets
// needed).
func embedded(t testing.TB) *Tokenizer {
	t.Helper()
	f, err := gguf.Parse(kvmodels.Default())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// A text of B bytes has at least B / MaxTokenBytes tokens; EncodeLimit
// agrees with Encode under the limit and refuses past it — a text that
// cannot fit by its size before any work.
func TestEncodeLimit(t *testing.T) {
	tok := embedded(t)
	L := tok.MaxTokenBytes()
	if L <= 0 {
		t.Fatalf("MaxTokenBytes %d", L)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for range 300 {
		s := randomText(rng, 1+rng.IntN(40))
		if rng.IntN(4) == 0 {
			s = strings.Repeat(s, 1+rng.IntN(50))
		}
		ids := tok.Encode(s, false, rng.IntN(2) == 0)
		if len(ids) < (len(s)+L-1)/L {
			t.Fatalf("%q: %d tokens, fewer than %d bytes / %d", s, len(ids), len(s), L)
		}
		all := tok.Encode(s, true, true)
		if got, ok := tok.EncodeLimit(s, true, true, len(all)); !ok || !slices.Equal(got, all) {
			t.Fatalf("%q: EncodeLimit at its length: %v %v, want %v", s, ok, got, all)
		}
		if _, ok := tok.EncodeLimit(s, true, true, len(all)-1); ok {
			t.Fatalf("%q: EncodeLimit below its length accepted", s)
		}
	}
	// 16 MiB that cannot fit 4096 tokens: refused without work.
	huge := strings.Repeat("a", 16<<20)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, ok := tok.EncodeLimit(huge, true, true, 4096)
	runtime.ReadMemStats(&after)
	if ok {
		t.Fatal("a 16 MiB text fit 4096 tokens")
	}
	if a := after.TotalAlloc - before.TotalAlloc; a > 1<<20 {
		t.Errorf("refusing a 16 MiB text allocated %d bytes", a)
	}
	// A text that fits by its size but not by its tokens stops early.
	spaced := strings.Repeat("a ", 4096*L)
	runtime.ReadMemStats(&before)
	_, ok = tok.EncodeLimit(spaced, false, true, 4096*L-1)
	runtime.ReadMemStats(&after)
	if ok {
		t.Fatal("EncodeLimit accepted too many tokens")
	}
}

// A pathological word (a megabyte of letters) is encoded in bounded
// pieces: the per-word scratch stays small, and the result is the
// concatenation of the pieces' encodings.
func TestLongWordBounded(t *testing.T) {
	tok := embedded(t)
	word := strings.Repeat("ab", 2*maxWordBytes+100) // 4 pieces, one pre-token
	st := encodeState{limit: -1}
	ids := tok.bpeText(word, &st, nil)
	if c := cap(st.bpe.id); c > 2*maxWordBytes {
		t.Errorf("BPE scratch of %d symbols for a %d-byte word", c, len(word))
	}
	var want []int
	for rest := word; rest != ""; {
		k := min(len(rest), maxWordBytes)
		for _, id := range tok.bpeCompute(rest[:k], &st.bpe) {
			want = append(want, int(id))
		}
		rest = rest[k:]
	}
	if !slices.Equal(ids, want) {
		t.Error("a long word's tokens differ from its pieces'")
	}
	if _, ok := tok.cache[word]; ok {
		t.Error("a long word was cached")
	}
}

// The word cache is bounded by bytes: many distinct long words do not
// keep more than maxCacheBytes, and words over maxCachedWord are not kept.
func TestWordCacheBytes(t *testing.T) {
	tok := embedded(t)
	rng := rand.New(rand.NewPCG(2, 2))
	letters := "abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 200)
	ids := make([]int32, 60)
	for i := range 60000 {
		for i := range b {
			b[i] = letters[rng.IntN(len(letters))]
		}
		if i%100 == 0 {
			tok.Encode(" "+string(b), false, false) // through the encoder now and then
		} else {
			tok.cachePut(string(b), ids)
		}
		if tok.cacheBytes > maxCacheBytes {
			t.Fatalf("word cache holds %d bytes, over %d", tok.cacheBytes, maxCacheBytes)
		}
	}
	if len(tok.cache) == 0 || len(tok.cache) > maxCacheBytes/200 {
		t.Errorf("%d words cached", len(tok.cache))
	}
	long := " " + strings.Repeat("z", maxCachedWord+10)
	tok.Encode(long, false, false)
	if _, ok := tok.cache[long]; ok {
		t.Error("a word over maxCachedWord was cached")
	}
}
