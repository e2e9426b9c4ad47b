package gguf

import (
	"syscall"
	"unsafe"
)

// Release tells the OS that the pages of b, a slice of the file's tensor
// data, are not needed now: they leave the process's resident set (the
// kernel keeps them in its page cache) and are read again from the file
// if touched. Only whole pages inside b are released; a File not mapped by
// Open (Parse's buffer) is left alone; b may lie in any shard of a split
// model. It returns the bytes released.
func (f *File) Release(b []byte) int {
	if len(b) == 0 || len(f.data) == 0 {
		return 0
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(f.data)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if p < base || p+uintptr(len(b)) > base+uintptr(len(f.data)) {
		for _, sf := range f.shards {
			if n := sf.Release(b); n > 0 {
				return n
			}
		}
		return 0
	}
	if !f.mapped {
		return 0
	}
	ps := uintptr(syscall.Getpagesize())
	lo := (p - base + ps - 1) / ps * ps
	hi := (p - base + uintptr(len(b))) / ps * ps
	if hi <= lo {
		return 0
	}
	if syscall.Madvise(f.data[lo:hi], syscall.MADV_DONTNEED) != nil {
		return 0
	}
	return int(hi - lo)
}
