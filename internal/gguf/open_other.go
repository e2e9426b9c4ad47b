//go:build !unix

package gguf

import (
	"fmt"
	"os"
)

// Open reads a GGUF file into memory and parses it (platforms without mmap).
func Open(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.data = data
	return f, nil
}
