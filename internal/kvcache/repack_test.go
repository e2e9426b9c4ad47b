package kvcache

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
)

func repackCache(t *testing.T, page int, kc KeyChannels, vc bool, tk, tv tensor.Type) *Cache {
	t.Helper()
	c, err := New(Config{Layers: 2, KVHeads: 2, HeadDimK: 64, HeadDimV: 64, Seqs: 1, Ctx: 512,
		PageTokens: page, Threads: 2, TypeK: uniform(2, tk), TypeV: uniform(2, tv), Rotate: true,
		KeyChannels: kc, ValueChannels: vc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// samePages fails unless every page of got's sequence 0 has want's type,
// rotation, bytes in the rows holding positions, and channel statistics.
func samePages(t *testing.T, got, want *Cache, n int) {
	t.Helper()
	P := got.cfg.PageTokens
	if want.cfg.PageTokens != P {
		t.Fatalf("page sizes %d and %d", P, want.cfg.PageTokens)
	}
	for l := 0; l < got.cfg.Layers; l++ {
		for side := 0; side < 2; side++ {
			sg, sw := got.seqs[0][l].streams()[side], want.seqs[0][l].streams()[side]
			if len(sg.pages) != len(sw.pages) {
				t.Fatalf("layer %d side %d: %d pages, want %d", l, side, len(sg.pages), len(sw.pages))
			}
			for i, gp := range sg.pages {
				wp := sw.pages[i]
				if gp.Type != wp.Type || gp.Rotated != wp.Rotated || gp.meta != wp.meta || len(gp.mem.b) != len(wp.mem.b) {
					t.Fatalf("layer %d side %d page %d: %s rotated %v meta %d, want %s rotated %v meta %d", l, side, i, gp.Type, gp.Rotated, gp.meta, wp.Type, wp.Rotated, wp.meta)
				}
				if gp.meta != 0 && !bytes.Equal(gp.mem.b[gp.meta:], wp.mem.b[wp.meta:]) {
					t.Fatalf("layer %d side %d page %d: channel statistics differ", l, side, i)
				}
				for pos := i * P; pos < min(n, (i+1)*P); pos++ {
					for h := 0; h < 2; h++ {
						if !bytes.Equal(headBytes(got, sg, pos, h, 64), headBytes(want, sw, pos, h, 64)) {
							t.Fatalf("layer %d side %d pos %d head %d: bytes differ", l, side, pos, h)
						}
					}
				}
			}
		}
	}
}

// A sequence file written with key channels (centre) and value channels
// restores into another page size, other types and other channel
// settings: every page is byte for byte (rows and statistics) what a live
// requantization makes of the same rows — the file's rows decoded through
// its pages' statistics, in f32 pages of the new size, converted to the
// new types with statistics fitted from each new page's rows. With the
// page size kept and types asked for, that is a live requantization of
// the restored original itself.
func TestRestoreRepacksChannels(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	const n = 150
	src := repackCache(t, 16, KeyChannelsCentre, true, tensor.CB4, tensor.Q8_0)
	for pos := 0; pos < n; pos++ {
		for l := 0; l < 2; l++ {
			src.Store(l, 0, pos, offsetKey(r, 128), offsetKey(r, 128))
		}
	}
	var file bytes.Buffer
	if err := src.WriteSeq(0, &file); err != nil {
		t.Fatal(err)
	}
	// The file's rows, raw, in f32 pages.
	raw := repackCache(t, 16, KeyChannelsCentre, true, tensor.F16, tensor.F16)
	if _, err := raw.ReadSeq(0, bytes.NewReader(file.Bytes())); err != nil {
		t.Fatal(err)
	}
	convertAll(t, raw, Target{K: typ(tensor.F32), V: typ(tensor.F32)})
	rawRow := func(l, side, pos int) []float32 {
		x := make([]float32, 128)
		s := raw.seqs[0][l].streams()[side]
		for h := 0; h < 2; h++ {
			decodeRow(tensor.F32, headBytes(raw, s, pos, h, 64), x[h*64:(h+1)*64])
		}
		return x
	}
	for _, tc := range []struct {
		name string
		page int
		kc   KeyChannels
		vc   bool
		k, v *tensor.Type
	}{
		{"same pages cb3/q4_0", 16, KeyChannelsCentre, true, typ(tensor.CB3), typ(tensor.Q4_0)},
		{"64-token pages cb3/q4_0", 64, KeyChannelsCentre, true, typ(tensor.CB3), typ(tensor.Q4_0)},
		{"8-token pages as saved", 8, KeyChannelsCentre, true, nil, nil},
		{"64-token pages, scale keys, no value channels, q5_0/cb2", 64, KeyChannelsScale, false, typ(tensor.Q5_0), typ(tensor.CB2)},
		{"same pages, channels off, as saved", 16, KeyChannelsOff, false, nil, nil},
		{"32-token pages, channels off, q4_0/cb3", 32, KeyChannelsOff, false, typ(tensor.Q4_0), typ(tensor.CB3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tk, tv := tensor.CB4, tensor.Q8_0 // the file's
			if tc.k != nil {
				tk, tv = *tc.k, *tc.v
			}
			want := repackCache(t, tc.page, tc.kc, tc.vc, tensor.F32, tensor.F32)
			for pos := 0; pos < n; pos++ {
				for l := 0; l < 2; l++ {
					want.Store(l, 0, pos, rawRow(l, 0, pos), rawRow(l, 1, pos))
				}
			}
			convertAll(t, want, Target{K: &tk, V: &tv})
			got := repackCache(t, tc.page, tc.kc, tc.vc, tensor.F16, tensor.F16)
			if m, err := got.ReadSeqAs(0, bytes.NewReader(file.Bytes()), RestoreOptions{K: tc.k, V: tc.v}); err != nil || m != n {
				t.Fatalf("ReadSeqAs: %d, %v", m, err)
			}
			samePages(t, got, want, n)
			if got.Bytes() != want.Bytes() {
				t.Errorf("bytes %d, want %d", got.Bytes(), want.Bytes())
			}
			if tc.page == 16 && tc.kc == KeyChannelsCentre && tc.vc {
				live := repackCache(t, 16, KeyChannelsCentre, true, tensor.F16, tensor.F16)
				if _, err := live.ReadSeq(0, bytes.NewReader(file.Bytes())); err != nil {
					t.Fatal(err)
				}
				convertAll(t, live, Target{K: &tk, V: &tv})
				samePages(t, got, live, n)
			}
		})
	}
	t.Run("pages already at the target are kept", func(t *testing.T) {
		// Same page size and settings, K asked at the file's type: K pages
		// as saved, V pages converted.
		got := repackCache(t, 16, KeyChannelsCentre, true, tensor.F16, tensor.F16)
		if m, err := got.ReadSeqAs(0, bytes.NewReader(file.Bytes()), RestoreOptions{K: typ(tensor.CB4), V: typ(tensor.Q4_0)}); err != nil || m != n {
			t.Fatalf("ReadSeqAs: %d, %v", m, err)
		}
		for l := 0; l < 2; l++ {
			for i, p := range got.seqs[0][l].k.pages {
				if !bytes.Equal(p.mem.b, src.seqs[0][l].k.pages[i].mem.b) {
					t.Fatalf("layer %d K page %d differs from the saved one", l, i)
				}
			}
			for _, p := range got.seqs[0][l].v.pages {
				if p.Type != tensor.Q4_0 {
					t.Fatalf("layer %d V page of %s", l, p.Type)
				}
			}
		}
	})
	t.Run("errors", func(t *testing.T) {
		got := repackCache(t, 64, KeyChannelsCentre, true, tensor.F16, tensor.F16)
		bad := bytes.Clone(file.Bytes())
		binary.LittleEndian.PutUint32(bad[12:], 7) // key channels mode
		if _, err := got.ReadSeqAs(0, bytes.NewReader(bad), RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "key channels mode 7") {
			t.Errorf("unknown key channels mode: %v", err)
		}
		bad = bytes.Clone(file.Bytes())
		binary.LittleEndian.PutUint32(bad[8:], tensor.CodebookVersion+1)
		if _, err := got.ReadSeqAs(0, bytes.NewReader(bad), RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "codebook version") {
			t.Errorf("another codebook version: %v", err)
		}
		if _, err := got.ReadSeqAs(0, bytes.NewReader(file.Bytes()[:file.Len()-100]), RestoreOptions{V: typ(tensor.Q4_0)}); err == nil || got.Len(0) != 0 || got.Bytes() != 0 {
			t.Errorf("truncated file: %v, %d positions, %d bytes held", err, got.Len(0), got.Bytes())
		}
	})
}

// A file written with key channels in scale mode (μ and s per channel)
// and value means restores into a centred cache of another page size
// (types asked for) and into a cache of its own settings and page size
// (another type): again byte for byte what a live requantization makes of
// the file's rows, in both cases; at the file's settings, of the restored
// original itself.
func TestRestoreRepacksScaleKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	const n = 200
	src := repackCache(t, 32, KeyChannelsScale, true, tensor.CB3, tensor.Q5_0)
	for pos := 0; pos < n; pos++ {
		for l := 0; l < 2; l++ {
			src.Store(l, 0, pos, offsetKey(r, 128), offsetKey(r, 128))
		}
	}
	var file bytes.Buffer
	if err := src.WriteSeq(0, &file); err != nil {
		t.Fatal(err)
	}
	raw := repackCache(t, 32, KeyChannelsScale, true, tensor.F16, tensor.F16)
	if _, err := raw.ReadSeq(0, bytes.NewReader(file.Bytes())); err != nil {
		t.Fatal(err)
	}
	convertAll(t, raw, Target{K: typ(tensor.F32), V: typ(tensor.F32)})
	for _, tc := range []struct {
		page   int
		kc     KeyChannels
		vc     bool
		tk, tv tensor.Type
	}{
		{64, KeyChannelsCentre, true, tensor.CB4, tensor.Q4_0},
		{32, KeyChannelsScale, true, tensor.CB2, tensor.Q8_0},
	} {
		want := repackCache(t, tc.page, tc.kc, tc.vc, tensor.F32, tensor.F32)
		for pos := 0; pos < n; pos++ {
			for l := 0; l < 2; l++ {
				row := func(side int) []float32 {
					x := make([]float32, 128)
					for h := 0; h < 2; h++ {
						decodeRow(tensor.F32, headBytes(raw, raw.seqs[0][l].streams()[side], pos, h, 64), x[h*64:(h+1)*64])
					}
					return x
				}
				want.Store(l, 0, pos, row(0), row(1))
			}
		}
		convertAll(t, want, Target{K: &tc.tk, V: &tc.tv})
		got := repackCache(t, tc.page, tc.kc, tc.vc, tensor.F16, tensor.F16)
		if m, err := got.ReadSeqAs(0, bytes.NewReader(file.Bytes()), RestoreOptions{K: &tc.tk, V: &tc.tv}); err != nil || m != n {
			t.Fatalf("%+v: ReadSeqAs: %d, %v", tc, m, err)
		}
		samePages(t, got, want, n)
		if tc.kc == KeyChannelsScale {
			live := repackCache(t, 32, KeyChannelsScale, true, tensor.F16, tensor.F16)
			if _, err := live.ReadSeq(0, bytes.NewReader(file.Bytes())); err != nil {
				t.Fatal(err)
			}
			convertAll(t, live, Target{K: &tc.tk, V: &tc.tv})
			samePages(t, got, live, n)
		}
	}
}
