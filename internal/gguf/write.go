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
func Write(w io.Writer, kvs []KV, tensors []WriterTensor) error {
	align := uint64(DefaultAlignment)
	for _, kv := range kvs {
		if kv.Key == "general.alignment" {
			a, ok := kv.Value.V.(uint32)
			if !ok || a == 0 || a&(a-1) != 0 {
				return fmt.Errorf("gguf: general.alignment must be a power-of-two uint32")
			}
			align = uint64(a)
		}
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
		if !t.Type.Known() {
			return fmt.Errorf("gguf: tensor %q: unknown type %d", t.Name, uint32(t.Type))
		}
		if len(t.Dims) == 0 || t.Dims[0]%uint64(t.Type.BlockSize()) != 0 {
			return fmt.Errorf("gguf: tensor %q: dims %v do not fit %s blocks", t.Name, t.Dims, t.Type)
		}
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

// WriteFile writes a GGUF file atomically: to a temporary file in the same
// directory, synced, then renamed over path.
func WriteFile(path string, kvs []KV, tensors []WriterTensor) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
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
	default:
		if e.err == nil {
			e.err = fmt.Errorf("gguf: cannot encode array of Go type %T", a.Values)
		}
	}
}
