// Package engine owns running a loaded model: opening a GGUF file (or the
// embedded default model) with its tokenizer, building KV caches from the
// user's cache options, and driving forward passes for generation and for
// the perplexity harness. The HTTP server's scheduler builds on it.
package engine

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/model"
	"github.com/kvserve/kvserve/internal/parallel"
	"github.com/kvserve/kvserve/internal/tokenizer"
	"github.com/kvserve/kvserve/models"
)

// Engine is a loaded model with its tokenizer and worker pool.
type Engine struct {
	Path  string // file path, or "embedded:<name>" for the default model
	File  *gguf.File
	Model *model.Model
	Tok   *tokenizer.Tokenizer
	Pool  *parallel.Pool
	// Packed says which weights were repacked at load (model.Model.Pack).
	Packed model.PackStats

	gvocab grammarVocab // built on first use (grammar.go)

	loras   []*model.Lora // adapters loaded (LoadLora), in the model's order
	loraIDs []string      // content hash of each one's file (AdapterSet)

	sharedPool bool // Pool belongs to another engine (a draft model's)
}

// LoadOptions are the loading choices beyond the file and the threads.
type LoadOptions struct {
	// NoRepack keeps every weight in the file's row-major layout (by
	// default the matrices the kernels stream faster packed are repacked
	// at load: model.Model.Pack). For comparisons; outputs are identical.
	NoRepack bool
}

// Load opens a model. An empty path loads the embedded default model.
// threads <= 0 uses one thread per CPU.
func Load(path string, threads int) (*Engine, error) {
	return LoadWith(path, threads, LoadOptions{})
}

// LoadWith is Load with options.
func LoadWith(path string, threads int, o LoadOptions) (*Engine, error) {
	var f *gguf.File
	var err error
	if path == "" {
		f, err = gguf.Parse(aligned(models.Default()))
		path = "embedded:" + models.DefaultName
	} else {
		f, err = gguf.OpenModel(path)
	}
	if err != nil {
		return nil, err
	}
	m, err := model.Load(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: tokenizer: %w", path, err)
	}
	if tok.VocabSize() != m.NVocab {
		f.Close()
		return nil, fmt.Errorf("%s: tokenizer has %d tokens but the embedding has %d rows", path, tok.VocabSize(), m.NVocab)
	}
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	e := &Engine{Path: path, File: f, Model: m, Tok: tok, Pool: parallel.New(threads)}
	if !o.NoRepack {
		e.Packed = m.Pack(e.Pool)
	}
	return e, nil
}

// Close releases the pool and the model file.
func (e *Engine) Close() {
	if !e.sharedPool {
		e.Pool.Close()
	}
	e.Model.Close()
	e.File.Close()
}

// BOS returns the token that starts a sequence, or -1 when the model does
// not add one.
func (e *Engine) BOS() int {
	if e.Tok.AddBOS() {
		return e.Tok.BOS()
	}
	return -1
}

// aligned returns b itself when it starts on a 64-byte boundary (as the
// linker places the embedded model), else an aligned copy, so tensor data
// can be viewed as f32/f16 slices.
func aligned(b []byte) []byte {
	if uintptr(unsafe.Pointer(unsafe.SliceData(b)))%64 == 0 {
		return b
	}
	buf := make([]byte, len(b)+64)
	off := int((64 - uintptr(unsafe.Pointer(unsafe.SliceData(buf)))%64) % 64)
	copy(buf[off:], b)
	return buf[off : off+len(b)]
}

// ContextWarning says, as llama.cpp warns, when a sequence context of
// slotCtx tokens is beyond what the model was trained on (positions past
// its training context may come out garbled); "" when it is not.
func (e *Engine) ContextWarning(slotCtx int) string {
	if n := e.Model.NCtxTrain; n > 0 && slotCtx > n {
		return fmt.Sprintf("the context per slot (%d tokens) is beyond the model's training context (%d tokens): possible training context overflow, output past %d tokens may degrade", slotCtx, n, n)
	}
	return ""
}
