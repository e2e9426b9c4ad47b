package server

import (
	"net/http"
)

// sse writes a Server-Sent Events stream: "data: JSON\n\n" per event,
// flushed at once.
type sse struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	err error
}

func newSSE(w http.ResponseWriter) *sse {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s := &sse{w: w, rc: http.NewResponseController(w)}
	s.flush()
	return s
}

func (s *sse) flush() {
	if s.err == nil {
		if err := s.rc.Flush(); err != nil {
			s.err = err
		}
	}
}

// data sends one event holding v as JSON. It returns the first write
// error (the client went away); later calls do nothing.
func (s *sse) data(v any) error {
	if s.err != nil {
		return s.err
	}
	b, err := marshal(v)
	if err != nil {
		b, _ = marshal(errorBody(errorf(http.StatusInternalServerError, TypeServer, "encoding the event: %v", err)))
	}
	return s.raw("data: " + string(b) + "\n") // marshal ends b with a newline
}

func (s *sse) raw(text string) error {
	if s.err != nil {
		return s.err
	}
	if _, err := s.w.Write([]byte(text)); err != nil {
		s.err = err
		return err
	}
	s.flush()
	return s.err
}

// error sends an error event in the OpenAI error shape (clients such as
// the openai npm package raise it as an API error); the handler then
// returns, which ends the response properly.
func (s *sse) error(e *apiError) error {
	return s.data(errorBody(e))
}
