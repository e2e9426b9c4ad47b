package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error types, as llama-server and the OpenAI API name them.
const (
	TypeInvalidRequest = "invalid_request_error"
	TypeAuthentication = "authentication_error"
	TypeNotFound       = "not_found_error"
	TypeServer         = "server_error"
	TypeUnavailable    = "unavailable_error"
	TypeNotSupported   = "not_supported_error"
	TypeExceedContext  = "exceed_context_size_error"
)

// apiError is an error answered to the client in OpenAI's error shape.
type apiError struct {
	Status  int
	Type    string
	Message string
}

func (e *apiError) Error() string { return e.Message }

func errorf(status int, typ, format string, args ...any) *apiError {
	return &apiError{Status: status, Type: typ, Message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, TypeInvalidRequest, format, args...)
}

// errorBody is the JSON body of an error response.
func errorBody(status int, typ, msg string) map[string]any {
	return map[string]any{"error": map[string]any{"code": status, "message": msg, "type": typ}}
}

// WriteError answers an error in the OpenAI error shape
// ({"error":{"code":N,"message":"...","type":"..."}}). Handlers added with
// Server.Handle should use it so every route answers errors alike.
func WriteError(w http.ResponseWriter, status int, typ, msg string) {
	WriteJSON(w, status, errorBody(status, typ, msg))
}

func writeAPIError(w http.ResponseWriter, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		WriteError(w, ae.Status, ae.Type, ae.Message)
		return
	}
	WriteError(w, http.StatusInternalServerError, TypeServer, err.Error())
}

// WriteJSON answers v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = marshal(errorBody(status, TypeServer, "encoding the response: "+err.Error()))
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

// ReadJSON decodes a request's JSON object body into v (json.Unmarshal's
// rules). When the body is too large, malformed or does not match v, it
// answers the error (413 or 400) and returns false. For handlers added
// with Server.Handle.
func ReadJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	b, aerr := readBody(r)
	if aerr == nil {
		if _, aerr = parseObject(b); aerr == nil {
			if err := json.Unmarshal(b, v); err != nil {
				aerr = badRequest("invalid request: %s", jsonErr(err))
			}
		}
	}
	if aerr != nil {
		writeAPIError(w, aerr)
		return false
	}
	return true
}
