//go:build unix

package model

import "syscall"

// memRegion is memory mapped directly from the OS (outside the Go heap, so
// that Close returns it at once).
type memRegion struct{ b, mapped []byte }

func allocPacked(size int) *memRegion {
	m, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return &memRegion{b: make([]byte, size)}
	}
	adviseHuge(m)
	return &memRegion{b: m, mapped: m}
}

func (r *memRegion) free() {
	if r.mapped != nil {
		syscall.Munmap(r.mapped)
	}
	r.b, r.mapped = nil, nil
}
