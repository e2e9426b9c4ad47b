package main

import (
	"bytes"
	"os"
	"testing"
)

// TestGenerated checks that the committed ../lowbit_amd64.s is what this
// generator writes (run `go generate ./internal/qkernels/` after editing
// main.go).
func TestGenerated(t *testing.T) {
	have, err := os.ReadFile("../lowbit_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, generate()) {
		t.Fatal("internal/qkernels/lowbit_amd64.s is not what genlowbit writes: run go generate ./internal/qkernels/")
	}
}
