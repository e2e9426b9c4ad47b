package kvcache

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
)

func chanCache(t testing.TB, tk, tv tensor.Type, kc KeyChannels, ctx, page int, vc ...bool) *Cache {
	c, err := New(Config{Layers: 2, KVHeads: 2, HeadDimK: 64, HeadDimV: 64, Seqs: 2, Ctx: ctx,
		PageTokens: page, Threads: 2, TypeK: uniform(2, tk), TypeV: uniform(2, tv), Rotate: true, KeyChannels: kc,
		ValueChannels: len(vc) > 0 && vc[0]})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// offsetKey is a key row with per-channel offsets and spreads, as real
// keys have.
func offsetKey(r *rand.Rand, n int) []float32 {
	x := randRow(r, n, 0.5)
	for i := range x {
		x[i] = x[i]*float32(1+i%5) + float32(i%7-3)*1.5
	}
	return x
}

// rawKey is head h of the key at pos as the cache holds it, in the model's
// basis: decoded, un-rotated, channel statistics undone.
func rawKey(c *Cache, l, seq, pos, h int) []float32 {
	D, P := c.cfg.HeadDimK, c.cfg.PageTokens
	p := c.seqs[seq][l].k.pages[pos/P]
	x := make([]float32, D)
	decodeRow(p.Type, headBytes(c, &c.seqs[seq][l].k, pos, h, D), x)
	p.unrotate(x, D)
	if p.meta != 0 {
		c.fromChan(p, h, x, 1, D, make([]float32, D), make([]float32, D))
	}
	return x
}

// Attention over K pages with channel statistics equals the naive
// computation (scores q·μ + rotate(q⊙s)·k') for every quantized type and
// mode, with pages refitted as they fill.
func TestKeyChannelsAttendMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, m := range []struct {
		kc KeyChannels
		vc bool
	}{{KeyChannelsCentre, false}, {KeyChannelsScale, false}, {KeyChannelsCentre, true}, {KeyChannelsOff, true}} {
		kc := m.kc
		for _, typ := range []tensor.Type{tensor.Q8_0, tensor.Q4_0, tensor.IQ4_NL, tensor.CB4, tensor.CB3, tensor.CB2} {
			c := chanCache(t, typ, typ, kc, 400, 128, m.vc)
			for pos := 0; pos < 300; pos++ {
				c.Store(0, 0, pos, offsetKey(r, 128), offsetKey(r, 128))
			}
			if (c.seqs[0][0].k.pages[0].meta != 0) != (kc != KeyChannelsOff) || (c.seqs[0][0].v.pages[0].meta != 0) != m.vc {
				t.Fatalf("%s value channels %v %s: K/V pages' statistics wrong", kc, m.vc, typ)
			}
			for _, pos := range []int{0, 5, 127, 128, 200, 299} {
				for h := 0; h < 2; h++ {
					q := randRow(r, 4*64, 0.2)
					out := make([]float32, 4*64)
					c.Attend(0, 0, pos, h, q, out, 1)
					for g := 0; g < 4; g++ {
						want := naiveAttention(c, 0, 0, pos, h, q[g*64:(g+1)*64])
						var maxd, maxv float64
						for i, w := range want {
							maxd = math.Max(maxd, math.Abs(float64(out[g*64+i])-w))
							maxv = math.Max(maxv, math.Abs(w))
						}
						if maxd > 1e-4*math.Max(maxv, 1e-3) {
							t.Fatalf("%s/%v %s pos %d head %d/%d: max diff %.3g (max |out| %.3g)", kc, m.vc, typ, pos, h, g, maxd, maxv)
						}
					}
				}
			}
		}
	}
}

// With channel offsets, centring lowers the keys' error: the stored keys
// are closer to the written ones than without statistics; a refitted page
// (all its rows written) reproduces its keys as well as a converted one.
func TestKeyChannelsLowerKeyError(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	keys := make([][]float32, 256)
	for i := range keys {
		keys[i] = offsetKey(r, 128)
	}
	errOf := func(c *Cache) float64 {
		var e, s float64
		for pos, k := range keys {
			for h := 0; h < 2; h++ {
				got := rawKey(c, 0, 0, pos, h)
				for i, v := range got {
					d := float64(v - k[h*64+i])
					e += d * d
					s += float64(k[h*64+i] * k[h*64+i])
				}
			}
		}
		return e / s
	}
	for _, typ := range []tensor.Type{tensor.Q4_0, tensor.CB3} {
		var errs []float64
		for _, kc := range []KeyChannels{KeyChannelsOff, KeyChannelsCentre, KeyChannelsScale} {
			c := chanCache(t, typ, typ, kc, 256, 256)
			for pos, k := range keys {
				c.Store(0, 0, pos, k, k)
			}
			errs = append(errs, errOf(c))
			// The same keys written at f16 and converted.
			f := chanCache(t, tensor.F16, tensor.F16, kc, 256, 256)
			for pos, k := range keys {
				f.Store(0, 0, pos, k, k)
			}
			convertAll(t, f, Target{K: &typ, V: &typ})
			if ec := errOf(f); math.Abs(ec-errs[len(errs)-1]) > 0.1*errs[len(errs)-1] {
				t.Errorf("%s %s: converted page's key error %.4g, written %.4g", typ, kc, ec, errs[len(errs)-1])
			}
		}
		t.Logf("%s relative key error: off %.4g, centre %.4g, scale %.4g", typ, errs[0], errs[1], errs[2])
		if errs[1] >= errs[0] {
			t.Errorf("%s: centring did not lower the key error (%.4g vs %.4g)", typ, errs[1], errs[0])
		}
	}
}

// Pages with statistics are counted with them; slot files keep them,
// refuse files of another codebook version, and are converted into a
// cache of another key or value channels setting.
func TestKeyChannelsBytesAndPersist(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	c := chanCache(t, tensor.CB3, tensor.Q4_0, KeyChannelsScale, 512, 128)
	for pos := 0; pos < 300; pos++ {
		c.Store(0, 0, pos, offsetKey(r, 128), randRow(r, 128, 1))
		c.Store(1, 0, pos, offsetKey(r, 128), randRow(r, 128, 1))
	}
	pk := c.cfg.PageBytes(tensor.CB3, false)
	if want := tensor.CB3.RowSize(128)*128 + 2*2*64*2; pk != want || len(c.seqs[0][0].k.pages[0].mem.b) != pk {
		t.Fatalf("K page of %d bytes, PageBytes %d, want %d", len(c.seqs[0][0].k.pages[0].mem.b), pk, want)
	}
	if pv := c.cfg.PageBytes(tensor.Q4_0, true); pv != tensor.Q4_0.RowSize(128)*128 {
		t.Fatalf("V page of %d bytes", pv)
	}
	if got, want := c.Bytes(), int64(2*3*(pk+c.cfg.PageBytes(tensor.Q4_0, true))); got != want { // 2 layers, 3 pages
		t.Fatalf("cache holds %d bytes, want %d", got, want)
	}
	for _, p := range c.Pages(0) { // PageInfo counts the statistics (bits per value reports use it)
		if want := map[bool]int{false: 2 * 2 * 64 * 2, true: 0}[p.V]; p.MetaBytes != want {
			t.Fatalf("page %+v: MetaBytes %d, want %d", p, p.MetaBytes, want)
		}
	}
	var buf bytes.Buffer
	if err := c.WriteSeq(0, &buf); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	if n, err := c.ReadSeq(1, bytes.NewReader(data)); err != nil || n != 300 {
		t.Fatalf("ReadSeq: %d, %v", n, err)
	}
	for l := 0; l < 2; l++ {
		for i, p := range c.seqs[0][l].k.pages {
			if q := c.seqs[1][l].k.pages[i]; !bytes.Equal(p.mem.b, q.mem.b) || q.meta != p.meta {
				t.Fatalf("layer %d K page %d differs after restore", l, i)
			}
		}
	}
	// Another codebook version, another key channels mode.
	bad := bytes.Clone(data)
	binary.LittleEndian.PutUint32(bad[8:], tensor.CodebookVersion+1)
	if _, err := c.ReadSeq(1, bytes.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "codebook version") {
		t.Errorf("file of another codebook version: %v", err)
	}
	// A cache of another key channels mode or value channels setting
	// converts the pages into its own layout (TestRestoreRepacksChannels
	// checks the bytes).
	other := chanCache(t, tensor.CB3, tensor.Q4_0, KeyChannelsCentre, 512, 128)
	if n, err := other.ReadSeq(0, bytes.NewReader(data)); err != nil || n != 300 {
		t.Errorf("file of another key channels mode: %d, %v", n, err)
	} else if p := other.seqs[0][0].k.pages[0]; p.Type != tensor.CB3 || len(p.mem.b) != other.cfg.PageBytes(tensor.CB3, false) {
		t.Errorf("K page restored in another mode: %s, %d bytes", p.Type, len(p.mem.b))
	}
	other = chanCache(t, tensor.CB3, tensor.Q4_0, KeyChannelsScale, 512, 128, true)
	if n, err := other.ReadSeq(0, bytes.NewReader(data)); err != nil || n != 300 {
		t.Errorf("file of another value channels setting: %d, %v", n, err)
	} else if p := other.seqs[0][0].v.pages[0]; p.meta == 0 {
		t.Errorf("V page restored without the cache's value means")
	}
	// Value channels: V pages carry their means, and round-trip.
	vcc := chanCache(t, tensor.CB3, tensor.CB2, KeyChannelsCentre, 512, 128, true)
	for pos := 0; pos < 200; pos++ {
		vcc.Store(0, 0, pos, offsetKey(r, 128), offsetKey(r, 128))
		vcc.Store(1, 0, pos, offsetKey(r, 128), offsetKey(r, 128))
	}
	if pv := vcc.cfg.PageBytes(tensor.CB2, true); pv != tensor.CB2.RowSize(128)*128+2*64*2 || len(vcc.seqs[0][0].v.pages[0].mem.b) != pv {
		t.Fatalf("V page with means: %d bytes", pv)
	}
	buf.Reset()
	if err := vcc.WriteSeq(0, &buf); err != nil {
		t.Fatal(err)
	}
	if n, err := vcc.ReadSeq(1, bytes.NewReader(buf.Bytes())); err != nil || n != 200 {
		t.Fatalf("ReadSeq with value channels: %d, %v", n, err)
	}
}

// The codebook pages' signs are ±1, fixed, and about half negative; H·S
// is undone by S·H.
func TestCodebookSigns(t *testing.T) {
	neg := 0
	for _, s := range codebookSigns {
		if s != 1 && s != -1 {
			t.Fatalf("sign %g", s)
		}
		if s < 0 {
			neg++
		}
	}
	if neg < 450 || neg > 574 {
		t.Errorf("%d of 1024 signs negative", neg)
	}
	// Part of the codebook format: changing them needs a new
	// tensor.CodebookVersion.
	if want := [8]float32{-1, -1, -1, -1, 1, 1, -1, 1}; [8]float32(codebookSigns[:8]) != want || [8]float32(CodebookSigns(8)) != want {
		t.Errorf("first signs %v (exported %v), the format's are %v", codebookSigns[:8], CodebookSigns(8), want)
	}
	if s := CodebookSigns(1024); len(s) != 1024 || [1024]float32(s) != codebookSigns || CodebookSigns(1025) != nil || CodebookSigns(-1) != nil {
		t.Error("CodebookSigns: not a copy of the signs, or out-of-range n not refused")
	}
	CodebookSigns(4)[0] = 7 // a copy: the format's signs are unchanged
	if codebookSigns[0] != -1 {
		t.Error("CodebookSigns returned the format's own signs")
	}
	r := rand.New(rand.NewPCG(1, 1))
	x := randRow(r, 256, 1)
	y := append([]float32(nil), x...)
	rotateKind(2, y, 64)
	unrotateKind(2, y, 64)
	for i := range x {
		if math.Abs(float64(x[i]-y[i])) > 1e-5 {
			t.Fatalf("value %d: %g after H·S and back, was %g", i, y[i], x[i])
		}
	}
}
