package gguf

import (
	"fmt"
	"regexp"
	"strconv"
)

// Split models (llama.cpp's gguf-split): a model stored in N files named
// PREFIX-00001-of-0000N.gguf ... PREFIX-0000N-of-0000N.gguf, each a GGUF
// file holding "split.no" (0-based), "split.count" and
// "split.tensors.count"; the first holds the model's metadata, every shard
// some of the tensors (offsets relative to its own data section).

// Split metadata keys.
const (
	KeySplitNo      = "split.no"
	KeySplitCount   = "split.count"
	KeySplitTensors = "split.tensors.count"
)

// maxSplits bounds the shards of a split model.
const maxSplits = 9999

var splitName = regexp.MustCompile(`^(.*)-(\d{5})-of-(\d{5})\.gguf$`)

// SplitPath returns the path of shard no (0-based) of count of a split
// model whose shards are named PREFIX-%05d-of-%05d.gguf.
func SplitPath(prefix string, no, count int) string {
	return fmt.Sprintf("%s-%05d-of-%05d.gguf", prefix, no+1, count)
}

// OpenModel opens a model file. When it is the first shard of a split
// model, the other shards (named as llama.cpp's gguf-split names them) are
// opened too and the returned File holds every shard's tensors, with the
// first shard's metadata; Close closes them all. A shard other than the
// first, a missing or inconsistent shard, or a tensor in two shards is an
// error naming it.
func OpenModel(path string) (*File, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	count, ok := f.Uint(KeySplitCount)
	if !ok || count <= 1 {
		return f, nil
	}
	fail := func(format string, args ...any) (*File, error) {
		f.Close()
		return nil, fmt.Errorf("%s: "+format, append([]any{path}, args...)...)
	}
	if count > maxSplits {
		return fail("split.count %d is more than %d", count, maxSplits)
	}
	if no, _ := f.Uint(KeySplitNo); no != 0 {
		return fail("this is shard %d of a split model; give the first shard (-00001-of-%05d.gguf)", no+1, count)
	}
	m := splitName.FindStringSubmatch(path)
	if m == nil {
		return fail("a split model's first shard must be named PREFIX-00001-of-%05d.gguf", count)
	}
	if n, _ := strconv.Atoi(m[3]); uint64(n) != count {
		return fail("the name says %s shards but split.count is %d", m[3], count)
	}
	for no := 1; no < int(count); no++ {
		sp := SplitPath(m[1], no, int(count))
		sf, err := Open(sp)
		if err != nil {
			return fail("opening shard %d: %v", no+1, err)
		}
		f.shards = append(f.shards, sf)
		if c, _ := sf.Uint(KeySplitCount); c != count {
			return fail("shard %s has split.count %d, not %d", sp, c, count)
		}
		if n, ok := sf.Uint(KeySplitNo); !ok || n != uint64(no) {
			return fail("shard %s has split.no %d, not %d", sp, n, no)
		}
		for _, ti := range sf.Tensors {
			if _, dup := f.tensors[ti.Name]; dup {
				return fail("tensor %q is in two shards (again in %s)", ti.Name, sp)
			}
			ti.shard = no
			f.tensors[ti.Name] = len(f.Tensors)
			f.Tensors = append(f.Tensors, ti)
		}
	}
	if want, ok := f.Uint(KeySplitTensors); ok && want != uint64(len(f.Tensors)) {
		return fail("the shards hold %d tensors but split.tensors.count is %d", len(f.Tensors), want)
	}
	return f, nil
}

// WriteSplit writes a model as count shards named as llama.cpp's gguf-split
// names them (SplitPath(prefix, i, count)): the first holds kvs and the
// split keys, the others only the split keys; the tensors are spread over
// the shards in order, about the same number in each.
func WriteSplit(prefix string, kvs []KV, ts []WriterTensor, count int, create func(path string) (WriteCloser, error)) error {
	if count < 1 || count > maxSplits {
		return fmt.Errorf("split count %d out of range (1 to %d)", count, maxSplits)
	}
	if count > len(ts) {
		return fmt.Errorf("cannot split %d tensors into %d shards", len(ts), count)
	}
	for no := 0; no < count; no++ {
		split := []KV{
			{Key: KeySplitNo, Value: Value{Type: TypeUint16, V: uint16(no)}},
			{Key: KeySplitCount, Value: Value{Type: TypeUint16, V: uint16(count)}},
			{Key: KeySplitTensors, Value: Value{Type: TypeInt32, V: int32(len(ts))}},
		}
		var meta []KV
		if no == 0 {
			meta = append(append(meta, kvs...), split...)
		} else {
			meta = split
		}
		lo, hi := no*len(ts)/count, (no+1)*len(ts)/count
		w, err := create(SplitPath(prefix, no, count))
		if err != nil {
			return err
		}
		if err := Write(w, meta, ts[lo:hi]); err != nil {
			w.Close()
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
	}
	return nil
}

// WriteCloser is where WriteSplit writes a shard (an *os.File).
type WriteCloser interface {
	Write(p []byte) (int, error)
	Close() error
}
