//go:build amd64

package qkernels

import (
	"testing"
	"unsafe"
)

// TestLayout checks the karg field offsets hard-coded in gen/main.go.
func TestLayout(t *testing.T) {
	var a karg
	want := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"w", unsafe.Offsetof(a.w), 0},
		{"stride", unsafe.Offsetof(a.stride), 8},
		{"rows", unsafe.Offsetof(a.rows), 16},
		{"rowB", unsafe.Offsetof(a.rowB), 24},
		{"nb", unsafe.Offsetof(a.nb), 32},
		{"u", unsafe.Offsetof(a.u), 40},
		{"c1", unsafe.Offsetof(a.c1), 48},
		{"c2", unsafe.Offsetof(a.c2), 56},
		{"c3", unsafe.Offsetof(a.c3), 64},
		{"x", unsafe.Offsetof(a.x), 72},
		{"a1", unsafe.Offsetof(a.a1), 80},
		{"a2", unsafe.Offsetof(a.a2), 88},
		{"a3", unsafe.Offsetof(a.a3), 96},
		{"y", unsafe.Offsetof(a.y), 104},
		{"ustride", unsafe.Offsetof(a.ustride), 112},
		{"panel", unsafe.Offsetof(a.panel), 120},
		{"pack", unsafe.Offsetof(a.pack), 128},
		{"n2", unsafe.Offsetof(a.n2), 136},
		{"ts", unsafe.Offsetof(a.ts), 144},
		{"cstride", unsafe.Offsetof(a.cstride), 152},
		{"bstride", unsafe.Offsetof(a.bstride), 160},
	}
	for _, f := range want {
		if f.got != f.want {
			t.Errorf("karg.%s at offset %d, gen/main.go assumes %d", f.name, f.got, f.want)
		}
	}
}
