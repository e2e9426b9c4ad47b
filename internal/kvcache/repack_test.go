package kvcache

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
)

// repackCache is a two-layer cache of page-token pages with key channels
// kc, value channels vc, types tk/tv and rotation on; cfg, when given,
// changes its configuration first (KeyQuery).
func repackCache(t *testing.T, page int, kc KeyChannels, vc bool, tk, tv tensor.Type, cfg ...func(*Config)) *Cache {
	t.Helper()
	conf := Config{Layers: 2, KVHeads: 2, HeadDimK: 64, HeadDimV: 64, Seqs: 1, Ctx: 512,
		PageTokens: page, Threads: 2, TypeK: uniform(2, tk), TypeV: uniform(2, tv), Rotate: true,
		KeyChannels: kc, ValueChannels: vc}
	for _, f := range cfg {
		f(&conf)
	}
	c, err := New(conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// repackSource is a sequence file to restore: n positions of offset keys
// and values drawn from the seed, stored in a cache of its settings.
type repackSource struct {
	name   string
	seed   uint64
	n      int
	page   int
	kc     KeyChannels
	vc     bool
	tk, tv tensor.Type
}

// write stores the source's rows and returns the cache, its sequence
// file and the file's rows raw (decoded through its pages' statistics,
// in f32 pages): row(l, side, pos), K and V heads in order.
func (rs repackSource) write(t *testing.T) (src *Cache, file []byte, row func(l, side, pos int) []float32) {
	t.Helper()
	r := rand.New(rand.NewPCG(rs.seed, rs.seed+1))
	src = repackCache(t, rs.page, rs.kc, rs.vc, rs.tk, rs.tv)
	for pos := 0; pos < rs.n; pos++ {
		for l := 0; l < 2; l++ {
			src.Store(l, 0, pos, offsetKey(r, 128), offsetKey(r, 128))
		}
	}
	var buf bytes.Buffer
	if err := src.WriteSeq(0, &buf); err != nil {
		t.Fatal(err)
	}
	raw := repackCache(t, rs.page, rs.kc, rs.vc, tensor.F16, tensor.F16)
	if _, err := raw.ReadSeq(0, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	convertAll(t, raw, Target{K: typ(tensor.F32), V: typ(tensor.F32)})
	return src, buf.Bytes(), func(l, side, pos int) []float32 {
		x := make([]float32, 128)
		s := raw.seqs[0][l].streams()[side]
		for h := 0; h < 2; h++ {
			decodeRow(tensor.F32, headBytes(raw, s, pos, h, 64), x[h*64:(h+1)*64])
		}
		return x
	}
}

// liveRequantized is what a live requantization makes of n rows (row, as
// from repackSource.write) in a cache of the given settings: stored in f32
// pages, converted to tk/tv. prep, when given, runs on the cache first
// (observing queries).
func liveRequantized(t *testing.T, n int, row func(l, side, pos int) []float32, page int, kc KeyChannels, vc bool, tk, tv tensor.Type, prep func(*Cache), cfg ...func(*Config)) *Cache {
	t.Helper()
	c := repackCache(t, page, kc, vc, tensor.F32, tensor.F32, cfg...)
	if prep != nil {
		prep(c)
	}
	for pos := 0; pos < n; pos++ {
		for l := 0; l < 2; l++ {
			c.Store(l, 0, pos, row(l, 0, pos), row(l, 1, pos))
		}
	}
	convertAll(t, c, Target{K: &tk, V: &tv})
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

// centreFile is a file with centred cb4 keys and centred q8_0 values in
// 16-token pages.
var centreFile = repackSource{"centre keys and values, cb4/q8_0", 31, 150, 16, KeyChannelsCentre, true, tensor.CB4, tensor.Q8_0}

// Sequence files written with key channels (centre, or scale: μ and s per
// channel) and value channels restore into other page sizes, other types
// and other channel settings: every page is byte for byte (rows and
// statistics) what a live requantization makes of the same rows — the
// file's rows decoded through its pages' statistics, in f32 pages of the
// new size, converted to the new types (the file's when none are asked)
// with statistics fitted from each new page's rows. At the file's page
// size and settings, that is a live requantization of the restored
// original itself.
func TestRestoreRepacksChannels(t *testing.T) {
	type restore struct {
		page int
		kc   KeyChannels
		vc   bool
		k, v *tensor.Type // nil: the file's
	}
	for _, src := range []struct {
		repackSource
		into []restore
	}{
		{centreFile, []restore{
			{16, KeyChannelsCentre, true, typ(tensor.CB3), typ(tensor.Q4_0)},
			{64, KeyChannelsCentre, true, typ(tensor.CB3), typ(tensor.Q4_0)},
			{8, KeyChannelsCentre, true, nil, nil},
			{64, KeyChannelsScale, false, typ(tensor.Q5_0), typ(tensor.CB2)},
			{16, KeyChannelsOff, false, nil, nil},
			{32, KeyChannelsOff, false, typ(tensor.Q4_0), typ(tensor.CB3)},
		}},
		{repackSource{"scale keys, value means, cb3/q5_0", 33, 200, 32, KeyChannelsScale, true, tensor.CB3, tensor.Q5_0}, []restore{
			{64, KeyChannelsCentre, true, typ(tensor.CB4), typ(tensor.Q4_0)},
			{32, KeyChannelsScale, true, typ(tensor.CB2), typ(tensor.Q8_0)},
		}},
	} {
		_, file, row := src.write(t)
		for _, tc := range src.into {
			tk, tv := src.tk, src.tv
			if tc.k != nil {
				tk, tv = *tc.k, *tc.v
			}
			t.Run(fmt.Sprintf("%s into %d-token pages, key channels %s, value channels %v, %s/%s", src.name, tc.page, tc.kc, tc.vc, tk, tv), func(t *testing.T) {
				want := liveRequantized(t, src.n, row, tc.page, tc.kc, tc.vc, tk, tv, nil)
				got := repackCache(t, tc.page, tc.kc, tc.vc, tensor.F16, tensor.F16)
				if m, err := got.ReadSeqAs(0, bytes.NewReader(file), RestoreOptions{K: tc.k, V: tc.v}); err != nil || m != src.n {
					t.Fatalf("ReadSeqAs: %d, %v", m, err)
				}
				samePages(t, got, want, src.n)
				if got.Bytes() != want.Bytes() {
					t.Errorf("bytes %d, want %d", got.Bytes(), want.Bytes())
				}
				if tc.page == src.page && tc.kc == src.kc && tc.vc == src.vc {
					live := repackCache(t, src.page, src.kc, src.vc, tensor.F16, tensor.F16)
					if _, err := live.ReadSeq(0, bytes.NewReader(file)); err != nil {
						t.Fatal(err)
					}
					convertAll(t, live, Target{K: &tk, V: &tv})
					samePages(t, got, live, src.n)
				}
			})
		}
	}
}

// With the file's page size and settings, K asked at the file's type: the
// K pages are kept as saved (as a live requantization skips pages already
// at the target), the V pages converted.
func TestRestoreKeepsPagesAtTarget(t *testing.T) {
	src, file, _ := centreFile.write(t)
	got := repackCache(t, 16, KeyChannelsCentre, true, tensor.F16, tensor.F16)
	if m, err := got.ReadSeqAs(0, bytes.NewReader(file), RestoreOptions{K: typ(tensor.CB4), V: typ(tensor.Q4_0)}); err != nil || m != centreFile.n {
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
}

// A repacking restore refuses an unknown key channels mode, codebook pages
// of another version and a truncated file, holding nothing after.
func TestRestoreRepackErrors(t *testing.T) {
	_, file, _ := centreFile.write(t)
	got := repackCache(t, 64, KeyChannelsCentre, true, tensor.F16, tensor.F16)
	bad := bytes.Clone(file)
	binary.LittleEndian.PutUint32(bad[12:], 7) // key channels mode
	if _, err := got.ReadSeqAs(0, bytes.NewReader(bad), RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "key channels mode 7") {
		t.Errorf("unknown key channels mode: %v", err)
	}
	bad = bytes.Clone(file)
	binary.LittleEndian.PutUint32(bad[8:], tensor.CodebookVersion+1)
	if _, err := got.ReadSeqAs(0, bytes.NewReader(bad), RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "codebook version") {
		t.Errorf("another codebook version: %v", err)
	}
	if _, err := got.ReadSeqAs(0, bytes.NewReader(file[:len(file)-100]), RestoreOptions{V: typ(tensor.Q4_0)}); err == nil || got.Len(0) != 0 || got.Bytes() != 0 {
		t.Errorf("truncated file: %v, %d positions, %d bytes held", err, got.Len(0), got.Bytes())
	}
}
