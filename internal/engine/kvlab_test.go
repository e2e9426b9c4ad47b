package engine_test

// A capture of one chunk's queries, keys and values, for offline study of
// key quantizers (issue 18). Off unless KVSERVE_KVLAB=OUTFILE is set:
//
//	KVSERVE_KVLAB=/tmp/cap KVSERVE_KVLAB_MODEL=kvtest-27m go test ./internal/engine -run KVLabCapture
//
// File: int32 header nLayer, T, nKV, g, D, Dv; then per layer K [T][nKV][D],
// V [T][nKV][Dv], Q [T][nKV][g][D] (float32, queries already scaled).

import (
	"bufio"
	"encoding/binary"
	"os"
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/model"
	"github.com/kvserve/kvserve/internal/testassets"
)

type kvRecorder struct {
	*kvcache.Cache
	nKV, g, D, Dv int
	K, V, Q       [][]float32
}

func (r *kvRecorder) Store(l, seq, pos int, k, v []float32) {
	copy(r.K[l][pos*r.nKV*r.D:], k)
	copy(r.V[l][pos*r.nKV*r.Dv:], v)
	r.Cache.Store(l, seq, pos, k, v)
}

func (r *kvRecorder) AttendRun(l, seq, pos0, nTok, h, g int, q []float32, qStride int, out []float32, outStride int, worker int) {
	for i := 0; i < nTok; i++ {
		copy(r.Q[l][((pos0+i)*r.nKV+h)*g*r.D:][:g*r.D], q[i*qStride:][:g*r.D])
	}
	r.Cache.AttendRun(l, seq, pos0, nTok, h, g, q, qStride, out, outStride, worker)
}

func TestKVLabCapture(t *testing.T) {
	out := os.Getenv("KVSERVE_KVLAB")
	if out == "" {
		t.Skip("KVSERVE_KVLAB not set")
	}
	name := os.Getenv("KVSERVE_KVLAB_MODEL")
	e, err := engine.Load(testassets.Path(t, "models/"+name+"-f16.gguf"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	text, err := os.ReadFile(testassets.Path(t, "eval/dev.txt"))
	if err != nil {
		t.Fatal(err)
	}
	const T = 2048
	chunk := 0
	if s := os.Getenv("KVSERVE_KVLAB_CHUNK"); s != "" {
		chunk = int(s[0] - '0')
	}
	cache, err := e.NewCache(engine.DefaultCacheOptions(), 1, T)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	m := e.Model
	g := m.NHead / m.NHeadKV
	r := &kvRecorder{Cache: cache, nKV: m.NHeadKV, g: g, D: m.HeadDim, Dv: m.HeadDimV}
	for l := 0; l < m.NLayer; l++ {
		r.K = append(r.K, make([]float32, T*r.nKV*r.D))
		r.V = append(r.V, make([]float32, T*r.nKV*r.Dv))
		r.Q = append(r.Q, make([]float32, T*r.nKV*g*r.D))
	}
	tokens := e.Tok.Encode(string(text), true, true)[chunk*T : (chunk+1)*T]
	if e.BOS() >= 0 {
		tokens[0] = e.BOS()
	}
	run := model.NewRunner(m, e.Pool, 512)
	run.SetContext(T)
	for i := 0; i < T; i += 512 {
		pos := make([]int, 512)
		for j := range pos {
			pos[j] = i + j
		}
		if _, err := run.Forward(&model.Batch{Tokens: tokens[i : i+512], Pos: pos}, r); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for _, v := range []int32{int32(m.NLayer), T, int32(r.nKV), int32(g), int32(r.D), int32(r.Dv)} {
		binary.Write(w, binary.LittleEndian, v)
	}
	for l := 0; l < m.NLayer; l++ {
		binary.Write(w, binary.LittleEndian, r.K[l])
		binary.Write(w, binary.LittleEndian, r.V[l])
		binary.Write(w, binary.LittleEndian, r.Q[l])
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Logf("%s: %d layers, %d kv heads × %d queries, D %d/%d", name, m.NLayer, r.nKV, g, r.D, r.Dv)
}
