package server

import "net/http"

// extraRoutes registers the routes beyond completions and the cache:
// embeddings (embed.go) and the other APIs added beside them.
func (s *Server) extraRoutes() {
	for _, p := range []string{"/embedding", "/embeddings"} {
		s.HandleFunc("POST "+p, func(w http.ResponseWriter, r *http.Request) { s.handleEmbedding(w, r, false) })
	}
	s.HandleFunc("POST /v1/embeddings", func(w http.ResponseWriter, r *http.Request) { s.handleEmbedding(w, r, true) })
}
