package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/kvserve/kvserve/internal/tensor"
)

// WriterTensor is a tensor to be written: its description and a function
// that produces its data (exactly Type.RowSize(Dims[0]) × rows bytes).
type WriterTensor struct {
	Name string
	Dims []uint64
	Type tensor.Type
	// Data writes the tensor's bytes to w. It is called once, in order.
	Data func(w io.Writer) error
}

// Size returns the tensor's byte size.
func (t *WriterTensor) Size() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n / uint64(t.Type.BlockSize()) * uint64(t.Type.TypeSize())
}

// Write writes a GGUF v3 file: the metadata in the order given, then the
// tensor infos and data, each tensor aligned to general.alignment (taken
// from kvs when present, else 32).
//
// Everything is checked before the first byte is written, against the same
// rules Parse applies: each value's Go type must match its Type tag (and an
// array's Values its Elem; nil Values is an empty array), keys and tensor
// names must be unique, tensors must have 1 to 4 non-zero dimensions whose
// row is a whole number of blocks. So Write never produces a file that
// Parse rejects.
func Write(w io.Writer, kvs []KV, tensors []WriterTensor) error {
	align, err := checkWrite(kvs, tensors)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	cw := &countWriter{w: bw}
	e := &encoder{w: cw}
	e.raw([]byte(Magic))
	e.u32(3)
	e.u64(uint64(len(tensors)))
	e.u64(uint64(len(kvs)))
	for _, kv := range kvs {
		e.str(kv.Key)
		e.u32(uint32(kv.Value.Type))
		e.value(kv.Value)
	}
	offset := uint64(0)
	for i := range tensors {
		t := &tensors[i]
		e.str(t.Name)
		e.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.Type))
		e.u64(offset)
		offset += (t.Size() + align - 1) / align * align
	}
	if e.err != nil {
		return e.err
	}
	if err := pad(cw, align); err != nil {
		return err
	}
	for i := range tensors {
		t := &tensors[i]
		start := cw.n
		if err := t.Data(cw); err != nil {
			return fmt.Errorf("gguf: writing tensor %q: %w", t.Name, err)
		}
		if got := cw.n - start; got != t.Size() {
			return fmt.Errorf("gguf: tensor %q: wrote %d bytes, want %d", t.Name, got, t.Size())
		}
		if err := pad(cw, align); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// checkWrite validates what Write is asked to write and returns the
// alignment.
func checkWrite(kvs []KV, tensors []WriterTensor) (uint64, error) {
	align := uint64(DefaultAlignment)
	keys := make(map[string]bool, len(kvs))
	for _, kv := range kvs {
		if len(kv.Key) > maxKeyLen {
			return 0, fmt.Errorf("gguf: metadata key of %d bytes (at most %d)", len(kv.Key), maxKeyLen)
		}
		if keys[kv.Key] {
			return 0, fmt.Errorf("gguf: duplicate metadata key %q", kv.Key)
		}
		keys[kv.Key] = true
		if err := checkValue(kv.Value, 0); err != nil {
			return 0, fmt.Errorf("gguf: key %q: %w", kv.Key, err)
		}
		if kv.Key == "general.alignment" {
			a, ok := kv.Value.V.(uint32)
			if !ok || a == 0 || a&(a-1) != 0 || a > 1<<20 {
				return 0, fmt.Errorf("gguf: general.alignment must be a power-of-two uint32 up to 1 MiB, got %s %s", kv.Value.Type, kv.Value.Describe())
			}
			align = uint64(a)
		}
	}
	names := make(map[string]bool, len(tensors))
	for i := range tensors {
		t := &tensors[i]
		if len(t.Name) > maxKeyLen {
			return 0, fmt.Errorf("gguf: tensor name of %d bytes (at most %d)", len(t.Name), maxKeyLen)
		}
		if names[t.Name] {
			return 0, fmt.Errorf("gguf: duplicate tensor %q", t.Name)
		}
		names[t.Name] = true
		if !t.Type.Known() {
			return 0, fmt.Errorf("gguf: tensor %q: unknown type %d", t.Name, uint32(t.Type))
		}
		if len(t.Dims) == 0 || len(t.Dims) > maxTensorDims {
			return 0, fmt.Errorf("gguf: tensor %q has %d dimensions (1 to %d allowed)", t.Name, len(t.Dims), maxTensorDims)
		}
		elems := uint64(1)
		for _, d := range t.Dims {
			if d == 0 || d > math.MaxInt64/elems {
				return 0, fmt.Errorf("gguf: tensor %q has impossible dimensions %v", t.Name, t.Dims)
			}
			elems *= d
		}
		bs := uint64(t.Type.BlockSize())
		if t.Dims[0]%bs != 0 {
			return 0, fmt.Errorf("gguf: tensor %q: row of %d elements is not a multiple of %s's block size %d", t.Name, t.Dims[0], t.Type, bs)
		}
		if elems/bs > math.MaxInt64/uint64(t.Type.TypeSize()) {
			return 0, fmt.Errorf("gguf: tensor %q is impossibly large", t.Name)
		}
		if t.Data == nil {
			return 0, fmt.Errorf("gguf: tensor %q has no Data function", t.Name)
		}
	}
	return align, nil
}

// checkValue checks that v's Go value matches its type tag.
func checkValue(v Value, depth int) error {
	ok := false
	switch v.Type {
	case TypeUint8:
		_, ok = v.V.(uint8)
	case TypeInt8:
		_, ok = v.V.(int8)
	case TypeUint16:
		_, ok = v.V.(uint16)
	case TypeInt16:
		_, ok = v.V.(int16)
	case TypeUint32:
		_, ok = v.V.(uint32)
	case TypeInt32:
		_, ok = v.V.(int32)
	case TypeFloat32:
		_, ok = v.V.(float32)
	case TypeBool:
		_, ok = v.V.(bool)
	case TypeString:
		_, ok = v.V.(string)
	case TypeUint64:
		_, ok = v.V.(uint64)
	case TypeInt64:
		_, ok = v.V.(int64)
	case TypeFloat64:
		_, ok = v.V.(float64)
	case TypeArray:
		a, isArray := v.V.(*Array)
		if isArray && a != nil {
			return checkArray(a, depth)
		}
	default:
		return fmt.Errorf("unknown value type %d", uint32(v.Type))
	}
	if !ok {
		return fmt.Errorf("value of Go type %T does not match its type %s", v.V, v.Type)
	}
	return nil
}

// checkArray checks that a's Values match its Elem, recursively, and that
// arrays are nested no deeper than Parse accepts.
func checkArray(a *Array, depth int) error {
	if depth >= maxNesting {
		return fmt.Errorf("arrays nested more than %d deep", maxNesting)
	}
	if a.Values == nil {
		if a.Elem.fixedSize() == 0 && a.Elem != TypeString && a.Elem != TypeArray {
			return fmt.Errorf("array of unknown value type %d", uint32(a.Elem))
		}
		return nil
	}
	ok := false
	switch a.Elem {
	case TypeUint8:
		_, ok = a.Values.([]uint8)
	case TypeInt8:
		_, ok = a.Values.([]int8)
	case TypeUint16:
		_, ok = a.Values.([]uint16)
	case TypeInt16:
		_, ok = a.Values.([]int16)
	case TypeUint32:
		_, ok = a.Values.([]uint32)
	case TypeInt32:
		_, ok = a.Values.([]int32)
	case TypeFloat32:
		_, ok = a.Values.([]float32)
	case TypeBool:
		_, ok = a.Values.([]bool)
	case TypeString:
		_, ok = a.Values.([]string)
	case TypeUint64:
		_, ok = a.Values.([]uint64)
	case TypeInt64:
		_, ok = a.Values.([]int64)
	case TypeFloat64:
		_, ok = a.Values.([]float64)
	case TypeArray:
		var sub []*Array
		if sub, ok = a.Values.([]*Array); ok {
			for i, x := range sub {
				if x == nil {
					return fmt.Errorf("nil element %d of an array of arrays", i)
				}
				if err := checkArray(x, depth+1); err != nil {
					return err
				}
			}
		}
	default:
		return fmt.Errorf("array of unknown value type %d", uint32(a.Elem))
	}
	if !ok {
		return fmt.Errorf("array values of Go type %T do not match its element type %s", a.Values, a.Elem)
	}
	return nil
}

// WriteFile writes a GGUF file atomically: to a temporary file in the same
// directory, synced, then renamed over path.
func WriteFile(path string, kvs []KV, tensors []WriterTensor) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file private; a model file is for sharing.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := Write(tmp, kvs, tensors); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func pad(cw *countWriter, align uint64) error {
	if r := cw.n % align; r != 0 {
		_, err := cw.Write(make([]byte, align-r))
		return err
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n uint64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += uint64(n)
	return n, err
}

type encoder struct {
	w   io.Writer
	err error
	b   [8]byte
}

func (e *encoder) raw(p []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(p)
	}
}
func (e *encoder) u8(v uint8) { e.b[0] = v; e.raw(e.b[:1]) }
func (e *encoder) u16(v uint16) {
	binary.LittleEndian.PutUint16(e.b[:], v)
	e.raw(e.b[:2])
}
func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.b[:], v)
	e.raw(e.b[:4])
}
func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.b[:], v)
	e.raw(e.b[:8])
}
func (e *encoder) str(s string) { e.u64(uint64(len(s))); e.raw([]byte(s)) }

func (e *encoder) value(v Value) {
	switch x := v.V.(type) {
	case uint8:
		e.u8(x)
	case int8:
		e.u8(uint8(x))
	case bool:
		if x {
			e.u8(1)
		} else {
			e.u8(0)
		}
	case uint16:
		e.u16(x)
	case int16:
		e.u16(uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	case string:
		e.str(x)
	case *Array:
		e.array(x)
	default:
		if e.err == nil {
			e.err = fmt.Errorf("gguf: cannot encode value of Go type %T", v.V)
		}
	}
}

func (e *encoder) array(a *Array) {
	e.u32(uint32(a.Elem))
	e.u64(uint64(a.Len()))
	switch v := a.Values.(type) {
	case []uint8:
		e.raw(v)
	case []int8:
		for _, x := range v {
			e.u8(uint8(x))
		}
	case []bool:
		for _, x := range v {
			e.value(Value{V: x})
		}
	case []uint16:
		for _, x := range v {
			e.u16(x)
		}
	case []int16:
		for _, x := range v {
			e.u16(uint16(x))
		}
	case []uint32:
		for _, x := range v {
			e.u32(x)
		}
	case []int32:
		for _, x := range v {
			e.u32(uint32(x))
		}
	case []float32:
		for _, x := range v {
			e.u32(math.Float32bits(x))
		}
	case []uint64:
		for _, x := range v {
			e.u64(x)
		}
	case []int64:
		for _, x := range v {
			e.u64(uint64(x))
		}
	case []float64:
		for _, x := range v {
			e.u64(math.Float64bits(x))
		}
	case []string:
		for _, x := range v {
			e.str(x)
		}
	case []*Array:
		for _, x := range v {
			e.array(x)
		}
	case nil: // an empty array (checked by checkArray)
	default:
		if e.err == nil {
			e.err = fmt.Errorf("gguf: cannot encode array of Go type %T", a.Values)
		}
	}
}
