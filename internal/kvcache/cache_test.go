package kvcache

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
	"github.com/kvserve/kvserve/internal/tensor/ggmlref"
)

func uniform(n int, t tensor.Type) []tensor.Type {
	ts := make([]tensor.Type, n)
	for i := range ts {
		ts[i] = t
	}
	return ts
}

func testCache(t testing.TB, tk, tv tensor.Type, rotate bool, seqs, ctx, page int) *Cache {
	c, err := New(Config{Layers: 2, KVHeads: 2, HeadDimK: 64, HeadDimV: 64, Seqs: seqs, Ctx: ctx,
		PageTokens: page, Threads: 2, TypeK: uniform(2, tk), TypeV: uniform(2, tv), Rotate: rotate})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func randRow(r *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * scale)
		if r.IntN(50) == 0 { // outliers, as real keys have
			x[i] *= 8
		}
	}
	return x
}

// headBytes returns the stored bytes of head h at position pos.
func headBytes(c *Cache, s *stream, pos, h, headDim int) []byte {
	P := c.cfg.PageTokens
	p := s.pages[pos/P]
	hb := p.Type.RowSize(headDim)
	off := (h*P + pos%P) * hb
	return p.mem.b[off : off+hb]
}

// Every cache type stores each head exactly as ggml's reference quantizer
// (an independent implementation) encodes it, rotated first when the page
// is rotated; codebook types (which ggml has not) as tensor.QuantizeRow
// encodes them, always rotated.
func TestStoredBitsMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, typ := range Types {
		t.Run(typ.String(), func(t *testing.T) {
			for _, rotate := range []bool{false, true} {
				c := testCache(t, typ, typ, rotate, 1, 600, 256)
				rows := make([][2][]float32, 600)
				for pos := range rows {
					k, v := randRow(r, 128, 1+float64(pos%7)), randRow(r, 128, 0.1)
					rows[pos] = [2][]float32{k, v}
					c.Store(0, 0, pos, k, v)
					c.Store(1, 0, pos, v, k)
				}
				ls := &c.seqs[0][0]
				for pos, kv := range rows {
					for h := 0; h < 2; h++ {
						for i, s := range []*stream{&ls.k, &ls.v} {
							seg := append([]float32(nil), kv[i][h*64:(h+1)*64]...)
							if s.pages[pos/256].Rotated {
								if typ.IsCodebook() { // H·S: the signs first
									applySigns(seg, 64)
								}
								rotateRows(seg, 64) // H checked against its definition below
							}
							var want []byte
							if typ.IsCodebook() {
								want = make([]byte, typ.RowSize(64))
								tensor.QuantizeRow(typ, seg, want)
							} else {
								want = ggmlref.Quantize(typ, seg, false)
							}
							if got := headBytes(c, s, pos, h, 64); !bytes.Equal(got, want) {
								t.Fatalf("%s rotate=%v pos %d head %d: stored bytes differ from reference", typ, rotate, pos, h)
							}
						}
					}
				}
				if wantRot := rotate && typ.BlockSize() > 1 || typ.IsCodebook(); ls.k.pages[0].Rotated != wantRot {
					t.Errorf("%s rotate=%v: page rotated = %v", typ, rotate, ls.k.pages[0].Rotated)
				}
			}
		})
	}
}

// refFWHT is the normalized Walsh–Hadamard transform by its definition:
// y_i = Σ_j (-1)^popcount(i&j) x_j / sqrt(n), in float64.
func refFWHT(x []float32) {
	n := len(x)
	y := make([]float64, n)
	for i := range y {
		for j, v := range x {
			if popcount(i&j)%2 == 1 {
				y[i] -= float64(v)
			} else {
				y[i] += float64(v)
			}
		}
	}
	for i := range x {
		x[i] = float32(y[i] / math.Sqrt(float64(n)))
	}
}

func popcount(v int) int {
	c := 0
	for ; v != 0; v &= v - 1 {
		c++
	}
	return c
}

func TestFWHTMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{2, 8, 64, 128} {
		x := randRow(r, n, 1)
		a, b := append([]float32(nil), x...), append([]float32(nil), x...)
		fwht(a)
		refFWHT(b)
		for i := range a {
			if math.Abs(float64(a[i]-b[i])) > 1e-5 {
				t.Fatalf("n=%d: fwht[%d] = %g, definition %g", n, i, a[i], b[i])
			}
		}
		fwht(a) // its own inverse
		for i := range a {
			if math.Abs(float64(a[i]-x[i])) > 1e-5 {
				t.Fatalf("n=%d: fwht∘fwht != identity", n)
			}
		}
	}
}

// naiveAttention computes softmax(q·K)V in float64 from the values the
// cache holds, for one query head. Scores are taken in each page's space:
// the query is rotated for rotated pages and, for quantized K pages,
// quantized to the vec-dot type and scored with ggml's integer dot (by
// the independent reference); V is dequantized and un-rotated. The layer's
// window, logit cap and sink (of query head qh) apply as LayerAttn defines
// them.
// refDequantize is ggml's reference dequantizer, or tensor's for the
// codebook types (which ggml has not).
func refDequantize(typ tensor.Type, b []byte, n int) []float32 {
	if typ.IsCodebook() {
		y := make([]float32, n)
		tensor.DequantizeRow(typ, b, y)
		return y
	}
	return ggmlref.Dequantize(typ, b, n)
}

func naiveAttention(c *Cache, l, seq, pos, h int, q []float32, qh ...int) []float64 {
	D, Dv := c.cfg.HeadDimK, c.cfg.HeadDimV
	ls := &c.seqs[seq][l]
	a := c.Attn(l)
	scores := make([]float64, pos+1)
	mx := math.Inf(-1)
	vals := make([][]float32, pos+1)
	from := 0
	if a.Window > 0 {
		from = max(0, pos-a.Window+1)
	}
	for t := 0; t < from; t++ {
		scores[t] = math.Inf(-1)
		vals[t] = make([]float32, Dv)
	}
	for t := from; t <= pos; t++ {
		kp := ls.k.pages[t/c.cfg.PageTokens]
		k := refDequantize(kp.Type, headBytes(c, &ls.k, t, h, D), D)
		qx := append([]float32(nil), q...)
		var bias float64
		if kp.meta != 0 { // q·k = q·μ + rotate(q⊙s)·k'
			mu, sc := make([]float32, D), make([]float32, D)
			c.chanStats(kp, h, mu, sc)
			for i := range qx {
				bias += float64(qx[i] * mu[i])
				qx[i] *= sc[i]
			}
		}
		kp.rotate(qx, D)
		quantK := kp.Type.VecDotType() != tensor.F32
		vp := ls.v.pages[t/c.cfg.PageTokens]
		v := refDequantize(vp.Type, headBytes(c, &ls.v, t, h, Dv), Dv)
		vp.unrotate(v, Dv)
		if vp.meta != 0 {
			c.fromChan(vp, h, v, 1, Dv, make([]float32, Dv), make([]float32, Dv))
		}
		vals[t] = v
		if quantK { // ggml's integer vec-dot against the quantized query
			vt := kp.Type.VecDotType()
			scores[t] = float64(ggmlref.VecDot(kp.Type, D, headBytes(c, &ls.k, t, h, D), ggmlref.Quantize(vt, qx, false)))
		} else {
			for i := range k {
				scores[t] += float64(qx[i]) * float64(k[i])
			}
		}
		scores[t] += bias
		if a.Softcap > 0 {
			scores[t] = float64(a.Softcap) * math.Tanh(scores[t]/float64(a.Softcap))
		}
		mx = math.Max(mx, scores[t])
	}
	out := make([]float64, Dv)
	var sum float64
	if a.Sinks != nil {
		sink := float64(a.Sinks[qh[0]])
		mx = math.Max(mx, sink)
		sum = math.Exp(sink - mx)
	}
	for t := range scores {
		p := math.Exp(scores[t] - mx)
		sum += p
		for i := range out {
			out[i] += p * float64(vals[t][i])
		}
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// Attention over pages of every type, and over a sequence mixing types
// and rotated/plain pages, matches a float64 computation on the stored
// values.
func TestAttendMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	check := func(t *testing.T, name string, c *Cache, n int, tol float64) {
		t.Helper()
		for _, pos := range []int{0, 1, n / 3, n - 1} {
			for h := 0; h < 2; h++ {
				q := randRow(r, 4*64, 0.2) // 4 query heads share a KV head
				out := make([]float32, 4*64)
				c.Attend(0, 0, pos, h, q, out, 1)
				for g := 0; g < 4; g++ {
					want := naiveAttention(c, 0, 0, pos, h, q[g*64:(g+1)*64])
					var maxd, maxv float64
					for i, w := range want {
						maxd = math.Max(maxd, math.Abs(float64(out[g*64+i])-w))
						maxv = math.Max(maxv, math.Abs(w))
					}
					if maxd > tol*math.Max(maxv, 1e-3) {
						t.Fatalf("%s pos %d head %d/%d: max diff %.3g (max |out| %.3g)", name, pos, h, g, maxd, maxv)
					}
				}
			}
		}
	}
	for _, typ := range Types {
		t.Run(typ.String(), func(t *testing.T) {
			for _, rotate := range []bool{false, true} {
				c := testCache(t, typ, typ, rotate, 1, 700, 128)
				for pos := 0; pos < 700; pos++ {
					c.Store(0, 0, pos, randRow(r, 128, 1), randRow(r, 128, 1))
				}
				tol := 1e-4
				check(t, typ.String()+map[bool]string{true: " rotated", false: ""}[rotate], c, 700, tol)
			}
		})
	}
	// A sequence whose pages differ in type and rotation.
	c := testCache(t, tensor.F16, tensor.F16, true, 1, 1024, 128)
	mix := []struct {
		typ tensor.Type
		rot bool
	}{{tensor.F16, false}, {tensor.Q4_0, true}, {tensor.Q8_0, false}, {tensor.Q4_0, false}, {tensor.IQ4_NL, true}, {tensor.F32, false}, {tensor.Q5_1, true}}
	for i, m := range mix {
		c.cfg.TypeK[0], c.cfg.TypeV[0] = m.typ, m.typ
		c.cfg.Rotate = m.rot
		for pos := i * 128; pos < (i+1)*128; pos++ {
			c.Store(0, 0, pos, randRow(r, 128, 1), randRow(r, 128, 1))
		}
	}
	check(t, "mixed", c, len(mix)*128, 1e-4)
}

// Accounted bytes per token equal the block arithmetic of each type.
func TestBytesPerTokenIsBlockArithmetic(t *testing.T) {
	for _, typ := range Types {
		t.Run(typ.String(), func(t *testing.T) {
			c := testCache(t, typ, typ, false, 1, 4096, 256)
			for pos := 0; pos < 512; pos++ {
				x := make([]float32, 128)
				c.Store(0, 0, pos, x, x)
				c.Store(1, 0, pos, x, x)
			}
			// 2 layers × (K + V) × 512 tokens × 128 values.
			want := int64(2 * 2 * 512 * 128 * typ.TypeSize() / typ.BlockSize())
			if got := c.Bytes(); got != want {
				t.Errorf("%s: %d bytes, want %d (%g bits per value)", typ, got, want, typ.BitsPerValue())
			}
			if got := c.BytesByType()[typ]; got != want {
				t.Errorf("%s: by type %d", typ, got)
			}
		})
	}
	// q8_0 is 34 bytes per 32 values, q4_0 18 per 32.
	if tensor.Q8_0.RowSize(32) != 34 || tensor.Q4_0.RowSize(32) != 18 {
		t.Fatal("block sizes")
	}
}

func rssBytes(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skip("no /proc/self/statm on this system")
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// Freed pages leave the process: the accounting and the resident memory
// drop when a sequence is cleared.
func TestFreedPagesLeaveTheProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("resident memory is read from /proc")
	}
	c, err := New(Config{Layers: 8, KVHeads: 2, HeadDimK: 64, HeadDimV: 64, Seqs: 4, Ctx: 4096,
		PageTokens: 256, Threads: 1, TypeK: uniform(8, tensor.F32), TypeV: uniform(8, tensor.F32)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	x := make([]float32, 128)
	for i := range x {
		x[i] = float32(i)
	}
	before := rssBytes(t)
	for s := 0; s < 4; s++ {
		for pos := 0; pos < 4096; pos++ {
			for l := 0; l < 8; l++ {
				c.Store(l, s, pos, x, x)
			}
		}
	}
	held := c.Bytes()
	if want := int64(4 * 4096 * 8 * 2 * 128 * 4); held != want {
		t.Fatalf("accounted %d bytes, want %d", held, want)
	}
	full := rssBytes(t)
	for s := 0; s < 4; s++ {
		c.Clear(s)
	}
	after := rssBytes(t)
	t.Logf("accounted %d MiB; RSS before %d MiB, full %d MiB, after clear %d MiB", held>>20, before>>20, full>>20, after>>20)
	if c.Bytes() != 0 {
		t.Errorf("accounting after clear: %d bytes", c.Bytes())
	}
	if full-before < held*9/10 {
		t.Errorf("RSS grew by %d bytes for %d accounted", full-before, held)
	}
	if freed := full - after; freed < held*9/10 {
		t.Errorf("RSS fell by only %d of %d freed bytes", freed, held)
	}
}

// WriteSeq / ReadSeq reproduce a sequence bit for bit; bad input is
// refused with a clear error and leaves the sequence as it was.
func TestPersistRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	c := testCache(t, tensor.Q4_0, tensor.Q8_0, true, 2, 1024, 128)
	for pos := 0; pos < 300; pos++ {
		c.Store(0, 0, pos, randRow(r, 128, 1), randRow(r, 128, 1))
		c.Store(1, 0, pos, randRow(r, 128, 1), randRow(r, 128, 1))
	}
	var buf bytes.Buffer
	if err := c.WriteSeq(0, &buf); err != nil {
		t.Fatal(err)
	}
	n, err := c.ReadSeq(1, bytes.NewReader(buf.Bytes()))
	if err != nil || n != 300 {
		t.Fatalf("ReadSeq: %d, %v", n, err)
	}
	for l := 0; l < 2; l++ {
		a, b := c.seqs[0][l], c.seqs[1][l]
		for i := range a.k.pages {
			if !bytes.Equal(a.k.pages[i].mem.b, b.k.pages[i].mem.b) || !bytes.Equal(a.v.pages[i].mem.b, b.v.pages[i].mem.b) ||
				a.k.pages[i].Rotated != b.k.pages[i].Rotated {
				t.Fatalf("layer %d page %d differs after restore", l, i)
			}
		}
	}
	data := buf.Bytes()
	for _, bad := range [][]byte{nil, []byte("nonsense"), data[:len(data)/2], append([]byte("KVSSEQ01\x03"), data[9:]...)} {
		if _, err := c.ReadSeq(1, bytes.NewReader(bad)); err == nil {
			t.Errorf("corrupt file of %d bytes accepted", len(bad))
		}
		if c.Len(1) != 300 {
			t.Errorf("failed restore changed the sequence (%d positions)", c.Len(1))
		}
	}
	// Another page size repacks (TestRestoreRepacks); another head shape is refused.
	other := testCache(t, tensor.F16, tensor.F16, false, 1, 1024, 256)
	if n, err := other.ReadSeq(0, bytes.NewReader(data)); err != nil || n != 300 {
		t.Errorf("file from a different page size: %d, %v", n, err)
	}
	narrow, err := New(Config{Layers: 2, KVHeads: 1, HeadDimK: 64, HeadDimV: 64, Seqs: 1, Ctx: 1024, PageTokens: 128,
		Threads: 1, TypeK: uniform(2, tensor.F16), TypeV: uniform(2, tensor.F16)})
	if err != nil {
		t.Fatal(err)
	}
	defer narrow.Close()
	if _, err := narrow.ReadSeq(0, bytes.NewReader(data)); err == nil {
		t.Error("file from a different head shape accepted")
	}
}

func TestCheckType(t *testing.T) {
	if err := CheckType(tensor.Q4_0, 64); err != nil {
		t.Error(err)
	}
	err := CheckType(tensor.Q4_0, 48)
	if err == nil || !strings.Contains(err.Error(), "do not divide the head dimension 48") || !strings.Contains(err.Error(), "f16") {
		t.Errorf("q4_0 for head dim 48: %v", err)
	}
	if _, err := ParseType("q3_k"); err == nil || !strings.Contains(err.Error(), "allowed: f32, f16") {
		t.Errorf("ParseType(q3_k): %v", err)
	}
	if err := CheckType(tensor.Q4_K, 256); err == nil {
		t.Error("q4_K accepted as a cache type")
	}
}

// AttendRun gives every token exactly the result Attend gives it alone,
// for every type, rotation and run length (the batch-invariance
// guarantee attention adds to the matrix products').
func TestAttendRunBitIdenticalToAttend(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, typ := range Types {
		t.Run(typ.String(), func(t *testing.T) {
			c := testCache(t, typ, typ, true, 1, 700, 128)
			for pos := 0; pos < 700; pos++ {
				c.Store(0, 0, pos, randRow(r, 128, 1), randRow(r, 128, 1))
			}
			const g, D = 4, 64
			for _, run := range []struct{ pos0, n int }{{0, 1}, {0, 32}, {100, 7}, {250, 13}, {668, 32}} {
				// Queries laid out as the model does: 8 heads per token,
				// the 4 of KV head 1 at offset 4*D.
				q := randRow(r, run.n*2*g*D, 0.3)
				out := make([]float32, run.n*2*g*D)
				c.AttendRun(0, 0, run.pos0, run.n, 1, g, q[g*D:], 2*g*D, out[g*D:], 2*g*D, 1)
				for i := 0; i < run.n; i++ {
					single := make([]float32, g*D)
					c.Attend(0, 0, run.pos0+i, 1, q[(2*i+1)*g*D:(2*i+2)*g*D], single, 0)
					for j, v := range single {
						if got := out[(2*i+1)*g*D+j]; got != v {
							t.Fatalf("%s run %+v token %d: %g != single %g", typ, run, i, got, v)
						}
					}
				}
			}
		})
	}
}
