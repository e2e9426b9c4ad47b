package kvcache

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
)

// A sequence file restores into another page size and other types: each
// position's rows come out exactly as a live requantization of the
// original to those types stores them (same bytes), whatever the pages'
// sizes; without types the rows keep the file's types and bytes.
func TestRestoreRepacks(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	src := testCache(t, tensor.F16, tensor.F16, true, 1, 512, 16)
	fill(src, 0, 150, r)
	var file bytes.Buffer
	if err := src.WriteSeq(0, &file); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		page    int
		k, v    *tensor.Type
		convert *Target // what the original is converted by, to compare
	}{
		{"f16 into 64-token pages", 64, nil, nil, nil},
		{"q8_0/q4_0 into 64-token pages", 64, typ(tensor.Q8_0), typ(tensor.Q4_0), &Target{K: typ(tensor.Q8_0), V: typ(tensor.Q4_0)}},
		{"q5_0 into 8-token pages", 8, typ(tensor.Q5_0), typ(tensor.Q5_0), &Target{K: typ(tensor.Q5_0), V: typ(tensor.Q5_0)}},
		{"q8_0 same page size", 16, typ(tensor.Q8_0), typ(tensor.Q8_0), &Target{K: typ(tensor.Q8_0), V: typ(tensor.Q8_0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := testCache(t, tensor.F16, tensor.F16, true, 1, 512, 16)
			if _, err := want.ReadSeq(0, bytes.NewReader(file.Bytes())); err != nil {
				t.Fatal(err)
			}
			if tc.convert != nil {
				convertAll(t, want, *tc.convert)
			}
			got := testCache(t, tensor.F16, tensor.F16, true, 1, 512, tc.page)
			n, err := got.ReadSeqAs(0, bytes.NewReader(file.Bytes()), RestoreOptions{K: tc.k, V: tc.v})
			if err != nil || n != 150 {
				t.Fatalf("ReadSeqAs: %d, %v", n, err)
			}
			if got.Bytes() != int64((150+tc.page-1)/tc.page)*int64(tc.page)*want.Bytes()/int64((150+15)/16*16) {
				t.Errorf("bytes %d for %d-token pages (want %d at 16)", got.Bytes(), tc.page, want.Bytes())
			}
			for l := 0; l < 2; l++ {
				for side := 0; side < 2; side++ {
					sg, sw := got.seqs[0][l].streams()[side], want.seqs[0][l].streams()[side]
					for pos := 0; pos < 150; pos++ {
						if sg.pages[pos/tc.page].Rotated != sw.pages[pos/16].Rotated || sg.pages[pos/tc.page].Type != sw.pages[pos/16].Type {
							t.Fatalf("layer %d side %d pos %d: page type/rotation differ", l, side, pos)
						}
						for h := 0; h < 2; h++ {
							if !bytes.Equal(headBytes(got, sg, pos, h, 64), headBytes(want, sw, pos, h, 64)) {
								t.Fatalf("layer %d side %d pos %d head %d: bytes differ", l, side, pos, h)
							}
						}
					}
				}
			}
		})
	}
}

// WriteSeqAs converts pages down on the way out (the disk tier's
// --cache-spill-type): the file holds exactly what a live requantization
// of the original to those types holds, pages already smaller are written
// as stored, and the cache itself is unchanged.
func TestWriteSeqAsConvertsDown(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	src := testCache(t, tensor.F16, tensor.F16, true, 1, 512, 16)
	fill(src, 0, 150, r)
	convertAll(t, src, Target{Layers: []int{1}, K: typ(tensor.Q4_0), V: typ(tensor.Q4_0)}) // layer 1 already below q8_0
	before := src.Bytes()
	var orig, down bytes.Buffer
	if err := src.WriteSeq(0, &orig); err != nil {
		t.Fatal(err)
	}
	if err := src.WriteSeqAs(0, &down, typ(tensor.Q8_0), typ(tensor.Q8_0)); err != nil {
		t.Fatal(err)
	}
	if src.Bytes() != before {
		t.Fatalf("the cache's bytes changed: %d, were %d", src.Bytes(), before)
	}
	var again bytes.Buffer
	src.WriteSeq(0, &again)
	if !bytes.Equal(again.Bytes(), orig.Bytes()) {
		t.Fatal("WriteSeqAs changed the cache")
	}
	if down.Len() >= orig.Len() {
		t.Fatalf("converted file %d bytes, original %d", down.Len(), orig.Len())
	}
	want := testCache(t, tensor.F16, tensor.F16, true, 1, 512, 16)
	want.ReadSeq(0, bytes.NewReader(orig.Bytes()))
	convertAll(t, want, Target{Layers: []int{0}, K: typ(tensor.Q8_0), V: typ(tensor.Q8_0)})
	var wantFile bytes.Buffer
	want.WriteSeq(0, &wantFile)
	if !bytes.Equal(down.Bytes(), wantFile.Bytes()) {
		t.Fatal("the converted file differs from a live requantization's")
	}
}

// Slot save/restore keeps per-layer types (each layer's pages at its own
// type, as per-layer cold tiers leave them): restored as saved, repacked
// into another page size (each new page takes the type of the file page
// its first position comes from), and converted per layer
// (RestoreOptions.LayersK/LayersV, the disk tier's load under a budget with
// per-layer cold types) — byte for byte what a live per-layer conversion
// of the original makes. Per-layer types of the wrong count or a type that
// does not fit the head are refused.
func TestRestoreLayerTypes(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	mk := func(page int, tk, tv []tensor.Type) *Cache {
		c, err := New(Config{Layers: 2, KVHeads: 2, HeadDimK: 64, HeadDimV: 64, Seqs: 1, Ctx: 512,
			PageTokens: page, Threads: 2, TypeK: tk, TypeV: tv, Rotate: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	tk := []tensor.Type{tensor.CB3, tensor.Q5_0}
	tv := []tensor.Type{tensor.CB4, tensor.Q8_0}
	src := mk(16, tk, tv)
	fill(src, 0, 150, r)
	var file bytes.Buffer
	if err := src.WriteSeq(0, &file); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, got *Cache, page int, want *Cache, wk, wv []tensor.Type) {
		t.Helper()
		for l := 0; l < 2; l++ {
			for side := 0; side < 2; side++ {
				wt := wk[l]
				if side == 1 {
					wt = wv[l]
				}
				sg, sw := got.seqs[0][l].streams()[side], want.seqs[0][l].streams()[side]
				for pos := 0; pos < 150; pos++ {
					if pt := sg.pages[pos/page].Type; pt != wt {
						t.Fatalf("layer %d side %d pos %d: page type %s, want %s", l, side, pos, pt, wt)
					}
					for h := 0; h < 2; h++ {
						if !bytes.Equal(headBytes(got, sg, pos, h, 64), headBytes(want, sw, pos, h, 64)) {
							t.Fatalf("layer %d side %d pos %d head %d: bytes differ", l, side, pos, h)
						}
					}
				}
			}
		}
	}
	t.Run("as saved", func(t *testing.T) {
		got := mk(16, uniform(2, tensor.F16), uniform(2, tensor.F16))
		if n, err := got.ReadSeq(0, bytes.NewReader(file.Bytes())); err != nil || n != 150 {
			t.Fatalf("ReadSeq: %d, %v", n, err)
		}
		check(t, got, 16, src, tk, tv)
		if got.Bytes() != src.Bytes() {
			t.Errorf("bytes %d, want %d", got.Bytes(), src.Bytes())
		}
	})
	t.Run("repacked into 64-token pages", func(t *testing.T) {
		got := mk(64, uniform(2, tensor.F16), uniform(2, tensor.F16))
		if n, err := got.ReadSeqAs(0, bytes.NewReader(file.Bytes()), RestoreOptions{}); err != nil || n != 150 {
			t.Fatalf("ReadSeqAs: %d, %v", n, err)
		}
		check(t, got, 64, src, tk, tv)
	})
	t.Run("converted per layer", func(t *testing.T) {
		lk := []tensor.Type{tensor.CB3, tensor.CB4} // layer 0 as saved, layer 1 down
		lv := []tensor.Type{tensor.CB3, tensor.Q5_0}
		want := mk(16, uniform(2, tensor.F16), uniform(2, tensor.F16))
		if _, err := want.ReadSeq(0, bytes.NewReader(file.Bytes())); err != nil {
			t.Fatal(err)
		}
		for l := 0; l < 2; l++ {
			convertAll(t, want, Target{K: typ(lk[l]), V: typ(lv[l]), Layers: []int{l}})
		}
		got := mk(64, uniform(2, tensor.F16), uniform(2, tensor.F16))
		// LayersK/LayersV take precedence over K/V.
		n, err := got.ReadSeqAs(0, bytes.NewReader(file.Bytes()), RestoreOptions{K: typ(tensor.Q4_0), LayersK: lk, LayersV: lv})
		if err != nil || n != 150 {
			t.Fatalf("ReadSeqAs: %d, %v", n, err)
		}
		check(t, got, 64, want, lk, lv)
	})
	t.Run("errors", func(t *testing.T) {
		got := mk(16, uniform(2, tensor.F16), uniform(2, tensor.F16))
		for _, o := range []RestoreOptions{
			{LayersK: []tensor.Type{tensor.Q8_0}},
			{LayersV: []tensor.Type{tensor.Q8_0, tensor.Q8_0, tensor.Q8_0}},
			{LayersK: []tensor.Type{tensor.Q8_0, tensor.Q4_K}},
		} {
			if _, err := got.ReadSeqAs(0, bytes.NewReader(file.Bytes()), o); err == nil {
				t.Errorf("%+v: no error", o)
			} else if got.Len(0) != 0 {
				t.Errorf("%+v: the sequence changed on error", o)
			}
		}
	})
}
