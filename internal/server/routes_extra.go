package server

import "net/http"

// extraRoutes registers the routes beyond completions and the cache:
// embeddings (embed.go) and the other APIs added beside them.
func (s *Server) extraRoutes() {
	for _, p := range []string{"/embedding", "/embeddings"} {
		s.HandleFunc("POST "+p, func(w http.ResponseWriter, r *http.Request) { s.handleEmbedding(w, r, false) })
	}
	s.HandleFunc("POST /v1/embeddings", func(w http.ResponseWriter, r *http.Request) { s.handleEmbedding(w, r, true) })
	for _, p := range []string{"/rerank", "/reranking", "/v1/rerank", "/v1/reranking"} {
		s.HandleFunc("POST "+p, s.handleRerank)
	}
	s.HandleFunc("POST /infill", s.handleInfill)
	s.HandleFunc("GET /lora-adapters", s.handleGetLora)
	s.HandleFunc("POST /lora-adapters", s.handleSetLora)
	s.HandleFunc("POST /v1/responses", s.handleResponses)
	s.HandleFunc("POST /v1/messages", s.handleMessages)
	s.HandleFunc("POST /v1/messages/count_tokens", s.handleCountTokens)
}
