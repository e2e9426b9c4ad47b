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
