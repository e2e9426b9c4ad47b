package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
	"github.com/kvserve/kvserve/internal/testassets"
)

// ---- helpers ----

// pattern returns n deterministic bytes that differ per seed.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func dataTensor(name string, typ tensor.Type, dims []uint64, seed byte) (WriterTensor, []byte) {
	wt := WriterTensor{Name: name, Dims: dims, Type: typ}
	d := pattern(int(wt.Size()), seed)
	wt.Data = func(w io.Writer) error { _, err := w.Write(d); return err }
	return wt, d
}

func writeBytes(t testing.TB, kvs []KV, ts []WriterTensor) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, kvs, ts); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// valuesEqual compares decoded values exactly, floats by their bits (so
// NaN payloads and negative zero count).
func valuesEqual(a, b any) bool {
	switch x := a.(type) {
	case float32:
		y, ok := b.(float32)
		return ok && math.Float32bits(x) == math.Float32bits(y)
	case float64:
		y, ok := b.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	case []float32:
		y, ok := b.([]float32)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
				return false
			}
		}
		return true
	case []float64:
		y, ok := b.([]float64)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if math.Float64bits(x[i]) != math.Float64bits(y[i]) {
				return false
			}
		}
		return true
	case *Array:
		y, ok := b.(*Array)
		return ok && x.Elem == y.Elem && x.Len() == y.Len() && valuesEqual(x.Values, y.Values)
	case []*Array:
		y, ok := b.([]*Array)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !valuesEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

func kvsEqual(t testing.TB, got, want []KV) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d KVs, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Key != w.Key || g.Value.Type != w.Value.Type || !valuesEqual(g.Value.V, w.Value.V) {
			t.Errorf("KV %d: got %q %s %#v, want %q %s %#v", i, g.Key, g.Value.Type, g.Value.V, w.Key, w.Value.Type, w.Value.V)
		}
	}
}

// ---- round trip ----

func allValuesKVs() []KV {
	nan := math.Float32frombits(0x7fc01234)
	arr := func(e ValueType, v any) Value { return Value{TypeArray, &Array{Elem: e, Values: v}} }
	return []KV{
		{"general.architecture", Value{TypeString, "llama"}},
		{"general.alignment", Value{TypeUint32, uint32(64)}},
		{"t.u8", Value{TypeUint8, uint8(200)}},
		{"t.i8", Value{TypeInt8, int8(-100)}},
		{"t.u16", Value{TypeUint16, uint16(60000)}},
		{"t.i16", Value{TypeInt16, int16(-30000)}},
		{"t.u32", Value{TypeUint32, uint32(4000000000)}},
		{"t.i32", Value{TypeInt32, int32(-2000000000)}},
		{"t.f32", Value{TypeFloat32, float32(1e-5)}},
		{"t.f32nan", Value{TypeFloat32, nan}},
		{"t.bool.true", Value{TypeBool, true}},
		{"t.bool.false", Value{TypeBool, false}},
		{"t.str", Value{TypeString, "héllo, 世界\x00\n"}},
		{"t.str.empty", Value{TypeString, ""}},
		{"t.u64", Value{TypeUint64, uint64(math.MaxUint64)}},
		{"t.i64", Value{TypeInt64, int64(math.MinInt64)}},
		{"t.f64", Value{TypeFloat64, math.Copysign(0, -1)}},
		{"t.f64inf", Value{TypeFloat64, math.Inf(1)}},
		{"", Value{TypeString, "empty key"}},
		{"a.u8", arr(TypeUint8, []uint8{0, 1, 255})},
		{"a.i8", arr(TypeInt8, []int8{-128, 0, 127})},
		{"a.u16", arr(TypeUint16, []uint16{1, 65535})},
		{"a.i16", arr(TypeInt16, []int16{-32768, 32767})},
		{"a.u32", arr(TypeUint32, []uint32{7, 0xdeadbeef})},
		{"a.i32", arr(TypeInt32, []int32{-1, 1, math.MaxInt32})},
		{"a.f32", arr(TypeFloat32, []float32{1.5, float32(math.Inf(-1)), nan})},
		{"a.bool", arr(TypeBool, []bool{true, false, true})},
		{"a.str", arr(TypeString, []string{"a", "", "ccc", strings.Repeat("x", 300)})},
		{"a.u64", arr(TypeUint64, []uint64{1 << 63})},
		{"a.i64", arr(TypeInt64, []int64{-5, 5})},
		{"a.f64", arr(TypeFloat64, []float64{math.Pi, math.NaN()})},
		{"a.empty.u8", arr(TypeUint8, []uint8{})},
		{"a.empty.str", arr(TypeString, []string{})},
		{"a.empty.arr", arr(TypeArray, []*Array{})},
		{"a.nested", arr(TypeArray, []*Array{
			{Elem: TypeUint32, Values: []uint32{1, 2}},
			{Elem: TypeString, Values: []string{"x"}},
			{Elem: TypeFloat64, Values: []float64{}},
			{Elem: TypeArray, Values: []*Array{
				{Elem: TypeArray, Values: []*Array{{Elem: TypeBool, Values: []bool{true}}}},
				{Elem: TypeInt8, Values: []int8{-3}},
			}},
		})},
		{"z.last", Value{TypeUint32, uint32(1)}},
	}
}

type refTensor struct {
	name string
	typ  tensor.Type
	dims []uint64
	data []byte
}

func roundTripTensors() ([]WriterTensor, []refTensor) {
	specs := []refTensor{
		{name: "tok", typ: tensor.F32, dims: []uint64{3, 2}}, // 24 bytes: padded
		{name: "f16.odd", typ: tensor.F16, dims: []uint64{5}},
		{name: "q8", typ: tensor.Q8_0, dims: []uint64{64, 3}},
		{name: "q4k", typ: tensor.Q4_K, dims: []uint64{256, 2}},
		{name: "i8.3d", typ: tensor.I8, dims: []uint64{7, 1, 2}},
		{name: "bf16.4d", typ: tensor.BF16, dims: []uint64{2, 2, 2, 2}},
		{name: "q6k", typ: tensor.Q6_K, dims: []uint64{256}},
	}
	var ws []WriterTensor
	for i := range specs {
		wt, d := dataTensor(specs[i].name, specs[i].typ, specs[i].dims, byte(i+1))
		specs[i].data = d
		ws = append(ws, wt)
	}
	return ws, specs
}

func checkRoundTrip(t *testing.T, f *File, kvs []KV, ref []refTensor) {
	t.Helper()
	if f.Version != 3 {
		t.Errorf("version %d", f.Version)
	}
	if f.Alignment != 64 {
		t.Errorf("alignment %d, want 64", f.Alignment)
	}
	if f.DataStart%64 != 0 {
		t.Errorf("data section starts at %d, not aligned to 64", f.DataStart)
	}
	kvsEqual(t, f.KVs, kvs)
	if len(f.Tensors) != len(ref) {
		t.Fatalf("%d tensors, want %d", len(f.Tensors), len(ref))
	}
	next := uint64(0)
	for i, r := range ref {
		ti := &f.Tensors[i]
		if ti.Name != r.name || ti.Type != r.typ || !reflect.DeepEqual(ti.Dims, r.dims) || ti.Size != uint64(len(r.data)) {
			t.Errorf("tensor %d: %s %v %s %d bytes, want %s %v %s %d", i, ti.Name, ti.Dims, ti.Type, ti.Size, r.name, r.dims, r.typ, len(r.data))
		}
		if ti.Offset%64 != 0 || ti.Offset != next {
			t.Errorf("tensor %q at offset %d, want %d (aligned to 64)", ti.Name, ti.Offset, next)
		}
		next = ti.Offset + (ti.Size+63)/64*64
		if !bytes.Equal(f.TensorData(ti), r.data) {
			t.Errorf("tensor %q data differs", ti.Name)
		}
		start := f.DataStart + ti.Offset
		if !bytes.Equal(f.Bytes()[start:start+ti.Size], r.data) {
			t.Errorf("tensor %q not at DataStart+Offset", ti.Name)
		}
		if got, ok := f.Tensor(r.name); !ok || got != ti {
			t.Errorf("Tensor(%q) lookup failed", r.name)
		}
	}
	if f.DataStart+next != uint64(len(f.Bytes())) {
		t.Errorf("file is %d bytes, want %d", len(f.Bytes()), f.DataStart+next)
	}
	if _, ok := f.Tensor("nope"); ok {
		t.Error("Tensor found a missing name")
	}
	// Typed accessors.
	if f.Architecture() != "llama" {
		t.Errorf("architecture %q", f.Architecture())
	}
	if v, ok := f.Uint("t.u16"); !ok || v != 60000 {
		t.Errorf("Uint(t.u16) = %d %v", v, ok)
	}
	if _, ok := f.Uint("t.i8"); ok {
		t.Error("Uint accepted a negative int8")
	}
	if v, ok := f.Int("t.i64"); !ok || v != math.MinInt64 {
		t.Errorf("Int(t.i64) = %d %v", v, ok)
	}
	if _, ok := f.Int("t.u64"); ok {
		t.Error("Int accepted MaxUint64")
	}
	if v, ok := f.Float("t.f32"); !ok || v != float64(float32(1e-5)) {
		t.Errorf("Float(t.f32) = %g %v", v, ok)
	}
	if v, ok := f.Float("t.i32"); !ok || v != -2e9 {
		t.Errorf("Float(t.i32) = %g %v", v, ok)
	}
	if v, ok := f.Bool("t.bool.true"); !ok || !v {
		t.Errorf("Bool = %v %v", v, ok)
	}
	if v, ok := f.Strings("a.str"); !ok || len(v) != 4 || v[2] != "ccc" {
		t.Errorf("Strings = %q %v", v, ok)
	}
	if _, ok := f.Strings("a.u8"); ok {
		t.Error("Strings accepted a uint8 array")
	}
	if _, ok := f.String("t.u8"); ok {
		t.Error("String accepted a uint8")
	}
	if _, ok := f.Get("missing"); ok {
		t.Error("Get found a missing key")
	}
	if a, ok := f.Array("a.nested"); !ok || a.Len() != 4 || a.Values.([]*Array)[3].Values.([]*Array)[0].Values.([]*Array)[0].Values.([]bool)[0] != true {
		t.Errorf("nested array: %#v", a)
	}
}

func TestRoundTrip(t *testing.T) {
	kvs := allValuesKVs()
	ws, ref := roundTripTensors()
	buf := writeBytes(t, kvs, ws)

	f, err := Parse(buf)
	if err != nil {
		t.Fatal(err)
	}
	checkRoundTrip(t, f, kvs, ref)
	if err := f.Close(); err != nil {
		t.Error(err)
	}

	path := filepath.Join(t.TempDir(), "rt.gguf")
	ws, _ = roundTripTensors()
	if err := WriteFile(path, kvs, ws); err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, buf) {
		t.Error("WriteFile and Write produce different bytes")
	}
	g, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	checkRoundTrip(t, g, kvs, ref)
	if err := g.Close(); err != nil {
		t.Error(err)
	}
	if err := g.Close(); err != nil { // idempotent
		t.Error(err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("WriteFile left %d files behind", len(ents))
	}

	// Parsed metadata and tensors written again give the same bytes.
	if again := rewrite(t, f); !bytes.Equal(again, buf) {
		t.Error("re-writing a parsed file changes its bytes")
	}
}

// The default alignment, no tensors, no metadata.
func TestRoundTripMinimal(t *testing.T) {
	for _, c := range []struct {
		kvs []KV
		ts  []WriterTensor
	}{
		{nil, nil},
		{[]KV{{"k", Value{TypeArray, &Array{Elem: TypeString}}}}, nil}, // nil Values: empty
		{nil, []WriterTensor{func() WriterTensor { w, _ := dataTensor("x", tensor.F32, []uint64{1}, 9); return w }()}},
	} {
		buf := writeBytes(t, c.kvs, c.ts)
		f, err := Parse(buf)
		if err != nil {
			t.Fatal(err)
		}
		if f.Alignment != DefaultAlignment || f.DataStart%DefaultAlignment != 0 || len(f.KVs) != len(c.kvs) || len(f.Tensors) != len(c.ts) {
			t.Errorf("minimal file: %+v", f)
		}
		if len(buf)%DefaultAlignment != 0 {
			t.Errorf("file of %d bytes is not padded", len(buf))
		}
	}
}

// rewrite writes f's metadata and tensors with Write.
func rewrite(t testing.TB, f *File) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, f.KVs, writerTensors(f)); err != nil {
		t.Fatalf("re-writing a parsed file: %v", err)
	}
	return buf.Bytes()
}

func writerTensors(f *File) []WriterTensor {
	ws := make([]WriterTensor, len(f.Tensors))
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		ws[i] = WriterTensor{Name: ti.Name, Dims: ti.Dims, Type: ti.Type, Data: func(w io.Writer) error {
			_, err := w.Write(f.TensorData(ti))
			return err
		}}
	}
	return ws
}

func TestWriteRejects(t *testing.T) {
	okT, _ := dataTensor("t", tensor.F32, []uint64{4}, 1)
	arr := func(e ValueType, v any) Value { return Value{TypeArray, &Array{Elem: e, Values: v}} }
	deep := &Array{Elem: TypeUint8, Values: []uint8{1}}
	for range 4 {
		deep = &Array{Elem: TypeArray, Values: []*Array{deep}}
	}
	cases := []struct {
		name string
		kvs  []KV
		ts   []WriterTensor
		want string
	}{
		{"type mismatch", []KV{{"k", Value{TypeUint32, uint64(1)}}}, nil, "does not match its type uint32"},
		{"untyped int", []KV{{"k", Value{TypeInt32, 1}}}, nil, "does not match"},
		{"unknown type", []KV{{"k", Value{ValueType(13), uint8(1)}}}, nil, "unknown value type 13"},
		{"nil array", []KV{{"k", Value{TypeArray, (*Array)(nil)}}}, nil, "does not match"},
		{"array elem mismatch", []KV{{"k", arr(TypeUint32, []int32{1})}}, nil, "do not match its element type uint32"},
		{"array unknown elem", []KV{{"k", arr(ValueType(99), nil)}}, nil, "unknown value type 99"},
		{"nil nested", []KV{{"k", arr(TypeArray, []*Array{nil})}}, nil, "nil element"},
		{"too deep", []KV{{"k", Value{TypeArray, deep}}}, nil, "nested more than 4 deep"},
		{"duplicate key", []KV{{"k", Value{TypeBool, true}}, {"k", Value{TypeBool, true}}}, nil, "duplicate metadata key"},
		{"alignment type", []KV{{"general.alignment", Value{TypeUint64, uint64(32)}}}, nil, "must be a power-of-two uint32 up to 1 MiB, got uint64"},
		{"alignment 0", []KV{{"general.alignment", Value{TypeUint32, uint32(0)}}}, nil, "power-of-two"},
		{"alignment 48", []KV{{"general.alignment", Value{TypeUint32, uint32(48)}}}, nil, "power-of-two"},
		{"alignment 2 MiB", []KV{{"general.alignment", Value{TypeUint32, uint32(2 << 20)}}}, nil, "up to 1 MiB"},
		{"duplicate tensor", nil, []WriterTensor{okT, okT}, "duplicate tensor"},
		{"no dims", nil, []WriterTensor{{Name: "x", Type: tensor.F32, Data: okT.Data}}, "0 dimensions"},
		{"5 dims", nil, []WriterTensor{{Name: "x", Dims: []uint64{1, 1, 1, 1, 1}, Type: tensor.F32, Data: okT.Data}}, "5 dimensions"},
		{"zero dim", nil, []WriterTensor{{Name: "x", Dims: []uint64{4, 0}, Type: tensor.F32, Data: okT.Data}}, "impossible dimensions"},
		{"overflow", nil, []WriterTensor{{Name: "x", Dims: []uint64{1 << 32, 1 << 32}, Type: tensor.F32, Data: okT.Data}}, "impossible dimensions"},
		{"too large", nil, []WriterTensor{{Name: "x", Dims: []uint64{1 << 62}, Type: tensor.F32, Data: okT.Data}}, "impossibly large"},
		{"block", nil, []WriterTensor{{Name: "x", Dims: []uint64{33}, Type: tensor.Q8_0, Data: okT.Data}}, "not a multiple of q8_0's block size 32"},
		{"unknown tensor type", nil, []WriterTensor{{Name: "x", Dims: []uint64{4}, Type: tensor.Type(4), Data: okT.Data}}, "unknown type 4"},
		{"nil data", nil, []WriterTensor{{Name: "x", Dims: []uint64{4}, Type: tensor.F32}}, "no Data"},
		{"short data", nil, []WriterTensor{{Name: "x", Dims: []uint64{8}, Type: tensor.F32, Data: okT.Data}}, "wrote 16 bytes, want 32"},
		{"data error", nil, []WriterTensor{{Name: "x", Dims: []uint64{4}, Type: tensor.F32, Data: func(io.Writer) error { return errors.New("boom") }}}, "boom"},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		err := Write(&buf, c.kvs, c.ts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
}

// ---- real files ----

func TestRealModel(t *testing.T) {
	path := testassets.Path(t, "models/kvtest-27m-f16.gguf")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f, err := Open(path)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Tensor data is mapped, not read: the heap holds only the metadata
	// (the vocabulary and merges, about 1.6 MB here).
	heap := after.TotalAlloc - before.TotalAlloc
	t.Logf("Open allocated %d bytes (%d objects) for a file of %d bytes", heap, after.Mallocs-before.Mallocs, st.Size())
	if heap > uint64(st.Size())/16 {
		t.Errorf("Open allocated %d bytes for a file of %d bytes: tensor data is being copied?", heap, st.Size())
	}

	if f.Version != 3 || f.Architecture() != "llama" || len(f.Tensors) != 74 || len(f.KVs) != 27 || f.Alignment != 32 {
		t.Errorf("version %d, architecture %q, %d tensors, %d KVs, alignment %d", f.Version, f.Architecture(), len(f.Tensors), len(f.KVs), f.Alignment)
	}
	for key, want := range map[string]uint64{
		"llama.block_count": 8, "llama.embedding_length": 512, "llama.feed_forward_length": 1408,
		"llama.attention.head_count": 8, "llama.attention.head_count_kv": 2, "llama.context_length": 4096,
		"llama.vocab_size": 8192, "tokenizer.ggml.eot_token_id": 2,
	} {
		if got, ok := f.Uint(key); !ok || got != want {
			t.Errorf("%s = %d (%v), want %d", key, got, ok, want)
		}
	}
	if eps, ok := f.Float("llama.attention.layer_norm_rms_epsilon"); !ok || math.Abs(eps-1e-5) > 1e-12 {
		t.Errorf("rms epsilon %g", eps)
	}
	if toks, ok := f.Strings("tokenizer.ggml.tokens"); !ok || len(toks) != 8192 || toks[0] != "<|endoftext|>" {
		t.Errorf("tokens: %d, first %q", len(toks), toks[:min(1, len(toks))])
	}
	if m, ok := f.Strings("tokenizer.ggml.merges"); !ok || len(m) != 7933 {
		t.Errorf("merges: %d", len(m))
	}
	if a, ok := f.Array("tokenizer.ggml.token_type"); !ok || a.Elem != TypeInt32 || a.Len() != 8192 {
		t.Errorf("token_type: %+v", a)
	}
	if b, ok := f.Bool("tokenizer.ggml.add_bos_token"); !ok || !b {
		t.Error("add_bos_token")
	}
	for _, c := range []struct {
		name string
		dims []uint64
		typ  tensor.Type
	}{
		{"token_embd.weight", []uint64{512, 8192}, tensor.F16},
		{"blk.0.attn_norm.weight", []uint64{512}, tensor.F32},
		{"blk.0.attn_k.weight", []uint64{512, 128}, tensor.F16},
		{"blk.7.ffn_down.weight", []uint64{1408, 512}, tensor.F16},
		{"blk.7.ffn_gate.weight", []uint64{512, 1408}, tensor.F16},
		{"output_norm.weight", []uint64{512}, tensor.F32},
	} {
		ti, ok := f.Tensor(c.name)
		if !ok {
			t.Errorf("no tensor %q", c.name)
			continue
		}
		if !reflect.DeepEqual(ti.Dims, c.dims) || ti.Type != c.typ || ti.Size != ti.Elements()*uint64(c.typ.TypeSize()) {
			t.Errorf("%s: %v %s %d bytes, want %v %s", c.name, ti.Dims, ti.Type, ti.Size, c.dims, c.typ)
		}
	}
	if _, ok := f.Tensor("output.weight"); ok {
		t.Error("tied model has output.weight")
	}
	// Tensors tile the data section in order, each aligned.
	end := uint64(0)
	for _, ti := range f.Tensors {
		if ti.Offset != (end+31)/32*32 {
			t.Errorf("%s at %d, previous ended at %d", ti.Name, ti.Offset, end)
		}
		end = ti.Offset + ti.Size
	}
	if f.DataStart+end > uint64(st.Size()) {
		t.Error("tensors extend past the file")
	}
	// The embedding's first row is real f16 data (finite, not all zero).
	row := f.TensorData(&f.Tensors[0])[:1024]
	nonzero := 0
	for i := 0; i < len(row); i += 2 {
		h := binary.LittleEndian.Uint16(row[i:])
		if h&0x7c00 == 0x7c00 {
			t.Fatalf("non-finite f16 %#04x in token_embd", h)
		}
		if h&0x7fff != 0 {
			nonzero++
		}
	}
	if nonzero < 400 {
		t.Errorf("token_embd row 0 has only %d non-zero values", nonzero)
	}
}

// cmpWriter compares what is written with want, without buffering it.
type cmpWriter struct {
	want []byte
	off  int
	diff int // first differing offset, -1 if none
}

func (c *cmpWriter) Write(p []byte) (int, error) {
	if c.diff < 0 {
		for i, b := range p {
			if c.off+i >= len(c.want) || c.want[c.off+i] != b {
				c.diff = c.off + i
				break
			}
		}
	}
	c.off += len(p)
	return len(p), nil
}

// Every shared model, including those quantized by llama.cpp (K-quants
// mixed with q5_0/q8_0 rows), parses, and writing its metadata and
// tensors back reproduces the file byte for byte.
func TestRealModelsRewriteIdentical(t *testing.T) {
	dir := filepath.Join(testassets.Dir(t), "models")
	paths, _ := filepath.Glob(filepath.Join(dir, "*.gguf"))
	q, _ := filepath.Glob(filepath.Join(dir, "llamacpp-quantized", "*.gguf"))
	paths = append(paths, q...)
	if len(paths) < 4 {
		t.Fatalf("only %d models in %s", len(paths), dir)
	}
	for _, p := range paths {
		f, err := Open(p)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		types := map[tensor.Type]int{}
		for _, ti := range f.Tensors {
			types[ti.Type]++
		}
		if strings.Contains(p, "Q4_K_M") && (types[tensor.Q4_K] == 0 || types[tensor.Q6_K] == 0) {
			t.Errorf("%s: tensor types %v, want q4_K and q6_K", p, types)
		}
		cw := &cmpWriter{want: f.Bytes(), diff: -1}
		if err := Write(cw, f.KVs, writerTensors(f)); err != nil {
			t.Errorf("%s: %v", p, err)
		} else if cw.diff >= 0 || cw.off != len(f.Bytes()) {
			t.Errorf("%s: re-written file differs at byte %d (length %d vs %d)", filepath.Base(p), cw.diff, cw.off, len(f.Bytes()))
		}
		t.Logf("%s: %s, %d tensors %v", filepath.Base(p), f.Architecture(), len(f.Tensors), types)
		f.Close()
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing.gguf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	empty := filepath.Join(dir, "empty.gguf")
	os.WriteFile(empty, nil, 0o644)
	if _, err := Open(empty); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "empty.gguf") || !strings.Contains(err.Error(), "empty file") {
		t.Errorf("empty file: %v", err)
	}
	bad := filepath.Join(dir, "bad.gguf")
	os.WriteFile(bad, []byte("GGUF\x01\x00\x00\x00rest"), 0o644)
	if _, err := Open(bad); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "bad.gguf") || !strings.Contains(err.Error(), "version 1") {
		t.Errorf("version 1 file: %v", err)
	}
}

// ---- malformed files ----

// rawFile assembles a GGUF file byte by byte, so that tests can build what
// Write refuses to.
type rawFile struct{ b []byte }

func (r *rawFile) u8(v uint8) *rawFile   { r.b = append(r.b, v); return r }
func (r *rawFile) u32(v uint32) *rawFile { r.b = binary.LittleEndian.AppendUint32(r.b, v); return r }
func (r *rawFile) u64(v uint64) *rawFile { r.b = binary.LittleEndian.AppendUint64(r.b, v); return r }
func (r *rawFile) str(s string) *rawFile { r.u64(uint64(len(s))); r.b = append(r.b, s...); return r }
func (r *rawFile) raw(p []byte) *rawFile { r.b = append(r.b, p...); return r }
func (r *rawFile) pad(a int) *rawFile {
	for len(r.b)%a != 0 {
		r.b = append(r.b, 0)
	}
	return r
}

func header(nTensors, nKV uint64) *rawFile {
	r := &rawFile{b: []byte(Magic)}
	return r.u32(3).u64(nTensors).u64(nKV)
}

// tinfo appends a tensor info.
func (r *rawFile) tinfo(name string, dims []uint64, typ uint32, off uint64) *rawFile {
	r.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		r.u64(d)
	}
	return r.u32(typ).u64(off)
}

// smallValid is a small valid file whose last tensor ends the file exactly,
// so that every proper prefix of it is truncated.
func smallValid(t testing.TB) []byte {
	t.Helper()
	a, _ := dataTensor("a", tensor.F32, []uint64{3}, 1)
	b, _ := dataTensor("b", tensor.F16, []uint64{16}, 2)
	kvs := []KV{
		{"general.architecture", Value{TypeString, "llama"}},
		{"n", Value{TypeUint32, uint32(7)}},
		{"arr", Value{TypeArray, &Array{Elem: TypeArray, Values: []*Array{{Elem: TypeString, Values: []string{"ab", "c"}}, {Elem: TypeInt16, Values: []int16{-1}}}}}},
		{"f", Value{TypeFloat64, 2.5}},
		{"b", Value{TypeBool, true}},
	}
	buf := writeBytes(t, kvs, []WriterTensor{a, b})
	if f, err := Parse(buf); err != nil {
		t.Fatal(err)
	} else if last := f.Tensors[1]; f.DataStart+last.Offset+last.Size != uint64(len(buf)) {
		t.Fatalf("last tensor ends at %d, file is %d bytes", f.DataStart+last.Offset+last.Size, len(buf))
	}
	return buf
}

func wantFormatError(t *testing.T, name string, buf []byte, want ...string) {
	t.Helper()
	f, err := Parse(buf)
	if err == nil {
		t.Errorf("%s: parsed without error (%d KVs, %d tensors)", name, len(f.KVs), len(f.Tensors))
		return
	}
	if !errors.Is(err, ErrFormat) {
		t.Errorf("%s: error %q does not wrap ErrFormat", name, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q does not mention %q", name, err, w)
		}
	}
}

func TestTruncatedEverywhere(t *testing.T) {
	buf := smallValid(t)
	for n := range len(buf) {
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("prefix of %d bytes: panic %v", n, p)
				}
			}()
			f, err := Parse(buf[:n:n])
			if err == nil {
				t.Fatalf("prefix of %d of %d bytes parsed (%d tensors)", n, len(buf), len(f.Tensors))
			}
			if !errors.Is(err, ErrFormat) || len(err.Error()) < len(ErrFormat.Error())+10 {
				t.Fatalf("prefix of %d bytes: unclear error %q", n, err)
			}
		}()
	}
	if _, err := Parse(buf); err != nil {
		t.Fatal(err)
	}
	// Mid-header truncations say so.
	wantFormatError(t, "cut in a key", buf[:72], "truncated reading metadata key")
	wantFormatError(t, "cut in the header", buf[:30], "metadata count 5 is impossible for a file of 30 bytes")
	wantFormatError(t, "cut in the data", buf[:len(buf)-1], "extends past the end of the file", `"b"`)
}

func TestMalformed(t *testing.T) {
	valid := smallValid(t)
	withVersion := func(v uint32) []byte {
		b := bytes.Clone(valid)
		binary.LittleEndian.PutUint32(b[4:], v)
		return b
	}
	bigEndian := bytes.Clone(valid)
	binary.BigEndian.PutUint32(bigEndian[4:], 3)

	// One f32 tensor of 4 elements (16 bytes) at offset off, after
	// the given KVs.
	oneTensor := func(kv func(*rawFile) int, dims []uint64, typ uint32, off uint64, dataLen int) []byte {
		r := &rawFile{}
		body := &rawFile{}
		nkv := 0
		if kv != nil {
			nkv = kv(body)
		}
		r = header(1, uint64(nkv)).raw(body.b)
		r.tinfo("w", dims, typ, off).pad(32)
		return r.raw(make([]byte, dataLen)).b
	}

	cases := []struct {
		name string
		buf  []byte
		want []string
	}{
		{"empty", nil, []string{"empty file"}},
		{"short", []byte("GG"), []string{"bad magic"}},
		{"bad magic", append([]byte("GGML"), valid[4:]...), []string{"bad magic"}},
		{"FUGG", append([]byte("FUGG"), valid[4:]...), []string{"big-endian"}},
		{"version 1", withVersion(1), []string{"version 1 is not supported"}},
		{"version 0", withVersion(0), []string{"unknown GGUF version 0"}},
		{"version 4", withVersion(4), []string{"unknown GGUF version 4"}},
		{"big-endian", bigEndian, []string{"big-endian"}},
		{"no version", []byte("GGUF\x03\x00"), []string{"truncated reading version"}},
		{"absurd KV count", header(0, 1<<62).b, []string{"metadata count 4611686018427387904 is impossible"}},
		{"absurd tensor count", header(math.MaxUint64, 0).b, []string{"tensor count 18446744073709551615 is impossible"}},
		{"KV count beyond the KVs", header(0, 2).str("k").u32(uint32(TypeUint8)).u8(1).u64(0).b, []string{"truncated"}},
		{"huge key length", header(0, 1).u64(1 << 62).raw(make([]byte, 16)).b, []string{"truncated reading metadata key"}},
		{"huge string value", header(0, 1).str("k").u32(uint32(TypeString)).u64(math.MaxUint64).raw(make([]byte, 16)).b, []string{`truncated reading k`}},
		{"huge array", header(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeUint64)).u64(1 << 60).raw(make([]byte, 64)).b, []string{`key "k": array of 1152921504606846976 uint64 elements does not fit`}},
		{"huge string array", header(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeString)).u64(1 << 60).raw(make([]byte, 64)).b, []string{"does not fit"}},
		{"huge nested array", header(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeArray)).u64(1 << 60).raw(make([]byte, 64)).b, []string{"does not fit"}},
		{"unknown value type", header(0, 1).str("k").u32(13).u64(0).b, []string{`key "k" has unknown value type 13`}},
		{"unknown array type", header(0, 1).str("k").u32(uint32(TypeArray)).u32(77).u64(1).u64(0).b, []string{`array of unknown value type 77`}},
		{"bool 2", header(0, 1).str("k").u32(uint32(TypeBool)).u8(2).b, []string{"bool value 2"}},
		{"nested too deep", func() []byte {
			r := header(0, 1).str("k").u32(uint32(TypeArray))
			for range 5 {
				r.u32(uint32(TypeArray)).u64(1)
			}
			return r.u32(uint32(TypeUint8)).u64(0).raw(make([]byte, 32)).b
		}(), []string{"nested more than 4 deep"}},
		{"duplicate key", header(0, 2).str("k").u32(uint32(TypeUint8)).u8(1).str("k").u32(uint32(TypeUint8)).u8(2).b, []string{`duplicate metadata key "k"`}},
		{"alignment 0", oneTensor(func(r *rawFile) int { r.str("general.alignment").u32(uint32(TypeUint32)).u32(0); return 1 }, []uint64{4}, 0, 0, 16), []string{"general.alignment 0 is not a power of two"}},
		{"alignment 24", oneTensor(func(r *rawFile) int { r.str("general.alignment").u32(uint32(TypeUint32)).u32(24); return 1 }, []uint64{4}, 0, 0, 16), []string{"general.alignment 24"}},
		{"alignment 1<<30", oneTensor(func(r *rawFile) int { r.str("general.alignment").u32(uint32(TypeUint32)).u32(1 << 30); return 1 }, []uint64{4}, 0, 0, 16), []string{"not a power of two up to 1 MiB"}},
		{"alignment uint64", oneTensor(func(r *rawFile) int { r.str("general.alignment").u32(uint32(TypeUint64)).u64(32); return 1 }, []uint64{4}, 0, 0, 16), []string{"general.alignment must be a uint32, got uint64"}},
		{"alignment string", oneTensor(func(r *rawFile) int { r.str("general.alignment").u32(uint32(TypeString)).str("32"); return 1 }, []uint64{4}, 0, 0, 16), []string{"must be a uint32, got string"}},
		{"unknown tensor type", oneTensor(nil, []uint64{4}, 4, 0, 16), []string{`tensor "w" has unknown type 4`}},
		{"unknown tensor type 1000", oneTensor(nil, []uint64{4}, 1000, 0, 16), []string{`tensor "w" has unknown type 1000`}},
		{"zero dims", oneTensor(nil, []uint64{}, 0, 0, 16), []string{`tensor "w" has 0 dimensions`}},
		{"five dims", oneTensor(nil, []uint64{4, 1, 1, 1, 1}, 0, 0, 16), []string{`tensor "w" has 5 dimensions (1 to 4 allowed)`}},
		{"zero dimension", oneTensor(nil, []uint64{4, 0}, 0, 0, 16), []string{`tensor "w" has impossible dimensions [4 0]`}},
		{"dims overflow", oneTensor(nil, []uint64{1 << 32, 1 << 31, 4}, 0, 0, 16), []string{`impossible dimensions [4294967296 2147483648]`}},
		{"dims overflow 64", oneTensor(nil, []uint64{1 << 63, 2}, 0, 0, 16), []string{`impossible dimensions`}},
		{"bytes overflow", oneTensor(nil, []uint64{1 << 62}, 0, 0, 16), []string{`tensor "w" is impossibly large`}},
		{"partial block", oneTensor(nil, []uint64{40}, uint32(tensor.Q8_0), 0, 64), []string{`row of 40 elements is not a multiple of q8_0's block size 32`}},
		{"misaligned offset", oneTensor(nil, []uint64{4}, 0, 8, 64), []string{`tensor "w" offset 8 is not aligned to 32`}},
		{"past the end", oneTensor(nil, []uint64{4}, 0, 32, 32), []string{`tensor "w" (offset 32, 16 bytes) extends past the end of the file`}},
		{"offset huge", oneTensor(nil, []uint64{4}, 0, 1<<63, 32), []string{`extends past the end`}},
		{"data section missing", header(1, 0).tinfo("w", []uint64{4}, 0, 0).b, []string{"data section would start at"}},
		{"overlap", func() []byte {
			r := header(2, 0).tinfo("w1", []uint64{16}, 0, 0).tinfo("w2", []uint64{4}, 0, 32).pad(32)
			return r.raw(make([]byte, 128)).b
		}(), []string{`tensor "w2" overlaps the tensor before it`}},
		{"same offset", func() []byte {
			r := header(2, 0).tinfo("w1", []uint64{4}, 0, 0).tinfo("w2", []uint64{4}, 0, 0).pad(32)
			return r.raw(make([]byte, 64)).b
		}(), []string{"overlaps"}},
		{"duplicate tensor", func() []byte {
			r := header(2, 0).tinfo("w", []uint64{4}, 0, 0).tinfo("w", []uint64{4}, 0, 32).pad(32)
			return r.raw(make([]byte, 64)).b
		}(), []string{`duplicate tensor "w"`}},
	}
	for _, c := range cases {
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("%s: panic %v", c.name, p)
				}
			}()
			wantFormatError(t, c.name, c.buf, c.want...)
		}()
	}
	// The same files through Open carry the path.
	path := filepath.Join(t.TempDir(), "bad.gguf")
	os.WriteFile(path, cases[len(cases)-1].buf, 0o644)
	if _, err := Open(path); !errors.Is(err, ErrFormat) || !strings.HasPrefix(err.Error(), path+": ") {
		t.Errorf("Open: %v", err)
	}
	// Sanity: the helper builds valid files when asked to.
	if _, err := Parse(oneTensor(nil, []uint64{4}, 0, 0, 16)); err != nil {
		t.Errorf("valid one-tensor file: %v", err)
	}
}

// A small file claiming gigantic counts or lengths allocates next to
// nothing before failing.
func TestNoHugeAllocation(t *testing.T) {
	files := map[string][]byte{
		"2^60 uint8 array":  header(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeUint8)).u64(1 << 60).raw(make([]byte, 50)).b,
		"2^60 string array": header(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeString)).u64(1 << 60).raw(make([]byte, 50)).b,
		"2^60 nested array": header(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeArray)).u64(1 << 60).raw(make([]byte, 50)).b,
		"2^60 string":       header(0, 1).str("k").u32(uint32(TypeString)).u64(1 << 60).raw(make([]byte, 50)).b,
		"2^60 KVs":          header(0, 1<<60).raw(make([]byte, 76)).b,
		"2^60 tensors":      header(1<<60, 0).raw(make([]byte, 76)).b,
	}
	for name, buf := range files {
		if len(buf) > 100 {
			t.Fatalf("%s: %d bytes", name, len(buf))
		}
		var a, b runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&a)
		_, err := Parse(buf)
		runtime.ReadMemStats(&b)
		if !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v", name, err)
		}
		if got := b.TotalAlloc - a.TotalAlloc; got > 1<<20 {
			t.Errorf("%s: parsing %d bytes allocated %d bytes", name, len(buf), got)
		}
	}
	// Counts are only bounded by the file's size, so a lying header in a
	// large file must not reserve tables for them up front: here 4 MB of
	// zeros claim 300k KVs or 130k tensors (the second KV or tensor is a
	// duplicate of the first).
	big := make([]byte, 4<<20)
	for name, hdr := range map[string]*rawFile{
		"KVs":     header(0, uint64(len(big))/13),
		"tensors": header(uint64(len(big))/32, 0),
	} {
		buf := append(hdr.b, big[len(hdr.b):]...)
		var a, b runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&a)
		_, err := Parse(buf)
		runtime.ReadMemStats(&b)
		if !errors.Is(err, ErrFormat) {
			t.Errorf("lying %s count: %v", name, err)
		}
		if got := b.TotalAlloc - a.TotalAlloc; got > 1<<20 {
			t.Errorf("lying %s count in a %d-byte file: allocated %d bytes", name, len(buf), got)
		}
	}

	// A file of 1 MB made of empty strings claims exactly what it holds:
	// the allocation stays proportional to the file.
	n := uint64(1 << 17)
	r := header(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeString)).u64(n + 1)
	r.raw(make([]byte, 8*n))
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	_, err := Parse(r.b)
	runtime.ReadMemStats(&b)
	if !errors.Is(err, ErrFormat) {
		t.Errorf("string array one short: %v", err)
	}
	if got := b.TotalAlloc - a.TotalAlloc; got > 8*uint64(len(r.b)) {
		t.Errorf("parsing %d bytes allocated %d bytes", len(r.b), got)
	}
}

func TestDescribe(t *testing.T) {
	for _, c := range []struct {
		v    Value
		want string
	}{
		{Value{TypeString, "hi"}, `"hi"`},
		{Value{TypeString, strings.Repeat("a", 70)}, fmt.Sprintf("%q…", strings.Repeat("a", 60))},
		{Value{TypeArray, &Array{Elem: TypeInt32, Values: []int32{1, 2}}}, "[int32 × 2]"},
		{Value{TypeFloat32, float32(0.5)}, "0.5"},
		{Value{TypeBool, true}, "true"},
	} {
		if got := c.v.Describe(); got != c.want {
			t.Errorf("Describe(%v) = %q, want %q", c.v.V, got, c.want)
		}
	}
	if ValueType(42).String() != "value-type(42)" || TypeFloat64.String() != "float64" {
		t.Error("ValueType.String")
	}
}
