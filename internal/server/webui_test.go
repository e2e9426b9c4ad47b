package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
)

// The web page is served at / and /webui/..., public (it asks for the
// key itself) and while the model loads; the API routes answer as before,
// with the key; other unknown paths still get the JSON 404.
func TestWebUIRoutes(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 2, APIKeys: []string{"k"}})
	auth := []string{"Authorization", "Bearer k"}
	st, b, h := do(t, http.MethodGet, ts.URL+"/", nil)
	if st != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(string(b), `data-testid="cache-map"`) {
		t.Fatalf("GET /: %d %q %.80s", st, h.Get("Content-Type"), b)
	}
	st, _, h = do(t, http.MethodGet, ts.URL+"/webui/app.js", nil)
	if st != 200 || h.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("GET /webui/app.js: %d %q", st, h.Get("Content-Type"))
	}
	st, _, h = do(t, http.MethodHead, ts.URL+"/", nil)
	if st != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Errorf("HEAD /: %d %q", st, h.Get("Content-Type"))
	}
	// Not a catch-all: unknown paths are the API's JSON 404, other
	// methods on / a JSON 405.
	st, b = get(t, ts.URL+"/nope", auth...)
	wantError(t, "GET /nope", st, b, 404, TypeNotFound)
	st, b = get(t, ts.URL+"/webui/nope.js", auth...)
	wantError(t, "GET /webui/nope.js", st, b, 404, TypeNotFound)
	st, b = post(t, ts.URL+"/", "{}", auth...)
	wantError(t, "POST /", st, b, 405, TypeInvalidRequest)
	// The API routes are unchanged: JSON, and the key is still needed.
	for _, p := range []string{"/props", "/slots", "/cache/usage", "/cache/policy", "/v1/models", "/health"} {
		st, b, h := do(t, http.MethodGet, ts.URL+p, nil, auth...)
		if st != 200 || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
			t.Errorf("GET %s: %d %q %.80s", p, st, h.Get("Content-Type"), b)
		}
	}
	st, b = get(t, ts.URL+"/props")
	wantError(t, "/props without the key", st, b, 401, TypeAuthentication)
	st, b = post(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"max_tokens":2}`, auth...)
	if st != 200 || obj(t, b)["object"] != "chat.completion" {
		t.Errorf("chat: %d %s", st, b)
	}
}

// --no-webui: / is the JSON 404 again, the assets are gone, the API is
// unchanged.
func TestNoWebUI(t *testing.T) {
	_, ts := newTestServer(t, Options{NoWebUI: true})
	for _, p := range []string{"/", "/webui/app.js", "/webui/style.css"} {
		st, b := get(t, ts.URL+p)
		wantError(t, "GET "+p+" with NoWebUI", st, b, 404, TypeNotFound)
	}
	for _, p := range []string{"/health", "/props", "/cache/usage"} {
		if st, b := get(t, ts.URL+p); st != 200 {
			t.Errorf("GET %s with NoWebUI: %d %s", p, st, b)
		}
	}
}

// While the model loads the page is served (it shows the loading state
// from /health); the API answers 503.
func TestWebUIWhileLoading(t *testing.T) {
	release := make(chan struct{})
	s := New(Options{Slots: 1, Ctx: 512, Logger: quietLog, load: func() (*engine.Engine, error) {
		<-release
		return engine.Load("", 2)
	}})
	ts := httptest.NewServer(s)
	defer func() { ts.Close(); s.Close() }()
	loaded := make(chan error, 1)
	go func() { loaded <- s.Load() }()
	defer func() {
		close(release)
		if err := <-loaded; err != nil {
			t.Error(err)
		}
	}()
	resp, err := http.Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "<!doctype html>") {
		t.Errorf("GET / while loading: %d %.80s", resp.StatusCode, b)
	}
	st, b := get(t, ts.URL+"/props")
	wantError(t, "props while loading", st, b, 503, TypeUnavailable)
}
