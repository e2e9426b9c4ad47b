package server

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/models"
)

// fimEngine is the embedded model with FIM token ids declared in its
// GGUF keys (three ordinary tokens stand in for them).
var (
	fimOnce sync.Once
	fimVal  *engine.Engine
	fimErr  error
)

const fimPre, fimSuf, fimMid = 101, 102, 103

func fimEngine(t *testing.T) *engine.Engine {
	t.Helper()
	fimOnce.Do(func() {
		src, err := gguf.Parse(models.Default())
		if err != nil {
			fimErr = err
			return
		}
		kvs := append([]gguf.KV(nil), src.KVs...)
		for k, v := range map[string]uint32{"fim_pre_token_id": fimPre, "fim_suf_token_id": fimSuf, "fim_mid_token_id": fimMid} {
			kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml." + k, Value: gguf.Value{Type: gguf.TypeUint32, V: v}})
		}
		var ts []gguf.WriterTensor
		for i := range src.Tensors {
			ti := &src.Tensors[i]
			ts = append(ts, gguf.WriterTensor{Name: ti.Name, Dims: ti.Dims, Type: ti.Type, Data: func(w io.Writer) error {
				_, err := w.Write(src.TensorData(ti))
				return err
			}})
		}
		dir, err := os.MkdirTemp("", "kvserve-fim-")
		if err != nil {
			fimErr = err
			return
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "fim.gguf")
		out, err := os.Create(path)
		if err != nil {
			fimErr = err
			return
		}
		if fimErr = gguf.Write(out, kvs, ts); fimErr == nil {
			fimErr = out.Close()
		}
		if fimErr == nil {
			fimVal, fimErr = engine.Load(path, 2)
		}
	})
	if fimErr != nil {
		t.Fatal(fimErr)
	}
	return fimVal
}

func TestInfill(t *testing.T) {
	_, ts := newTestServer(t, Options{})
	st, b := post(t, ts.URL+"/infill", map[string]any{"input_prefix": "def f(", "input_suffix": "return x"})
	if msg := wantError(t, "no FIM tokens", st, b, http.StatusNotImplemented, TypeNotSupported); !strings.Contains(msg, "prefix token is missing") {
		t.Errorf("message %q", msg)
	}

	s := New(Options{Engine: fimEngine(t), Ctx: 1024, Logger: quietLog})
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	fts := newHTTPTest(t, s)
	tok := s.eng.Tok
	enc := func(s string) []int { return tok.Encode(s, false, false) }
	body := map[string]any{"input_prefix": "def add(a, b):\n    ", "input_suffix": "\n\nprint(add(1, 2))\n", "prompt": "return",
		"input_extra": []any{map[string]any{"filename": "util.py", "text": "import os\n"}}, "n_predict": 6, "temperature": 0}
	o, _ := parseObject(mustJSON(body))
	got, aerr := s.infillPrompt(o, s.parseGen(o, apiNative))
	if aerr != nil {
		t.Fatal(aerr)
	}
	// No FIM_SEP / FIM_REP tokens: context files follow the snippet marker.
	var want []int
	want = append(want, enc("\n\n--- snippet ---\n\n")...)
	want = append(want, enc("import os\n")...)
	want = append(want, tok.BOS(), fimPre)
	want = append(want, enc("def add(a, b):\n    ")...)
	want = append(want, tok.Encode("return", false, true)...)
	want = append(want, fimSuf)
	want = append(want, enc("\n\nprint(add(1, 2))\n")...)
	want = append(want, fimMid)
	if !slices.Equal(got, want) {
		t.Errorf("infill prompt\n got %v\nwant %v", got, want)
	}
	r := postOK(t, fts.URL+"/infill", body)
	if num(r["tokens_predicted"]) != 6 || num(r["tokens_evaluated"]) != float64(len(want)) {
		t.Errorf("answer %v", r)
	}
	if ev := stream(t, fts.URL+"/infill", map[string]any{"input_prefix": "x = ", "n_predict": 3, "stream": true}); len(ev) < 2 {
		t.Errorf("streamed: %v", ev)
	}
	st, b = post(t, fts.URL+"/infill", map[string]any{"input_prefix": "x", "input_extra": []any{map[string]any{"filename": "a"}}})
	wantError(t, "extra without text", st, b, 400, TypeInvalidRequest)
}
