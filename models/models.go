// Package models embeds kvserve's default model, so that a fresh clone
// runs with no download: kvtest-27m (a small trained llama-architecture
// model from the project's test assets), quantized to Q8_0 by
// `kvserve quantize`.
package models

import (
	_ "embed"
	"unsafe"
)

// DefaultName is the embedded model's file name.
const DefaultName = "kvtest-27m-q8_0.gguf"

//go:embed kvtest-27m-q8_0.gguf
var defaultModel string

// Default returns the embedded model's bytes (read-only: they live in the
// binary's read-only data).
func Default() []byte {
	return unsafe.Slice(unsafe.StringData(defaultModel), len(defaultModel))
}
