//go:build unix

package cputest

import (
	"syscall"
	"testing"
)

func guarded(t *testing.T, n int, front bool) ([]byte, func()) {
	t.Helper()
	page := syscall.Getpagesize()
	size := (n+page-1)/page*page + page
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	guard := mem[size-page:]
	if front {
		guard = mem[:page]
	}
	if err := syscall.Mprotect(guard, syscall.PROT_NONE); err != nil {
		syscall.Munmap(mem)
		t.Skipf("mprotect: %v", err)
	}
	free := func() { syscall.Munmap(mem) }
	if front {
		return mem[page : page+n : page+n], free
	}
	end := size - page
	return mem[end-n : end : end], free
}
