//go:build !unix

package cputest

import "testing"

func guarded(t *testing.T, n int, front bool) ([]byte, func()) {
	t.Helper()
	t.Skip("guard pages need mmap and mprotect")
	return nil, nil
}
