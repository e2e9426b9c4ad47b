package server

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"testing"
)

func vecOf(t *testing.T, v any) []float64 {
	t.Helper()
	a, ok := v.([]any)
	if !ok {
		t.Fatalf("not a vector: %T", v)
	}
	out := make([]float64, len(a))
	for i, x := range a {
		out[i] = num(x)
	}
	return out
}

func norm2(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x * x
	}
	return math.Sqrt(s)
}

func cosine(a, b []float64) float64 {
	d := 0.0
	for i := range a {
		d += a[i] * b[i]
	}
	return d / norm2(a) / norm2(b)
}

func TestEmbeddingsDisabled(t *testing.T) {
	_, ts := newTestServer(t, Options{})
	st, b := post(t, ts.URL+"/v1/embeddings", map[string]any{"input": "hello"})
	wantError(t, "embeddings off", st, b, http.StatusNotImplemented, TypeNotSupported)
}

func TestEmbeddingsOpenAI(t *testing.T) {
	_, ts := newTestServer(t, Options{Embeddings: true, Pooling: "mean", Slots: 2})
	r := postOK(t, ts.URL+"/v1/embeddings", map[string]any{"input": []any{"The cat sat on the mat.", "A dog ran in the park.", "The cat sat on the mat."}, "model": "m"})
	data := r["data"].([]any)
	if len(data) != 3 || r["object"] != "list" || r["model"] != "m" {
		t.Fatalf("answer %v", r)
	}
	var vecs [][]float64
	for i, d := range data {
		dm := d.(map[string]any)
		if num(dm["index"]) != float64(i) || dm["object"] != "embedding" {
			t.Fatalf("item %d: %v", i, dm)
		}
		v := vecOf(t, dm["embedding"])
		if len(v) != testEngine(t).Model.NEmbd {
			t.Fatalf("width %d", len(v))
		}
		if n := norm2(v); math.Abs(n-1) > 1e-4 {
			t.Errorf("norm %v, want 1", n)
		}
		vecs = append(vecs, v)
	}
	if c := cosine(vecs[0], vecs[2]); c < 0.99999 {
		t.Errorf("the same input twice: cosine %v", c)
	}
	if c := cosine(vecs[0], vecs[1]); c > 0.9999 {
		t.Errorf("different inputs: cosine %v", c)
	}
	u := r["usage"].(map[string]any)
	if num(u["prompt_tokens"]) < 12 || u["prompt_tokens"] != u["total_tokens"] {
		t.Errorf("usage %v", u)
	}

	// base64: the same floats, little-endian.
	r = postOK(t, ts.URL+"/v1/embeddings", map[string]any{"input": "The cat sat on the mat.", "encoding_format": "base64"})
	d := r["data"].([]any)[0].(map[string]any)
	raw, err := base64.StdEncoding.DecodeString(d["embedding"].(string))
	if err != nil || len(raw) != 4*len(vecs[0]) {
		t.Fatalf("base64: %v, %d bytes", err, len(raw))
	}
	for i := range vecs[0] {
		if f := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])); float64(f) != float64(float32(vecs[0][i])) {
			t.Fatalf("base64[%d] = %v, float %v", i, f, vecs[0][i])
		}
	}

	// Token ids give the same as the text.
	toks := postOK(t, ts.URL+"/tokenize", map[string]any{"content": "The cat sat on the mat.", "add_special": true})["tokens"]
	r = postOK(t, ts.URL+"/v1/embeddings", map[string]any{"input": toks})
	if c := cosine(vecOf(t, r["data"].([]any)[0].(map[string]any)["embedding"]), vecs[0]); c < 0.99999 {
		t.Errorf("token ids vs text: cosine %v", c)
	}

	for _, bad := range []map[string]any{
		{"input": []any{}}, {"nothing": 1}, {"input": "x", "encoding_format": "hex"},
		{"input": []any{"a", []any{1.5}}}, {"input": 3},
	} {
		st, b := post(t, ts.URL+"/v1/embeddings", bad)
		wantError(t, "bad input", st, b, http.StatusBadRequest, TypeInvalidRequest)
	}
}

func TestEmbeddingsNative(t *testing.T) {
	_, ts := newTestServer(t, Options{Embeddings: true, Pooling: "none"})
	st, b := post(t, ts.URL+"/v1/embeddings", map[string]any{"input": "hello"})
	wantError(t, "pooling none on the OpenAI route", st, b, http.StatusBadRequest, TypeInvalidRequest)

	st, b = post(t, ts.URL+"/embedding", map[string]any{"content": "The cat sat on the mat."})
	if st != 200 {
		t.Fatalf("%d %s", st, b)
	}
	var none []struct {
		Index     int         `json:"index"`
		Embedding [][]float64 `json:"embedding"`
	}
	if err := json.Unmarshal(b, &none); err != nil || len(none) != 1 {
		t.Fatalf("%v %s", err, b)
	}
	rows := none[0].Embedding
	if len(rows) < 7 {
		t.Fatalf("%d rows, want one per token", len(rows))
	}

	// Pooled variants agree with the per-token rows.
	mean := make([]float64, len(rows[0]))
	for _, r := range rows {
		for j, x := range r {
			mean[j] += x / float64(len(rows))
		}
	}
	for _, c := range []struct {
		pool string
		want []float64
	}{{"mean", mean}, {"cls", rows[0]}, {"last", rows[len(rows)-1]}} {
		_, ts := newTestServer(t, Options{Embeddings: true, Pooling: c.pool})
		st, b := post(t, ts.URL+"/embedding", map[string]any{"content": "The cat sat on the mat.", "embd_normalize": -1})
		if st != 200 {
			t.Fatalf("%s: %d %s", c.pool, st, b)
		}
		var got []struct {
			Embedding [][]float64 `json:"embedding"`
		}
		json.Unmarshal(b, &got)
		if len(got) != 1 || len(got[0].Embedding) != 1 {
			t.Fatalf("%s: %s", c.pool, b)
		}
		for j, x := range got[0].Embedding[0] {
			if math.Abs(x-c.want[j]) > 1e-3*(1+math.Abs(c.want[j])) {
				t.Fatalf("%s[%d] = %v, per-token rows give %v", c.pool, j, x, c.want[j])
			}
		}
	}

	_, ts = newTestServer(t, Options{Embeddings: true, Pooling: "rank"})
	st, b = post(t, ts.URL+"/v1/embeddings", map[string]any{"input": "hello"})
	wantError(t, "rank pooling without a rank head", st, b, http.StatusNotImplemented, TypeNotSupported)
}
