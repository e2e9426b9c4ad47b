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

// parseObject decodes a body (or a nested value) that must be one JSON
// object into a field map.
func parseObject(body []byte) (*object, *apiError) {
	o := &object{}
	if err := decodeJSON(body, o, false); err != nil {
		return nil, err
	}
	return o, nil
}

// jsonErr describes a decoding error for the client.
func jsonErr(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("%v (at byte %d)", se, se.Offset)
	case errors.As(err, &te) && te.Field != "":
		return fmt.Sprintf("%q must be %s, not %s", te.Field, te.Type, te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return "unexpected end of input"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
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

// strings reads a string or an array of strings (as "stop" accepts): at
// most maxN of them, each at most maxLen bytes.
func (o *object) strings(key string, maxN, maxLen int) []string {
	raw, ok := o.raw(key)
	if !ok || o.err != nil {
		return nil
	}
	var out []string
	switch kind(raw) {
	case "a string":
		var s string
		json.Unmarshal(raw, &s)
		out = []string{s}
	case "an array":
		items, err := arrayItems(raw, maxN)
		if err != nil {
			o.fail("%q %v", key, err)
			return nil
		}
		out = make([]string, 0, len(items))
		for i, it := range items {
			var s string
			if kind(it) != "a string" || json.Unmarshal(it, &s) != nil {
				o.fail("%q[%d] must be a string, not %s", key, i, kind(it))
				return nil
			}
			out = append(out, s)
		}
	default:
		o.fail("%q must be a string or an array of strings, not %s", key, kind(raw))
		return nil
	}
	for i, s := range out {
		if len(s) > maxLen {
			o.fail("%q[%d] has %d bytes; at most %d are allowed", key, i, len(s), maxLen)
			return nil
		}
	}
	return out
}

// errTooMany is arrayItems' error for an array over its limit.
type errTooMany int

func (e errTooMany) Error() string { return fmt.Sprintf("has more than %d entries", int(e)) }

// arrayItems splits a JSON array into its items, refusing one of more
// than maxN items before decoding the rest (so a huge array costs no more
// than maxN items).
func arrayItems(raw json.RawMessage, maxN int) ([]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return nil, fmt.Errorf("must be an array, not %s", kind(raw))
	}
	var items []json.RawMessage
	for dec.More() {
		if len(items) >= maxN {
			return nil, errTooMany(maxN)
		}
		var it json.RawMessage
		if err := dec.Decode(&it); err != nil {
			return nil, fmt.Errorf("is not valid JSON: %s", jsonErr(err))
		}
		items = append(items, it)
	}
	return items, nil
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

// array reads an array field's items (at most maxN).
func (o *object) array(key string, maxN int) ([]json.RawMessage, bool) {
	raw, ok := o.raw(key)
	if !ok || o.err != nil {
		return nil, false
	}
	if kind(raw) != "an array" {
		o.fail("%q must be an array, not %s", key, kind(raw))
		return nil, false
	}
	items, err := arrayItems(raw, maxN)
	if err != nil {
		o.fail("%q %v", key, err)
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
