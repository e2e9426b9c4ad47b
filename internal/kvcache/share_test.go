package kvcache

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
)

// snapshot copies every page's bytes of a sequence.
func snapshot(c *Cache, seq int) [][]byte {
	var out [][]byte
	for l := range c.seqs[seq] {
		for _, s := range c.seqs[seq][l].streams() {
			for _, p := range s.pages {
				out = append(out, append([]byte(nil), p.mem.b...))
			}
		}
	}
	return out
}

// distinctBytes adds up the bytes of every distinct page.
func distinctBytes(c *Cache) int64 {
	seen := map[*Page]bool{}
	var b int64
	for s := range c.seqs {
		for l := range c.seqs[s] {
			for _, st := range c.seqs[s][l].streams() {
				for _, p := range st.pages {
					if p != nil && !seen[p] {
						seen[p] = true
						b += int64(p.Bytes())
					}
				}
			}
		}
	}
	return b
}

// Shared prefix pages: counted once, copied on write (a rollback into a
// shared page, a context shift), converted once for every holder, and
// freed when the last holder lets go; attention over a shared prefix is
// that over the donor's.
func TestSharePrefix(t *testing.T) {
	const P = 16
	c := testCache(t, tensor.F16, tensor.F16, true, 3, 256, P)
	r := rand.New(rand.NewPCG(5, 6))
	fill(c, 0, 40, r) // pages 0, 1 full; page 2 partial
	before := c.Bytes()
	if n := c.SharePrefix(1, 0, 3); n != 0 {
		t.Fatalf("shared %d positions of a partial page", n)
	}
	if n := c.SharePrefix(1, 0, 2); n != 2*P || c.Len(1) != 2*P {
		t.Fatalf("SharePrefix: %d positions, Len %d", n, c.Len(1))
	}
	if c.Bytes() != before || c.Bytes() != distinctBytes(c) {
		t.Fatalf("sharing changed the bytes: %d → %d (distinct %d)", before, c.Bytes(), distinctBytes(c))
	}
	if h := c.Holders(PageRef{Seq: 1, Layer: 1, V: true, Index: 1}); h != 2 {
		t.Fatalf("holders %d", h)
	}
	if got := c.Canonical(PageRef{Seq: 1, Layer: 1, Index: 1}); got.Seq != 0 {
		t.Fatalf("canonical %+v", got)
	}
	if b, n := c.SharedBytes(); n != 2*2*2 || b != before*2/3 {
		t.Fatalf("shared: %d pages, %d bytes (of %d)", n, b, before)
	}
	// Attention of seq 1 over its shared prefix equals seq 0's over the same positions.
	q := randRow(r, 2*64, 1)
	for h := 0; h < 2; h++ {
		a, b := naiveAttention(c, 1, 0, 2*P-1, h, q), naiveAttention(c, 1, 1, 2*P-1, h, q)
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("head %d: attention differs at %d", h, i)
			}
		}
	}

	// Rolling seq 1 back into page 1 and writing there copies the page:
	// seq 0's bytes stay as they were.
	orig := snapshot(c, 0)
	c.Truncate(1, P+3)
	for l := 0; l < 2; l++ {
		c.Store(l, 1, P+3, randRow(r, c.rowK, 1), randRow(r, c.rowV, 1))
	}
	for i, b := range snapshot(c, 0) {
		if !bytes.Equal(b, orig[i]) {
			t.Fatalf("a write to seq 1 changed seq 0's page %d", i)
		}
	}
	if c.Holders(PageRef{Seq: 0, Layer: 0, Index: 1}) != 1 || c.Holders(PageRef{Seq: 0, Layer: 0, Index: 0}) != 2 {
		t.Fatal("copy on write did not unshare page 1 only")
	}
	if c.Bytes() != distinctBytes(c) {
		t.Fatalf("bytes %d, distinct pages %d", c.Bytes(), distinctBytes(c))
	}

	// A plan over both sequences converts a shared page once; converting
	// changes it for both holders; the bytes stay exact.
	steps, _, err := c.Plan(Target{K: typ(tensor.Q8_0)})
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * (3 + 1); len(steps) != want { // per layer: seq 0's 3 pages, seq 1's own page 1 (page 0 is shared)
		t.Fatalf("%d steps, want %d", len(steps), want)
	}
	for _, st := range steps {
		if !c.ConvertPage(st) {
			t.Fatalf("step %+v not converted", st)
		}
	}
	if typ1, _, _ := c.Page(PageRef{Seq: 1, Layer: 0, Index: 0}); typ1 != tensor.Q8_0 {
		t.Fatalf("seq 1's shared page is %s after converting seq 0's", typ1)
	}
	if c.Bytes() != distinctBytes(c) {
		t.Fatalf("after conversion: bytes %d, distinct pages %d", c.Bytes(), distinctBytes(c))
	}

	// A context shift of seq 2 sharing seq 0's prefix leaves seq 0 alone.
	if n := c.SharePrefix(2, 0, 2); n != 2*P {
		t.Fatalf("SharePrefix into seq 2: %d", n)
	}
	orig = snapshot(c, 0)
	if err := c.Shift(2, 4, 8, func(int, []float32, int) {}); err != nil {
		t.Fatal(err)
	}
	for i, b := range snapshot(c, 0) {
		if !bytes.Equal(b, orig[i]) {
			t.Fatalf("a shift of seq 2 changed seq 0's page %d", i)
		}
	}
	if c.Bytes() != distinctBytes(c) {
		t.Fatalf("after the shift: bytes %d, distinct pages %d", c.Bytes(), distinctBytes(c))
	}

	// The last holder frees a page.
	c.Clear(0)
	if c.Len(1) != P+4 || c.Bytes() != distinctBytes(c) {
		t.Fatalf("after clearing seq 0: len %d, bytes %d, distinct %d", c.Len(1), c.Bytes(), distinctBytes(c))
	}
	c.Clear(1)
	c.Clear(2)
	if c.Bytes() != 0 {
		t.Fatalf("%d bytes left", c.Bytes())
	}
}
