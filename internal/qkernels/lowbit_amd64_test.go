//go:build amd64

package qkernels

import (
	"testing"
	"unsafe"
)

// TestLowbitLayout checks the lbArg offsets hard-coded in genlowbit/main.go.
func TestLowbitLayout(t *testing.T) {
	var a lbArg
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"w", unsafe.Offsetof(a.w), 0}, {"stride", unsafe.Offsetof(a.stride), 8},
		{"rows", unsafe.Offsetof(a.rows), 16}, {"x", unsafe.Offsetof(a.x), 24},
		{"nsb", unsafe.Offsetof(a.nsb), 32}, {"y", unsafe.Offsetof(a.y), 40},
		{"c", unsafe.Offsetof(a.c), 48}, {"grid", unsafe.Offsetof(a.grid), 56},
		{"signs", unsafe.Offsetof(a.signs), 64},
	} {
		if c.got != c.want {
			t.Errorf("lbArg.%s at offset %d, the assembly reads %d", c.name, c.got, c.want)
		}
	}
}
