package server

import (
	"net/http"

	"github.com/kvserve/kvserve/internal/engine"
)

// startTranslated starts a request of an API served by translation to an
// OpenAI chat body (Anthropic Messages, OpenAI Responses): it reads the
// body, converts it with toChat, decodes the chat body and starts the run,
// writing any error in the API's shape with writeErr. It reports false
// when it wrote an error; otherwise the caller closes rn.
func startTranslated[R any](s *Server, w http.ResponseWriter, r *http.Request,
	toChat func([]byte) ([]byte, R, *apiError), writeErr func(http.ResponseWriter, *apiError),
) (req *engine.Request, g genOptions, rn *run, orig R, ok bool) {
	body, aerr := readBody(r)
	if aerr == nil {
		var chat []byte
		if chat, orig, aerr = toChat(body); aerr == nil {
			if req, g, aerr = s.decodeCompletion(chat, apiOAIChat); aerr == nil {
				rn, aerr = s.start(r.Context(), req)
			}
		}
	}
	if aerr != nil {
		writeErr(w, aerr)
		return req, g, nil, orig, false
	}
	return req, g, rn, orig, true
}
