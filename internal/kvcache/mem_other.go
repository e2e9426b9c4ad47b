//go:build !unix

package kvcache

type block struct{ b []byte }

func allocBlock(size int) *block { return &block{b: make([]byte, size)} }

func (k *block) free() { k.b = nil }
