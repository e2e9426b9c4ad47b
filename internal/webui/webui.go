// Package webui owns kvserve's browser page: a chat client over the
// OpenAI routes and a live map of the paged KV cache (each page's type,
// rotation and policy tier, bytes against capacity and budget, with the
// requantize and policy controls). The page is plain HTML, CSS and
// JavaScript modules under static/, embedded in the binary: there is no
// build step and nothing is fetched from the network at run time.
//
// The page is served at "/" and its assets under "/webui/"; Paths lists
// them so a server can register exactly these paths and no API route is
// shadowed.
package webui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"
	"sync"
	"time"
)

//go:embed static
var files embed.FS

// AssetPrefix is the URL path under which the page's assets are served.
const AssetPrefix = "/webui/"

// ContentSecurityPolicy is sent with every file: scripts, styles and
// requests only from the server itself, no inline script.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// contentTypes are the types of the embedded files by extension (fixed
// here rather than taken from the system's MIME database).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

type asset struct {
	data  []byte
	ctype string
	etag  string
}

var (
	once   sync.Once
	assets map[string]asset // URL path → file
)

func load() {
	assets = map[string]asset{}
	err := fs.WalkDir(files, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(b)
		a := asset{data: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		name := strings.TrimPrefix(p, "static/")
		if name == "index.html" {
			assets["/"] = a
		} else {
			assets[AssetPrefix+name] = a
		}
		return nil
	})
	if err != nil {
		panic("webui: reading the embedded files: " + err.Error()) // cannot happen with a valid embed
	}
}

// Paths returns the URL paths the page is served at, sorted: "/" and
// each asset under AssetPrefix.
func Paths() []string {
	once.Do(load)
	out := make([]string, 0, len(assets))
	for p := range assets {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Handler serves the page and its assets (GET and HEAD) at Paths, with
// their content types, an ETag (a conditional request is answered 304),
// "Cache-Control: no-cache" (the browser revalidates, so a new binary's
// page is seen at once) and the ContentSecurityPolicy. Other paths get a
// plain 404.
func Handler() http.Handler {
	once.Do(load)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := assets[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.ctype)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("Referrer-Policy", "no-referrer")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.data))
	})
}
