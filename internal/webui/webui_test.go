package webui

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func serve(t *testing.T, method, path string, hdr ...string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	Handler().ServeHTTP(w, r)
	return w.Result()
}

// Every embedded file is served at its path with its content type, its
// bytes, an ETag (a conditional GET is answered 304) and the CSP.
func TestServesEmbeddedFiles(t *testing.T) {
	paths := Paths()
	for _, want := range []string{"/", "/webui/app.js", "/webui/api.js", "/webui/chat.js", "/webui/md.js",
		"/webui/cachemap.js", "/webui/style.css", "/webui/favicon.svg"} {
		if !slices.Contains(paths, want) {
			t.Errorf("Paths() lacks %s: %v", want, paths)
		}
	}
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
		".svg": "image/svg+xml", "/": "text/html; charset=utf-8"}
	for _, p := range paths {
		if p != "/" && !strings.HasPrefix(p, AssetPrefix) {
			t.Errorf("path %s outside / and %s", p, AssetPrefix)
		}
		file := "static/index.html"
		ext := "/"
		if p != "/" {
			file = "static/" + strings.TrimPrefix(p, AssetPrefix)
			ext = p[strings.LastIndex(p, "."):]
		}
		want, err := fs.ReadFile(files, file)
		if err != nil {
			t.Fatal(err)
		}
		resp := serve(t, http.MethodGet, p)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != string(want) {
			t.Errorf("GET %s: %d, %d bytes (want the %d bytes of %s)", p, resp.StatusCode, len(body), len(want), file)
		}
		if ct := resp.Header.Get("Content-Type"); ct != types[ext] {
			t.Errorf("GET %s: Content-Type %q, want %q", p, ct, types[ext])
		}
		if resp.Header.Get("Content-Security-Policy") != ContentSecurityPolicy || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: security headers missing: %v", p, resp.Header)
		}
		etag := resp.Header.Get("ETag")
		if etag == "" {
			t.Errorf("GET %s: no ETag", p)
			continue
		}
		if r := serve(t, http.MethodGet, p, "If-None-Match", etag); r.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %d, want 304", p, r.StatusCode)
		}
		if r := serve(t, http.MethodHead, p); r.StatusCode != 200 || r.Header.Get("Content-Type") != types[ext] {
			t.Errorf("HEAD %s: %d %q", p, r.StatusCode, r.Header.Get("Content-Type"))
		}
	}
	if r := serve(t, http.MethodPost, "/"); r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", r.StatusCode)
	}
	for _, p := range []string{"/index.html", "/webui/", "/webui/nope.js", "/health", "/static/app.js"} {
		if r := serve(t, http.MethodGet, p); r.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, r.StatusCode)
		}
	}
}

// The page needs nothing from outside the binary: every script, style,
// icon and module import it names is an embedded file, and no file
// loads anything from another origin.
func TestPageIsSelfContained(t *testing.T) {
	paths := Paths()
	resp := serve(t, http.MethodGet, "/")
	index, _ := io.ReadAll(resp.Body)
	refs := regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(string(index), -1)
	if len(refs) < 3 {
		t.Fatalf("index.html names only %d assets", len(refs))
	}
	for _, m := range refs {
		if !slices.Contains(paths, m[1]) {
			t.Errorf("index.html references %s, which is not embedded", m[1])
		}
	}
	imports := regexp.MustCompile(`(?m)^\s*import\s[^'"]*['"]([^'"]+)['"]`)
	remote := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|@import|url\(\s*["']?(https?:)?//|import\s*\(\s*['"]https?:`)
	err := fs.WalkDir(files, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(files, p)
		if remote.Match(b) {
			t.Errorf("%s loads something from another origin: %s", p, remote.Find(b))
		}
		for _, m := range imports.FindAllStringSubmatch(string(b), -1) {
			if !strings.HasPrefix(m[1], "./") || !slices.Contains(paths, AssetPrefix+strings.TrimPrefix(m[1], "./")) {
				t.Errorf("%s imports %s, which is not an embedded module", p, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The hooks the browser test and users' tests rely on.
	for _, hook := range []string{`data-testid="cache-map"`, `data-testid="chat-input"`, `data-testid="send"`} {
		if !strings.Contains(string(index), hook) {
			t.Errorf("index.html lacks %s", hook)
		}
	}
}
