package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// object is a decoded JSON request body whose fields are read with typed
// getters. The first type or range error is kept (later getters do
// nothing) and answered as a 400; unknown fields are ignored, as
// llama-server and most OpenAI-compatible servers do.
type object struct {
	m   map[string]json.RawMessage
	err *apiError
}

// parseObject decodes a request body that must be one JSON object.
func parseObject(body []byte) (*object, *apiError) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, badRequest("empty request body: expected a JSON object")
	}
	if body[0] != '{' {
		return nil, badRequest("request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]json.RawMessage
	if err := dec.Decode(&m); err != nil {
		return nil, badRequest("invalid JSON: %s", jsonErr(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badRequest("invalid JSON: unexpected data after the object")
	}
	if m == nil {
		m = map[string]json.RawMessage{}
	}
	return &object{m: m}, nil
}

func jsonErr(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%v (at byte %d)", se, se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "unexpected end of input"
	}
	return err.Error()
}

func (o *object) fail(format string, args ...any) {
	if o.err == nil {
		o.err = badRequest(format, args...)
	}
}

// has reports whether key is present with a non-null value.
func (o *object) has(key string) bool {
	raw, ok := o.m[key]
	return ok && !isNull(raw)
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func (o *object) raw(key string) (json.RawMessage, bool) {
	raw, ok := o.m[key]
	if !ok || isNull(raw) {
		return nil, false
	}
	return raw, true
}

// kind names the JSON type of raw for error messages.
func kind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func number(raw json.RawMessage) (json.Number, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || !(raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')) {
		return "", false
	}
	return json.Number(raw), true
}

// parseInt reads a JSON number that must be an integer (5 and 5.0 are,
// 5.5 is not).
func parseInt(raw json.RawMessage) (int64, error) {
	n, ok := number(raw)
	if !ok {
		return 0, fmt.Errorf("must be an integer, not %s", kind(raw))
	}
	if i, err := n.Int64(); err == nil {
		return i, nil
	}
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, fmt.Errorf("must be an integer, not %s", n)
	}
	return int64(f), nil
}

// int reads an integer field within [lo, hi].
func (o *object) int(key string, def, lo, hi int) int {
	raw, ok := o.raw(key)
	if !ok || o.err != nil {
		return def
	}
	v, err := parseInt(raw)
	if err != nil {
		o.fail("%q %v", key, err)
		return def
	}
	if v < int64(lo) || v > int64(hi) {
		o.fail("%q must be between %d and %d, not %d", key, lo, hi, v)
		return def
	}
	return int(v)
}

// float reads a finite number field within [lo, hi].
func (o *object) float(key string, def, lo, hi float64) float64 {
	raw, ok := o.raw(key)
	if !ok || o.err != nil {
		return def
	}
	n, isNum := number(raw)
	if !isNum {
		o.fail("%q must be a number, not %s", key, kind(raw))
		return def
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		o.fail("%q: %s is out of range", key, n)
		return def
	}
	if f < lo || f > hi {
		o.fail("%q must be between %g and %g, not %g", key, lo, hi, f)
		return def
	}
	return f
}

func (o *object) bool(key string, def bool) bool {
	raw, ok := o.raw(key)
	if !ok || o.err != nil {
		return def
	}
	switch string(bytes.TrimSpace(raw)) {
	case "true":
		return true
	case "false":
		return false
	}
	o.fail("%q must be a boolean, not %s", key, kind(raw))
	return def
}

func (o *object) string(key, def string) string {
	raw, ok := o.raw(key)
	if !ok || o.err != nil {
		return def
	}
	var s string
	if kind(raw) != "a string" || json.Unmarshal(raw, &s) != nil {
		o.fail("%q must be a string, not %s", key, kind(raw))
		return def
	}
	return s
}

// strings reads a string or an array of strings (as "stop" accepts).
func (o *object) strings(key string, maxN int) []string {
	raw, ok := o.raw(key)
	if !ok || o.err != nil {
		return nil
	}
	switch kind(raw) {
	case "a string":
		var s string
		json.Unmarshal(raw, &s)
		return []string{s}
	case "an array":
		var items []json.RawMessage
		json.Unmarshal(raw, &items)
		if len(items) > maxN {
			o.fail("%q has %d entries; at most %d are allowed", key, len(items), maxN)
			return nil
		}
		out := make([]string, 0, len(items))
		for i, it := range items {
			var s string
			if kind(it) != "a string" || json.Unmarshal(it, &s) != nil {
				o.fail("%q[%d] must be a string, not %s", key, i, kind(it))
				return nil
			}
			out = append(out, s)
		}
		return out
	}
	o.fail("%q must be a string or an array of strings, not %s", key, kind(raw))
	return nil
}

// object reads a nested object field.
func (o *object) object(key string) *object {
	raw, ok := o.raw(key)
	if !ok || o.err != nil {
		return nil
	}
	if kind(raw) != "an object" {
		o.fail("%q must be an object, not %s", key, kind(raw))
		return nil
	}
	sub, err := parseObject(raw)
	if err != nil {
		o.fail("%q: %s", key, err.Message)
		return nil
	}
	return sub
}

// array reads an array field's items.
func (o *object) array(key string) ([]json.RawMessage, bool) {
	raw, ok := o.raw(key)
	if !ok || o.err != nil {
		return nil, false
	}
	if kind(raw) != "an array" {
		o.fail("%q must be an array, not %s", key, kind(raw))
		return nil, false
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		o.fail("%q: %v", key, err)
		return nil, false
	}
	return items, true
}

// seed reads a seed: a non-negative integer up to 2^64-1, or -1 for a
// random one.
func (o *object) seed(key string, def uint64) uint64 {
	raw, ok := o.raw(key)
	if !ok || o.err != nil {
		return def
	}
	n, isNum := number(raw)
	if !isNum {
		o.fail("%q must be an integer, not %s", key, kind(raw))
		return def
	}
	s := strings.TrimSpace(string(n))
	if s == "-1" {
		return 0xFFFFFFFF
	}
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return u
	}
	if v, err := parseInt(raw); err == nil && v >= 0 {
		return uint64(v)
	}
	o.fail("%q must be -1 (random) or an integer from 0 to 18446744073709551615, not %s", key, s)
	return def
}

// nonEmpty reports whether a field is present with a value other than
// null, false, 0, "", [] or {} (for rejecting unsupported features only
// when they are actually asked for).
func (o *object) nonEmpty(key string) bool {
	raw, ok := o.raw(key)
	if !ok {
		return false
	}
	switch s := string(bytes.TrimSpace(raw)); s {
	case "false", "0", `""`, "[]", "{}":
		return false
	default:
		if n, isNum := number(raw); isNum {
			f, err := n.Float64()
			return err != nil || f != 0
		}
		if kind(raw) == "an array" || kind(raw) == "an object" {
			var v any
			if json.Unmarshal(raw, &v) == nil {
				switch x := v.(type) {
				case []any:
					return len(x) > 0
				case map[string]any:
					return len(x) > 0
				}
			}
		}
		return true
	}
}
