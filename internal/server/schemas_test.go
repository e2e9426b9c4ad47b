package server

import (
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// schemaGen generates JSON Schemas deterministically: nested objects,
// arrays with bounds, enums and const, anyOf, strings with patterns,
// lengths and formats, integers and numbers with bounds, $ref to $defs.
// Sizes are kept small so a small model completes most of them within
// the test's token budget.
type schemaGen struct {
	r    *rand.Rand
	defs map[string]any
}

var genNames = []string{"id", "name", "title", "count", "price", "tags", "items", "kind", "active", "score", "owner", "meta", "when", "code", "note"}

var genPatterns = []string{`^[a-z]{2,5}$`, `^[A-Z][a-z]{1,4}-[0-9]{2}$`, `^(yes|no|maybe)$`, `^\d{3}$`, `^[a-f0-9]{4}(-[a-f0-9]{2})?$`, `^x+y?$`}

func (g *schemaGen) schema(depth int) map[string]any {
	k := g.r.IntN(12)
	if depth >= 3 && k < 4 {
		k += 4 // leaves only at the bottom
	}
	switch k {
	case 0, 1:
		return g.object(depth)
	case 2:
		a := map[string]any{"type": "array", "items": g.schema(depth + 1), "maxItems": 1 + g.r.IntN(3)}
		if g.r.IntN(2) == 0 {
			a["minItems"] = 1
		}
		return a
	case 3:
		return map[string]any{"anyOf": []any{g.schema(depth + 1), g.schema(depth + 1)}}
	case 4:
		s := map[string]any{"type": "string", "maxLength": 1 + g.r.IntN(12)}
		if g.r.IntN(3) == 0 {
			s["minLength"] = 1
		}
		return s
	case 5:
		return map[string]any{"type": "string", "pattern": genPatterns[g.r.IntN(len(genPatterns))]}
	case 6:
		lo := g.r.IntN(200) - 100
		s := map[string]any{"type": "integer", "minimum": lo, "maximum": lo + g.r.IntN(1000)}
		if g.r.IntN(3) == 0 {
			delete(s, "maximum")
			s["exclusiveMaximum"] = lo + 1 + g.r.IntN(50)
		}
		return s
	case 7:
		lo := g.r.IntN(20) - 10
		s := map[string]any{"type": "number", "minimum": lo, "maximum": lo + 1 + g.r.IntN(100)}
		if g.r.IntN(2) == 0 {
			delete(s, "minimum")
			s["exclusiveMinimum"] = lo
		}
		return s
	case 8:
		vals := []any{"red", "green", "blue", 1, 2.5, true, nil, "a \"quoted\" word"}
		n := 1 + g.r.IntN(4)
		var e []any
		for _, i := range g.r.Perm(len(vals))[:n] {
			e = append(e, vals[i])
		}
		return map[string]any{"enum": e}
	case 9:
		return map[string]any{"type": []any{"boolean", "null"}[g.r.IntN(2)]}
	case 10:
		if g.r.IntN(2) == 0 {
			return map[string]any{"type": "string", "format": []string{"date", "uuid", "date-time", "time"}[g.r.IntN(4)]}
		}
		return map[string]any{"const": []any{"fixed", 42, map[string]any{"v": 1}}[g.r.IntN(3)]}
	default:
		name := fmt.Sprintf("d%d", len(g.defs))
		g.defs[name] = nil // reserved before the definition's own $defs
		g.defs[name] = g.schema(depth + 1)
		return map[string]any{"$ref": "#/$defs/" + name}
	}
}

func (g *schemaGen) object(depth int) map[string]any {
	props := map[string]any{}
	var required []any
	for _, i := range g.r.Perm(len(genNames))[:1+g.r.IntN(3)] {
		props[genNames[i]] = g.schema(depth + 1)
		if g.r.IntN(3) > 0 {
			required = append(required, genNames[i])
		}
	}
	o := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		o["required"] = required
	}
	if g.r.IntN(3) > 0 {
		o["additionalProperties"] = false
	}
	return o
}

// genSchema returns the seed's schema as JSON decodes it (numbers as
// float64).
func genSchema(seed uint64) map[string]any {
	g := &schemaGen{r: rand.New(rand.NewPCG(seed, 0x5eed)), defs: map[string]any{}}
	s := g.object(0) // response_format json_schema: an object at the top
	if len(g.defs) > 0 {
		s["$defs"] = g.defs
	}
	b, _ := json.Marshal(s)
	var out map[string]any
	json.Unmarshal(b, &out)
	return out
}

// validate checks a decoded JSON value (numbers as json.Number) against
// the schema subset the generator uses, with JSON Schema's semantics.
func validate(root, s map[string]any, v any, path string) error {
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/$defs/")
		return validate(root, root["$defs"].(map[string]any)[name].(map[string]any), v, path)
	}
	if alts, ok := s["anyOf"].([]any); ok {
		var errs []string
		for _, a := range alts {
			err := validate(root, a.(map[string]any), v, path)
			if err == nil {
				return nil
			}
			errs = append(errs, err.Error())
		}
		return fmt.Errorf("%s: no anyOf branch matches (%s)", path, strings.Join(errs, "; "))
	}
	if c, ok := s["const"]; ok {
		return equalJSON(c, v, path)
	}
	if e, ok := s["enum"].([]any); ok {
		for _, x := range e {
			if equalJSON(x, v, path) == nil {
				return nil
			}
		}
		return fmt.Errorf("%s: %v not in enum %v", path, v, e)
	}
	switch t := s["type"].(string); t {
	case "object":
		o, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: not an object", path)
		}
		props := s["properties"].(map[string]any)
		for _, r := range asList(s["required"]) {
			if _, ok := o[r.(string)]; !ok {
				return fmt.Errorf("%s: missing required %q", path, r)
			}
		}
		for k, x := range o {
			ps, known := props[k]
			if !known {
				if s["additionalProperties"] == false {
					return fmt.Errorf("%s: additional property %q", path, k)
				}
				continue
			}
			if err := validate(root, ps.(map[string]any), x, path+"/"+k); err != nil {
				return err
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: not an array", path)
		}
		if mx, ok := s["maxItems"]; ok && len(a) > int(num(mx)) {
			return fmt.Errorf("%s: %d items > maxItems", path, len(a))
		}
		if mn, ok := s["minItems"]; ok && len(a) < int(num(mn)) {
			return fmt.Errorf("%s: %d items < minItems", path, len(a))
		}
		for i, x := range a {
			if err := validate(root, s["items"].(map[string]any), x, fmt.Sprintf("%s/%d", path, i)); err != nil {
				return err
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: not a string", path)
		}
		n := utf8.RuneCountInString(str)
		if mx, ok := s["maxLength"]; ok && n > int(num(mx)) {
			return fmt.Errorf("%s: length %d > maxLength", path, n)
		}
		if mn, ok := s["minLength"]; ok && n < int(num(mn)) {
			return fmt.Errorf("%s: length %d < minLength", path, n)
		}
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(str) {
			return fmt.Errorf("%s: %q does not match %s", path, str, p)
		}
		if f, ok := s["format"].(string); ok {
			shapes := map[string]string{
				"date":      `^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$`,
				"time":      `^([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,3})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$`,
				"date-time": `^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,3})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$`,
				"uuid":      `^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`,
			}
			if !regexp.MustCompile(shapes[f]).MatchString(str) {
				return fmt.Errorf("%s: %q is not a %s", path, str, f)
			}
		}
	case "integer", "number":
		n, ok := v.(json.Number)
		if !ok {
			return fmt.Errorf("%s: not a number", path)
		}
		x, ok := new(big.Rat).SetString(string(n))
		if !ok {
			return fmt.Errorf("%s: bad number %s", path, n)
		}
		if t == "integer" && !x.IsInt() {
			return fmt.Errorf("%s: %s is not an integer", path, n)
		}
		bound := func(k string) *big.Rat {
			b, ok := s[k]
			if !ok {
				return nil
			}
			return new(big.Rat).SetFloat64(num(b))
		}
		if b := bound("minimum"); b != nil && x.Cmp(b) < 0 {
			return fmt.Errorf("%s: %s < minimum", path, n)
		}
		if b := bound("maximum"); b != nil && x.Cmp(b) > 0 {
			return fmt.Errorf("%s: %s > maximum", path, n)
		}
		if b := bound("exclusiveMinimum"); b != nil && x.Cmp(b) <= 0 {
			return fmt.Errorf("%s: %s <= exclusiveMinimum", path, n)
		}
		if b := bound("exclusiveMaximum"); b != nil && x.Cmp(b) >= 0 {
			return fmt.Errorf("%s: %s >= exclusiveMaximum", path, n)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: not a boolean", path)
		}
	case "null":
		if v != nil {
			return fmt.Errorf("%s: not null", path)
		}
	default:
		return fmt.Errorf("%s: validator does not know schema %v", path, s)
	}
	return nil
}

func asList(v any) []any { l, _ := v.([]any); return l }

// equalJSON compares a schema value (from Go literals) with a decoded one.
func equalJSON(want, got any, path string) error {
	a, _ := json.Marshal(want)
	var norm any
	json.Unmarshal(a, &norm)
	b, _ := json.Marshal(got)
	var gotNorm any
	json.Unmarshal(b, &gotNorm)
	an, _ := json.Marshal(norm)
	bn, _ := json.Marshal(gotNorm)
	if string(an) != string(bn) {
		return fmt.Errorf("%s: %s != %s", path, bn, an)
	}
	return nil
}

// 200 generated schemas through response_format json_schema on the
// embedded model: every output that completes (finish_reason "stop")
// parses and validates; outputs cut by max_tokens report "length".
func TestGeneratedSchemas(t *testing.T) {
	n := 200
	if raceEnabled || testing.Short() {
		n = 25
	}
	_, ts := newTestServer(t, Options{Slots: 1})
	completed, cut := 0, 0
	for i := range n {
		schema := genSchema(uint64(i))
		sb, _ := json.Marshal(schema)
		body := map[string]any{
			"messages":    userMsg("Reply with JSON."),
			"temperature": 0.7, "seed": i, "max_tokens": 256,
			"response_format": map[string]any{"type": "json_schema", "json_schema": map[string]any{"name": fmt.Sprint("s", i), "strict": true, "schema": schema}},
		}
		st, b := post(t, ts.URL+chatURL, body)
		if st != 200 {
			t.Fatalf("schema %d %s: status %d: %s", i, sb, st, b)
		}
		m, fr := message(t, obj(t, b))
		content := m["content"].(string)
		switch fr {
		case "stop":
			completed++
			dec := json.NewDecoder(strings.NewReader(content))
			dec.UseNumber()
			var v any
			if err := dec.Decode(&v); err != nil || dec.More() {
				t.Errorf("schema %d %s: output %q is not one JSON value: %v", i, sb, content, err)
				continue
			}
			if err := validate(schema, schema, v, "#"); err != nil {
				t.Errorf("schema %d %s: output %q: %v", i, sb, content, err)
			}
		case "length":
			cut++
		default:
			t.Errorf("schema %d: finish_reason %q", i, fr)
		}
	}
	t.Logf("%d schemas: %d completed and validated, %d cut by max_tokens", n, completed, cut)
	if completed < n*3/4 {
		t.Errorf("only %d of %d outputs completed", completed, n)
	}
}
