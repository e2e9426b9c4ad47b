package server

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/synth"
	"github.com/kvserve/kvserve/models"
)

// rankEngine is the embedded model with a random rank head (synth.WithRankHead).
var (
	rankOnce sync.Once
	rankVal  *engine.Engine
	rankErr  error
)

func rankEngine(t *testing.T) *engine.Engine {
	t.Helper()
	rankOnce.Do(func() {
		src, err := gguf.Parse(models.Default())
		if err != nil {
			rankErr = err
			return
		}
		var buf bytes.Buffer
		if rankErr = synth.WithRankHead(src, &buf, []string{"relevant"}, 3); rankErr != nil {
			return
		}
		dir, err := os.MkdirTemp("", "kvserve-rank-")
		if err != nil {
			rankErr = err
			return
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "rank.gguf")
		if rankErr = os.WriteFile(path, buf.Bytes(), 0o644); rankErr == nil {
			rankVal, rankErr = engine.Load(path, 2)
		}
	})
	if rankErr != nil {
		t.Fatal(rankErr)
	}
	return rankVal
}

func TestRerank(t *testing.T) {
	_, ts := newTestServer(t, Options{Embeddings: true, Pooling: "mean"})
	st, b := post(t, ts.URL+"/rerank", map[string]any{"query": "q", "documents": []any{"a"}})
	wantError(t, "without --reranking", st, b, http.StatusNotImplemented, TypeNotSupported)
	_, ts = newTestServer(t, Options{Embeddings: true, Pooling: "rank"})
	st, b = post(t, ts.URL+"/v1/rerank", map[string]any{"query": "q", "documents": []any{"a"}})
	wantError(t, "no rank head", st, b, http.StatusNotImplemented, TypeNotSupported)

	s := New(Options{Engine: rankEngine(t), Ctx: 1024, Embeddings: true, Pooling: "rank", Logger: quietLog})
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	rts := newHTTPTest(t, s)
	query := "What do cats eat?"
	docs := []any{"Cats eat fish and mice.", "The stock market fell today.", "Kittens drink milk.", "Paris is in France."}
	r := postOK(t, rts.URL+"/v1/rerank", map[string]any{"query": query, "documents": docs, "return_text": true, "model": "rr"})
	if r["object"] != "list" || r["model"] != "rr" {
		t.Fatalf("answer %v", r)
	}
	res := r["results"].([]any)
	if len(res) != len(docs) {
		t.Fatalf("%d results", len(res))
	}
	prev := 1e300
	seen := map[int]bool{}
	for _, x := range res {
		m := x.(map[string]any)
		i := int(num(m["index"]))
		score := num(m["relevance_score"])
		if score > prev || seen[i] {
			t.Fatalf("results not sorted or repeated: %v", res)
		}
		prev, seen[i] = score, true
		if m["document"].(map[string]any)["text"] != docs[i] {
			t.Errorf("document %d: %v", i, m["document"])
		}
		// The score is the rank head's on the pair's prompt.
		toks, aerr := s.rerankPrompt(query, docs[i].(string))
		if aerr != nil {
			t.Fatal(aerr)
		}
		v, err := s.sched.Embed(context.Background(), toks, engine.PoolRank)
		if err != nil {
			t.Fatal(err)
		}
		if d := float64(v[0][0]) - score; d > 1e-4 || d < -1e-4 {
			t.Errorf("document %d: score %v, Embed gives %v", i, score, v[0][0])
		}
	}
	if u := r["usage"].(map[string]any); num(u["prompt_tokens"]) < 20 {
		t.Errorf("usage %v", u)
	}
	// top_n, and TEI's shape with "texts".
	r = postOK(t, rts.URL+"/rerank", map[string]any{"query": query, "documents": docs, "top_n": 2})
	if got := r["results"].([]any); len(got) != 2 || got[0].(map[string]any)["document"] != nil {
		t.Errorf("top_n 2: %v", got)
	}
	st, b = post(t, rts.URL+"/rerank", map[string]any{"query": query, "texts": docs, "return_text": true})
	if st != 200 || !bytes.HasPrefix(b, []byte("[{")) || !bytes.Contains(b, []byte(`"score"`)) || !bytes.Contains(b, []byte(`"text"`)) {
		t.Errorf("TEI shape: %d %s", st, b)
	}
	for _, bad := range []map[string]any{{"documents": docs}, {"query": 3, "documents": docs}, {"query": "q", "documents": []any{}}, {"query": "q", "documents": []any{1}}} {
		st, b := post(t, rts.URL+"/rerank", bad)
		wantError(t, "bad rerank", st, b, 400, TypeInvalidRequest)
	}
}
