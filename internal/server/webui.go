package server

import (
	"strings"

	"github.com/kvserve/kvserve/internal/webui"
)

// webuiRoutes serves the embedded web page (internal/webui) at "/" and
// its assets under /webui/, unless Options.NoWebUI. Only those exact
// paths are registered, so no API route is shadowed and other unknown
// paths still get the JSON 404. They are public (the page asks for the
// API key itself) and are served while the model loads (the page shows
// that).
func (s *Server) webuiRoutes() {
	if s.o.NoWebUI {
		return
	}
	h := webui.Handler()
	for _, p := range webui.Paths() {
		s.public[p] = true
		pattern := p
		if p == "/" {
			pattern = "/{$}" // "/" alone would match every path
		}
		s.Handle("GET "+pattern, h)
	}
}

// webuiPath reports whether path is one of the page's (served in any
// state but shutdown).
func (s *Server) webuiPath(path string) bool {
	return !s.o.NoWebUI && (path == "/" || strings.HasPrefix(path, webui.AssetPrefix)) && s.public[path]
}
