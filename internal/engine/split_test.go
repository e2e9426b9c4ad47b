package engine_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/models"
)

// A model split into shards (llama.cpp's gguf-split layout) loads as one
// model: the same tensors, the same hidden states as the whole file.
func TestSplitModel(t *testing.T) {
	src, err := gguf.Parse(models.Default())
	if err != nil {
		t.Fatal(err)
	}
	var ts []gguf.WriterTensor
	for i := range src.Tensors {
		ti := &src.Tensors[i]
		ts = append(ts, gguf.WriterTensor{Name: ti.Name, Dims: ti.Dims, Type: ti.Type, Data: func(w io.Writer) error {
			_, err := w.Write(src.TensorData(ti))
			return err
		}})
	}
	dir := t.TempDir()
	prefix := filepath.Join(dir, "model")
	create := func(p string) (gguf.WriteCloser, error) { return os.Create(p) }
	if err := gguf.WriteSplit(prefix, src.KVs, ts, 3, create); err != nil {
		t.Fatal(err)
	}
	first := gguf.SplitPath(prefix, 0, 3)
	if !strings.HasSuffix(first, "model-00001-of-00003.gguf") {
		t.Fatalf("first shard %s", first)
	}
	f, err := gguf.OpenModel(first)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Tensors) != len(src.Tensors) {
		t.Fatalf("%d tensors, want %d", len(f.Tensors), len(src.Tensors))
	}
	for i := range src.Tensors {
		ti, ok := f.Tensor(src.Tensors[i].Name)
		if !ok || !bytes.Equal(f.TensorData(ti), src.TensorData(&src.Tensors[i])) {
			t.Fatalf("tensor %s differs", src.Tensors[i].Name)
		}
	}
	f.Close()

	// A later shard, or a missing one, is a clear error.
	if _, err := gguf.OpenModel(gguf.SplitPath(prefix, 1, 3)); err == nil || !strings.Contains(err.Error(), "give the first shard") {
		t.Errorf("second shard: %v", err)
	}
	os.Rename(gguf.SplitPath(prefix, 2, 3), filepath.Join(dir, "moved"))
	if _, err := gguf.OpenModel(first); err == nil || !strings.Contains(err.Error(), "opening shard 3") {
		t.Errorf("missing shard: %v", err)
	}
	os.Rename(filepath.Join(dir, "moved"), gguf.SplitPath(prefix, 2, 3))

	whole, err := engine.Load("", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer whole.Close()
	split, err := engine.Load(first, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer split.Close()
	toks := whole.Tok.Encode("Once upon a time there was a fox", true, false)
	var got [][]float32
	for _, e := range []*engine.Engine{whole, split} {
		sc, err := e.NewScheduler(engine.SchedulerOptions{Slots: 1, SlotCtx: 256})
		if err != nil {
			t.Fatal(err)
		}
		sc.Start()
		v, err := sc.Embed(context.Background(), toks, engine.PoolLast)
		sc.Close()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v[0])
	}
	if !slices.Equal(got[0], got[1]) {
		t.Errorf("split model's hidden state differs from the whole file's")
	}
}
