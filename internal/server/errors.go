package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// Error types, as llama-server and the OpenAI API name them.
const (
	TypeInvalidRequest = "invalid_request_error"
	TypeAuthentication = "authentication_error"
	TypePermission     = "permission_error"
	TypeNotFound       = "not_found_error"
	TypeServer         = "server_error"
	TypeUnavailable    = "unavailable_error"
	TypeNotSupported   = "not_supported_error"
	TypeExceedContext  = "exceed_context_size_error"
)

// Error is an error answered to the client in OpenAI's error shape with
// its HTTP status. RetryAfter (seconds), when positive, is sent as the
// Retry-After header (503s that a later retry may pass).
type Error struct {
	Status     int
	Type       string
	Message    string
	RetryAfter int
	// Extra fields of the error object (llama-server's n_prompt_tokens
	// and n_ctx on a context overflow).
	Extra map[string]any

	slotBusy bool // a slot action found its slot running a request
}

func (e *Error) Error() string { return e.Message }

// apiError is the package's short name for Error.
type apiError = Error

// Errorf returns an Error with the given status, type and message.
func Errorf(status int, typ, format string, args ...any) *Error {
	return &Error{Status: status, Type: typ, Message: fmt.Sprintf(format, args...)}
}

func errorf(status int, typ, format string, args ...any) *apiError {
	return Errorf(status, typ, format, args...)
}

func badRequest(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, TypeInvalidRequest, format, args...)
}

// busy is a 503 that a retry after a second or so may pass.
func busy(format string, args ...any) *apiError {
	e := errorf(http.StatusServiceUnavailable, TypeUnavailable, format, args...)
	e.RetryAfter = 1
	return e
}

// errorBody is the JSON of an error: the body of an error response and
// the payload of an error event in a stream.
func errorBody(e *apiError) map[string]any {
	m := map[string]any{"code": e.Status, "message": e.Message, "type": e.Type}
	for k, v := range e.Extra {
		m[k] = v
	}
	return map[string]any{"error": m}
}

// asAPIError maps any error to the one answered: an *Error as it is,
// anything else a 500 server_error.
func asAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	return errorf(http.StatusInternalServerError, TypeServer, "%v", err)
}

// WriteError answers err in the OpenAI error shape
// ({"error":{"code":N,"message":"...","type":"..."}}): an *Error with its
// status, type and Retry-After, any other error as a 500 server_error.
// It is the server's only error writer; handlers added with Server.Handle
// use it too (with Errorf) so every route answers errors alike.
func WriteError(w http.ResponseWriter, err error) {
	e := asAPIError(err)
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	WriteJSON(w, e.Status, errorBody(e))
}

// WriteJSON answers v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = marshal(errorBody(errorf(status, TypeServer, "encoding the response: %v", err)))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

// marshal encodes v as JSON without HTML escaping (so "<|im_end|>" stays
// readable), ending with a newline.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ReadJSON reads a request's body and decodes it into v with the rules of
// decodeJSON (one JSON object within the body limit; a struct refuses
// unknown fields). On failure it answers the error (413 or 400) and
// returns false. It is the server's only JSON reader; handlers added with
// Server.Handle use it too.
func ReadJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	b, aerr := readBody(r)
	if aerr == nil {
		aerr = decodeJSON(b, v, false)
	}
	if aerr != nil {
		WriteError(w, aerr)
		return false
	}
	return true
}

// readBody reads a request body within the size limit (set by the
// middleware with http.MaxBytesReader).
func readBody(r *http.Request) ([]byte, *apiError) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errorf(http.StatusRequestEntityTooLarge, TypeInvalidRequest, "request body exceeds the limit of %d bytes", mbe.Limit)
		}
		return nil, badRequest("reading the request body: %v", err)
	}
	return b, nil
}

// decodeJSON decodes a request body that must be one JSON object into v:
// into an *object (the completion routes' field map, read with typed
// getters; unknown fields are ignored, as llama-server does), or into a
// struct, refusing unknown fields (a misspelt option must not silently do
// nothing). An empty body is an error unless allowEmpty, when v is left
// as it is.
func decodeJSON(body []byte, v any, allowEmpty bool) *apiError {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		if allowEmpty {
			return nil
		}
		return badRequest("empty body: send a JSON object")
	}
	if body[0] != '{' {
		return badRequest("request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var err error
	if o, ok := v.(*object); ok {
		dec.UseNumber()
		var m map[string]json.RawMessage
		if err = dec.Decode(&m); err == nil {
			if m == nil {
				m = map[string]json.RawMessage{}
			}
			o.m, o.err = m, nil
		}
	} else {
		dec.DisallowUnknownFields()
		err = dec.Decode(v)
	}
	if err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return badRequest("invalid JSON: %s", jsonErr(err))
		}
		return badRequest("invalid request: %s", jsonErr(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("invalid JSON: unexpected data after the object")
	}
	return nil
}
