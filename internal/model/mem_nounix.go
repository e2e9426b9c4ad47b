//go:build !unix

package model

type memRegion struct{ b []byte }

func allocPacked(size int) *memRegion { return &memRegion{b: make([]byte, size)} }

func (r *memRegion) free() { r.b = nil }
