package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/testassets"
)

// The tests share one engine: the embedded default model (kvtest-27m
// Q8_0), which needs no test assets. Each test server builds its own
// scheduler and cache on it. Under the race detector, where the Q8_0
// weights' pure-Go dot products run some 40 times slower, the engine is
// the shared f16 kvtest-27m (whose kernels are assembly, not
// instrumented; its greedy outputs match the tests' expectations too). The
// load test uses the f16 model in both modes (it decodes about six times
// faster).
var (
	engOnce, f16Once sync.Once
	engVal, f16Val   *engine.Engine
	engErr, f16Err   error
)

func testEngine(t testing.TB) *engine.Engine {
	t.Helper()
	if raceEnabled {
		return f16Engine(t)
	}
	engOnce.Do(func() { engVal, engErr = engine.Load("", 2) })
	if engErr != nil {
		t.Fatal(engErr)
	}
	return engVal
}

// f16Engine is kvtest-27m f16 from the shared test assets.
func f16Engine(t testing.TB) *engine.Engine {
	t.Helper()
	path := testassets.Path(t, "models/kvtest-27m-f16.gguf")
	f16Once.Do(func() { f16Val, f16Err = engine.Load(path, 2) })
	if f16Err != nil {
		t.Fatal(f16Err)
	}
	return f16Val
}

var quietLog = slog.New(slog.DiscardHandler)

// newTestServer starts a loaded server over the shared engine.
func newTestServer(t testing.TB, o Options) (*Server, *httptest.Server) {
	t.Helper()
	o.Engine = testEngine(t)
	if o.Logger == nil {
		o.Logger = quietLog
	}
	if o.Ctx == 0 {
		o.Ctx = 1024 * max(o.Slots, 1)
	}
	s := New(o)
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return s, ts
}

// do sends a request and returns the status and body.
func do(t testing.TB, method, url string, body any, hdr ...string) (int, []byte, http.Header) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

func post(t testing.TB, url string, body any, hdr ...string) (int, []byte) {
	t.Helper()
	st, b, _ := do(t, http.MethodPost, url, body, hdr...)
	return st, b
}

func get(t testing.TB, url string, hdr ...string) (int, []byte) {
	t.Helper()
	st, b, _ := do(t, http.MethodGet, url, nil, hdr...)
	return st, b
}

// obj decodes a JSON object.
func obj(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, b)
	}
	return m
}

// postOK posts and decodes a 200 JSON answer.
func postOK(t testing.TB, url string, body any) map[string]any {
	t.Helper()
	st, b := post(t, url, body)
	if st != http.StatusOK {
		t.Fatalf("POST %s: status %d: %s", url, st, b)
	}
	return obj(t, b)
}

// wantError checks an OpenAI-shaped error answer.
func wantError(t testing.TB, what string, st int, b []byte, status int, typ string) string {
	t.Helper()
	if st != status {
		if len(b) > 2000 {
			b = append(b[:2000:2000], "..."...)
		}
		t.Errorf("%s: status %d, want %d: %s", what, st, status, b)
		return ""
	}
	var e struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Type    string `json:"type"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Errorf("%s: error body is not JSON: %v: %q", what, err, b)
		return ""
	}
	if e.Error.Code != status || e.Error.Message == "" || (typ != "" && e.Error.Type != typ) {
		t.Errorf("%s: error body %s, want code %d type %q", what, b, status, typ)
	}
	return e.Error.Message
}

// sseEvents splits an SSE body into its data payloads, checking the
// framing: every event is one "data: ..." line followed by a blank line.
func sseEvents(t testing.TB, body []byte) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	expectBlank := false
	for sc.Scan() {
		line := sc.Text()
		if expectBlank {
			if line != "" {
				t.Fatalf("SSE: event not followed by a blank line: %q", line)
			}
			expectBlank = false
			continue
		}
		if !strings.HasPrefix(line, "data: ") {
			t.Fatalf("SSE: unexpected line %q", line)
		}
		out = append(out, strings.TrimPrefix(line, "data: "))
		expectBlank = true
	}
	if expectBlank {
		t.Fatalf("SSE: stream ends without the blank line after the last event")
	}
	return out
}

// stream posts a streaming request and returns its events.
func stream(t testing.TB, url string, body any) []string {
	t.Helper()
	st, b, h := do(t, http.MethodPost, url, body)
	if st != http.StatusOK {
		t.Fatalf("POST %s: status %d: %s", url, st, b)
	}
	if ct := h.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	return sseEvents(t, b)
}

// waitIdle waits until no slot is processing.
func waitIdle(t testing.TB, s *Server) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		busy := false
		for _, si := range s.sched.Slots() {
			busy = busy || si.Processing
		}
		if !busy && s.waiting.Load() == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("slots still busy after 30 s")
}

// startStream starts a streaming completion and returns once its first
// event arrived; cancel ends it.
func startStream(t testing.TB, url string, body any) (first string, cancel func(), rest *bufio.Reader) {
	t.Helper()
	ctx, cancelCtx := context.WithCancel(context.Background())
	j, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(j))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return line, func() { cancelCtx(); resp.Body.Close() }, br
}

// cacheN is a /completion response's timings.cache_n: prompt tokens reused
// from the slot's cache (tokens_cached counts every token the slot caches
// at the end, as llama-server's does).
func cacheN(r map[string]any) float64 { return num(r["timings"].(map[string]any)["cache_n"]) }

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

// newHTTPTest serves s on a test listener, closing both at cleanup.
func newHTTPTest(t testing.TB, s *Server) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return ts
}
