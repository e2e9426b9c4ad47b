//go:build unix

package kvcache

import "syscall"

// block is page memory mapped directly from the OS, so that freeing it
// returns the bytes to the OS immediately (the Go heap would keep them).
type block struct{ b, mapped []byte }

func allocBlock(size int) *block {
	if size == 0 {
		return &block{}
	}
	m, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		// Out of address space or memory: fall back to the heap so the
		// caller sees Go's usual out-of-memory behaviour.
		return &block{b: make([]byte, size)}
	}
	return &block{b: m[:size:size], mapped: m}
}

func (k *block) free() {
	if k.mapped != nil {
		syscall.Munmap(k.mapped)
	}
	k.b, k.mapped = nil, nil
}
