// Package gguf reads and writes GGUF files (versions 2 and 3): metadata,
// tensor descriptions and tensor data. Files are memory-mapped read-only, so
// opening a multi-gigabyte model costs no heap and no copying; every length,
// count and offset in the header is checked against the file's size before
// it is trusted, so a malformed file gives an error, never a panic or a huge
// allocation.
package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/kvserve/kvserve/internal/tensor"
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// DefaultAlignment is used when general.alignment is absent.
const DefaultAlignment = 32

// ValueType is the type tag of a metadata value.
type ValueType uint32

const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}

func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("value-type(%d)", uint32(t))
}

// fixedSize is the encoded size of scalar types (0 for string and array).
func (t ValueType) fixedSize() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// Value is one metadata value. Scalars are held as the Go type matching
// Type (uint8, int8, ..., float64, bool, string); arrays as an *Array.
type Value struct {
	Type ValueType
	V    any
}

// Array is a metadata array. Elements are decoded into a typed slice:
// []uint8, []int8, []uint16, []int16, []uint32, []int32, []float32, []bool,
// []string, []uint64, []int64, []float64, or []*Array for nested arrays.
type Array struct {
	Elem   ValueType
	Values any
}

// Len returns the number of elements.
func (a *Array) Len() int {
	switch v := a.Values.(type) {
	case []uint8:
		return len(v)
	case []int8:
		return len(v)
	case []uint16:
		return len(v)
	case []int16:
		return len(v)
	case []uint32:
		return len(v)
	case []int32:
		return len(v)
	case []float32:
		return len(v)
	case []bool:
		return len(v)
	case []string:
		return len(v)
	case []uint64:
		return len(v)
	case []int64:
		return len(v)
	case []float64:
		return len(v)
	case []*Array:
		return len(v)
	}
	return 0
}

// KV is one metadata key and its value, in file order.
type KV struct {
	Key   string
	Value Value
}

// TensorInfo describes one tensor. Dims are in ggml order: Dims[0] (ne0) is
// the length of a row, the fastest-varying dimension.
type TensorInfo struct {
	Name   string
	Dims   []uint64
	Type   tensor.Type
	Offset uint64 // relative to the start of the data section
	Size   uint64 // bytes

	shard int // the shard of a split model holding it (0: the file itself)
}

// Elements returns the number of elements.
func (ti *TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range ti.Dims {
		n *= d
	}
	return n
}

// Rows returns the number of rows (all elements / ne0).
func (ti *TensorInfo) Rows() uint64 {
	if len(ti.Dims) == 0 || ti.Dims[0] == 0 {
		return 0
	}
	return ti.Elements() / ti.Dims[0]
}

// File is a parsed GGUF file. Tensor data slices point into the mapping;
// they are valid until Close.
type File struct {
	Version   uint32
	KVs       []KV
	Tensors   []TensorInfo
	Alignment uint64
	DataStart uint64 // file offset of the data section

	kv      map[string]int
	tensors map[string]int
	data    []byte // the whole file
	closer  func() error
	shards  []*File // a split model's other shards (OpenModel)
	mapped  bool    // data is Open's file mapping (Release applies)
}

// Limits on what a header may claim, so that a lying header cannot make the
// reader allocate without bound before the file runs out.
const (
	maxTensorDims = 4 // GGML_MAX_DIMS
	maxKeyLen     = 1 << 16
	// maxPrealloc caps the capacity reserved from a count read in the
	// header: a count is only bounded by the file's size, and a lying one
	// in a multi-gigabyte file must not reserve gigabytes. Larger tables
	// grow as they are actually read.
	maxPrealloc = 1 << 12
)

// Parse parses a GGUF file held in memory. The returned File references buf.
func Parse(buf []byte) (*File, error) {
	f, err := parse(buf)
	if err != nil {
		return nil, err
	}
	f.data = buf
	return f, nil
}

// Close releases the file's mapping (if any). Tensor data must not be used
// afterwards.
func (f *File) Close() error {
	for _, sf := range f.shards {
		sf.Close()
	}
	f.shards = nil
	if f.closer != nil {
		c := f.closer
		f.closer = nil
		f.data = nil
		return c()
	}
	return nil
}

// Bytes returns the whole file's bytes.
func (f *File) Bytes() []byte { return f.data }

// TensorData returns the bytes of the named tensor.
func (f *File) TensorData(ti *TensorInfo) []byte {
	if ti.shard > 0 {
		f = f.shards[ti.shard-1]
	}
	start := f.DataStart + ti.Offset
	return f.data[start : start+ti.Size : start+ti.Size]
}

// Tensor looks a tensor up by name.
func (f *File) Tensor(name string) (*TensorInfo, bool) {
	i, ok := f.tensors[name]
	if !ok {
		return nil, false
	}
	return &f.Tensors[i], true
}

// Get returns the value of a metadata key.
func (f *File) Get(key string) (Value, bool) {
	i, ok := f.kv[key]
	if !ok {
		return Value{}, false
	}
	return f.KVs[i].Value, true
}

// String returns a string metadata value.
func (f *File) String(key string) (string, bool) {
	v, ok := f.Get(key)
	if !ok {
		return "", false
	}
	s, ok := v.V.(string)
	return s, ok
}

// Uint returns an integer metadata value of any integer type as uint64
// (negative values are rejected).
func (f *File) Uint(key string) (uint64, bool) {
	v, ok := f.Get(key)
	if !ok {
		return 0, false
	}
	switch x := v.V.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int8:
		return uint64(x), x >= 0
	case int16:
		return uint64(x), x >= 0
	case int32:
		return uint64(x), x >= 0
	case int64:
		return uint64(x), x >= 0
	}
	return 0, false
}

// Int returns an integer metadata value of any integer type as int64.
func (f *File) Int(key string) (int64, bool) {
	v, ok := f.Get(key)
	if !ok {
		return 0, false
	}
	switch x := v.V.(type) {
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		return int64(x), x <= math.MaxInt64
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	}
	return 0, false
}

// Float returns a float (or integer) metadata value as float64.
func (f *File) Float(key string) (float64, bool) {
	v, ok := f.Get(key)
	if !ok {
		return 0, false
	}
	switch x := v.V.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	if i, ok := f.Int(key); ok {
		return float64(i), true
	}
	return 0, false
}

// Bool returns a bool metadata value.
func (f *File) Bool(key string) (bool, bool) {
	v, ok := f.Get(key)
	if !ok {
		return false, false
	}
	b, ok := v.V.(bool)
	return b, ok
}

// Array returns an array metadata value.
func (f *File) Array(key string) (*Array, bool) {
	v, ok := f.Get(key)
	if !ok {
		return nil, false
	}
	a, ok := v.V.(*Array)
	return a, ok
}

// Strings returns a string-array metadata value.
func (f *File) Strings(key string) ([]string, bool) {
	a, ok := f.Array(key)
	if !ok {
		return nil, false
	}
	s, ok := a.Values.([]string)
	return s, ok
}

// Architecture returns general.architecture.
func (f *File) Architecture() string {
	s, _ := f.String("general.architecture")
	return s
}

// ErrFormat is wrapped by every error about a malformed file.
var ErrFormat = errors.New("malformed GGUF")

type reader struct {
	buf []byte
	off uint64
}

func (r *reader) fail(format string, a ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrFormat, r.off, fmt.Sprintf(format, a...))
}

func (r *reader) need(n uint64, what string) error {
	if n > uint64(len(r.buf))-r.off {
		return r.fail("file truncated reading %s (need %d bytes, %d left)", what, n, uint64(len(r.buf))-r.off)
	}
	return nil
}

func (r *reader) u32(what string) (uint32, error) {
	if err := r.need(4, what); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint32(r.buf[r.off:])
	r.off += 4
	return v, nil
}

func (r *reader) u64(what string) (uint64, error) {
	if err := r.need(8, what); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint64(r.buf[r.off:])
	r.off += 8
	return v, nil
}

func (r *reader) str(what string) (string, error) {
	n, err := r.u64(what + " length")
	if err != nil {
		return "", err
	}
	if err := r.need(n, what); err != nil {
		return "", err
	}
	s := string(r.buf[r.off : r.off+n])
	r.off += n
	return s, nil
}

func parse(buf []byte) (*File, error) {
	r := &reader{buf: buf}
	if len(buf) == 0 {
		return nil, fmt.Errorf("%w: empty file", ErrFormat)
	}
	if len(buf) < 4 || string(buf[:4]) != Magic {
		if len(buf) >= 4 && string(buf[:4]) == "FUGG" {
			return nil, fmt.Errorf("%w: big-endian GGUF files are not supported", ErrFormat)
		}
		return nil, fmt.Errorf("%w: bad magic (not a GGUF file)", ErrFormat)
	}
	r.off = 4
	version, err := r.u32("version")
	if err != nil {
		return nil, err
	}
	switch version {
	case 2, 3:
	case 1:
		return nil, fmt.Errorf("%w: GGUF version 1 is not supported (re-convert the model)", ErrFormat)
	default:
		if version>>16 != 0 && version&0xffff == 0 {
			return nil, fmt.Errorf("%w: version %#x looks byte-swapped: big-endian GGUF files are not supported", ErrFormat, version)
		}
		return nil, fmt.Errorf("%w: unknown GGUF version %d", ErrFormat, version)
	}
	nTensors, err := r.u64("tensor count")
	if err != nil {
		return nil, err
	}
	nKV, err := r.u64("metadata count")
	if err != nil {
		return nil, err
	}
	// Each KV takes at least 8+4+1 bytes and each tensor info at least
	// 8+4+8+4+8, so counts beyond what the file could hold are lies.
	if nKV > uint64(len(buf))/13 {
		return nil, r.fail("metadata count %d is impossible for a file of %d bytes", nKV, len(buf))
	}
	if nTensors > uint64(len(buf))/32 {
		return nil, r.fail("tensor count %d is impossible for a file of %d bytes", nTensors, len(buf))
	}
	f := &File{
		Version:   version,
		KVs:       make([]KV, 0, min(nKV, maxPrealloc)),
		kv:        make(map[string]int, min(nKV, maxPrealloc)),
		Tensors:   make([]TensorInfo, 0, min(nTensors, maxPrealloc)),
		tensors:   make(map[string]int, min(nTensors, maxPrealloc)),
		Alignment: DefaultAlignment,
	}
	for i := uint64(0); i < nKV; i++ {
		key, err := r.str("metadata key")
		if err != nil {
			return nil, err
		}
		if len(key) > maxKeyLen {
			return nil, r.fail("metadata key of %d bytes", len(key))
		}
		if _, dup := f.kv[key]; dup {
			return nil, r.fail("duplicate metadata key %q", key)
		}
		vt, err := r.u32("value type of " + key)
		if err != nil {
			return nil, err
		}
		v, err := r.value(ValueType(vt), key, 0)
		if err != nil {
			return nil, err
		}
		f.kv[key] = len(f.KVs)
		f.KVs = append(f.KVs, KV{Key: key, Value: v})
	}
	if v, ok := f.Get("general.alignment"); ok {
		a, ok := f.Uint("general.alignment")
		if !ok || v.Type != TypeUint32 {
			return nil, fmt.Errorf("%w: general.alignment must be a uint32, got %s", ErrFormat, v.Type)
		}
		if a == 0 || a&(a-1) != 0 || a > 1<<20 {
			return nil, fmt.Errorf("%w: general.alignment %d is not a power of two up to 1 MiB", ErrFormat, a)
		}
		f.Alignment = a
	}
	for i := uint64(0); i < nTensors; i++ {
		name, err := r.str("tensor name")
		if err != nil {
			return nil, err
		}
		if len(name) > maxKeyLen {
			return nil, r.fail("tensor name of %d bytes", len(name))
		}
		if _, dup := f.tensors[name]; dup {
			return nil, r.fail("duplicate tensor %q", name)
		}
		nd, err := r.u32("dimension count of " + name)
		if err != nil {
			return nil, err
		}
		if nd == 0 || nd > maxTensorDims {
			return nil, r.fail("tensor %q has %d dimensions (1 to %d allowed)", name, nd, maxTensorDims)
		}
		ti := TensorInfo{Name: name, Dims: make([]uint64, nd)}
		elems := uint64(1)
		for d := range ti.Dims {
			if ti.Dims[d], err = r.u64("dimensions of " + name); err != nil {
				return nil, err
			}
			if ti.Dims[d] == 0 || ti.Dims[d] > math.MaxInt64/elems {
				return nil, r.fail("tensor %q has impossible dimensions %v", name, ti.Dims[:d+1])
			}
			elems *= ti.Dims[d]
		}
		tt, err := r.u32("type of " + name)
		if err != nil {
			return nil, err
		}
		ti.Type = tensor.Type(tt)
		if !ti.Type.Known() {
			return nil, r.fail("tensor %q has unknown type %d", name, tt)
		}
		bs := uint64(ti.Type.BlockSize())
		if ti.Dims[0]%bs != 0 {
			return nil, r.fail("tensor %q: row of %d elements is not a multiple of %s's block size %d", name, ti.Dims[0], ti.Type, bs)
		}
		if elems/bs > math.MaxInt64/uint64(ti.Type.TypeSize()) {
			return nil, r.fail("tensor %q is impossibly large", name)
		}
		ti.Size = elems / bs * uint64(ti.Type.TypeSize())
		if ti.Offset, err = r.u64("offset of " + name); err != nil {
			return nil, err
		}
		if ti.Offset%f.Alignment != 0 {
			return nil, r.fail("tensor %q offset %d is not aligned to %d", name, ti.Offset, f.Alignment)
		}
		f.tensors[name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, ti)
	}
	start := (r.off + f.Alignment - 1) / f.Alignment * f.Alignment
	if nTensors > 0 && start > uint64(len(buf)) {
		return nil, fmt.Errorf("%w: file truncated: data section would start at %d but the file has %d bytes", ErrFormat, start, len(buf))
	}
	f.DataStart = start
	dataLen := uint64(len(buf)) - min(start, uint64(len(buf)))
	// Tensors must lie inside the data section and not overlap.
	order := make([]int, len(f.Tensors))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return f.Tensors[order[a]].Offset < f.Tensors[order[b]].Offset })
	end := uint64(0)
	for _, i := range order {
		ti := &f.Tensors[i]
		if ti.Offset > dataLen || ti.Size > dataLen-ti.Offset {
			return nil, fmt.Errorf("%w: tensor %q (offset %d, %d bytes) extends past the end of the file (data section is %d bytes): file truncated?", ErrFormat, ti.Name, ti.Offset, ti.Size, dataLen)
		}
		if ti.Offset < end {
			return nil, fmt.Errorf("%w: tensor %q overlaps the tensor before it", ErrFormat, ti.Name)
		}
		end = ti.Offset + ti.Size
	}
	return f, nil
}

const maxNesting = 4

func (r *reader) value(t ValueType, key string, depth int) (Value, error) {
	if sz := t.fixedSize(); sz > 0 {
		if err := r.need(uint64(sz), key); err != nil {
			return Value{}, err
		}
		b := r.buf[r.off:]
		r.off += uint64(sz)
		var v any
		switch t {
		case TypeUint8:
			v = b[0]
		case TypeInt8:
			v = int8(b[0])
		case TypeBool:
			if b[0] > 1 {
				return Value{}, r.fail("key %q: bool value %d", key, b[0])
			}
			v = b[0] == 1
		case TypeUint16:
			v = binary.LittleEndian.Uint16(b)
		case TypeInt16:
			v = int16(binary.LittleEndian.Uint16(b))
		case TypeUint32:
			v = binary.LittleEndian.Uint32(b)
		case TypeInt32:
			v = int32(binary.LittleEndian.Uint32(b))
		case TypeFloat32:
			v = math.Float32frombits(binary.LittleEndian.Uint32(b))
		case TypeUint64:
			v = binary.LittleEndian.Uint64(b)
		case TypeInt64:
			v = int64(binary.LittleEndian.Uint64(b))
		case TypeFloat64:
			v = math.Float64frombits(binary.LittleEndian.Uint64(b))
		}
		return Value{Type: t, V: v}, nil
	}
	switch t {
	case TypeString:
		s, err := r.str(key)
		return Value{Type: t, V: s}, err
	case TypeArray:
		if depth >= maxNesting {
			return Value{}, r.fail("key %q: arrays nested more than %d deep", key, maxNesting)
		}
		et, err := r.u32("array type of " + key)
		if err != nil {
			return Value{}, err
		}
		n, err := r.u64("array length of " + key)
		if err != nil {
			return Value{}, err
		}
		a, err := r.array(ValueType(et), n, key, depth)
		if err != nil {
			return Value{}, err
		}
		return Value{Type: t, V: a}, nil
	}
	return Value{}, r.fail("key %q has unknown value type %d", key, uint32(t))
}

func (r *reader) array(et ValueType, n uint64, key string, depth int) (*Array, error) {
	// Every element takes at least one byte (strings eight), so n is
	// bounded by what remains of the file before anything is allocated.
	left := uint64(len(r.buf)) - r.off
	minSize := uint64(et.fixedSize())
	switch et {
	case TypeString, TypeArray:
		minSize = 8
	case TypeUint8, TypeInt8, TypeBool, TypeUint16, TypeInt16, TypeUint32, TypeInt32, TypeFloat32, TypeUint64, TypeInt64, TypeFloat64:
	default:
		return nil, r.fail("key %q: array of unknown value type %d", key, uint32(et))
	}
	if n > left/minSize {
		return nil, r.fail("key %q: array of %d %s elements does not fit in the %d bytes left", key, n, et, left)
	}
	a := &Array{Elem: et}
	if sz := et.fixedSize(); sz > 0 {
		b := r.buf[r.off : r.off+n*uint64(sz)]
		r.off += n * uint64(sz)
		switch et {
		case TypeUint8:
			v := make([]uint8, n) // never nil, like the other types
			copy(v, b)
			a.Values = v
		case TypeInt8:
			v := make([]int8, n)
			for i := range v {
				v[i] = int8(b[i])
			}
			a.Values = v
		case TypeBool:
			v := make([]bool, n)
			for i := range v {
				if b[i] > 1 {
					return nil, r.fail("key %q: bool value %d", key, b[i])
				}
				v[i] = b[i] == 1
			}
			a.Values = v
		case TypeUint16:
			v := make([]uint16, n)
			for i := range v {
				v[i] = binary.LittleEndian.Uint16(b[2*i:])
			}
			a.Values = v
		case TypeInt16:
			v := make([]int16, n)
			for i := range v {
				v[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
			}
			a.Values = v
		case TypeUint32:
			v := make([]uint32, n)
			for i := range v {
				v[i] = binary.LittleEndian.Uint32(b[4*i:])
			}
			a.Values = v
		case TypeInt32:
			v := make([]int32, n)
			for i := range v {
				v[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
			}
			a.Values = v
		case TypeFloat32:
			v := make([]float32, n)
			for i := range v {
				v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
			a.Values = v
		case TypeUint64:
			v := make([]uint64, n)
			for i := range v {
				v[i] = binary.LittleEndian.Uint64(b[8*i:])
			}
			a.Values = v
		case TypeInt64:
			v := make([]int64, n)
			for i := range v {
				v[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
			}
			a.Values = v
		case TypeFloat64:
			v := make([]float64, n)
			for i := range v {
				v[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
			}
			a.Values = v
		}
		return a, nil
	}
	// A string or array header is 8 or 12 bytes but its Go value 16 or 8
	// (plus the array): reserve only a bounded capacity and let the slice
	// grow as elements are actually read.
	if et == TypeString {
		v := make([]string, 0, min(n, maxPrealloc))
		for range n {
			s, err := r.str(key)
			if err != nil {
				return nil, err
			}
			v = append(v, s)
		}
		a.Values = v
		return a, nil
	}
	v := make([]*Array, 0, min(n, maxPrealloc))
	for range n {
		sub, err := r.value(TypeArray, key, depth+1)
		if err != nil {
			return nil, err
		}
		v = append(v, sub.V.(*Array))
	}
	a.Values = v
	return a, nil
}

// Describe returns a short human-readable summary of a value (arrays are
// abbreviated), for diagnostics.
func (v Value) Describe() string {
	switch x := v.V.(type) {
	case *Array:
		return fmt.Sprintf("[%s × %d]", x.Elem, x.Len())
	case string:
		if len(x) > 60 {
			return fmt.Sprintf("%q…", x[:60])
		}
		return fmt.Sprintf("%q", x)
	}
	return strings.TrimSpace(fmt.Sprint(v.V))
}
