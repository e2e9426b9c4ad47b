package grammar

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// JSON Schema support (the keywords of drafts 4 to 2020-12 that constrain
// generation):
//
//   - type (a name or a list), enum, const, nullable (OpenAPI);
//   - objects: properties (emitted in the schema's order, required ones
//     first), required, additionalProperties (false when absent, as
//     llama.cpp does; true or a schema allows more keys after the known
//     ones, never repeating a known key);
//   - arrays: items, prefixItems (or items as a list, with additionalItems),
//     minItems, maxItems;
//   - strings: minLength, maxLength, pattern (see regex.go), format date,
//     time, date-time and uuid (other formats are annotations and ignored);
//   - integers and numbers: minimum, maximum, exclusiveMinimum,
//     exclusiveMaximum (draft 4's boolean form too); bounds of a number
//     must be integers;
//   - anyOf, oneOf (as anyOf: exclusivity is not enforced), allOf (merged;
//     sibling keywords of anyOf/oneOf are distributed into each branch),
//     $ref to the document itself ("#", "#/$defs/x", any JSON pointer),
//     recursion included.
//
// Keywords that constrain what they cannot express (not, if/then/else,
// patternProperties, propertyNames, dependentRequired, dependentSchemas,
// minProperties, maxProperties, contains, uniqueItems, multipleOf,
// unevaluatedProperties, unevaluatedItems, $dynamicRef, remote $refs) are
// refused with an error naming them. Annotations are ignored.

// Whitespace inside generated JSON: nothing, one space, or a newline and
// up to 20 spaces or tabs of indentation. The value itself has none around
// it, so a complete value ends the grammar.
var jsonPrims = map[string]struct {
	body string
	deps []string
}{
	"space":         {`| " " | "\n" [ \t]{0,20}`, nil},
	"value":         {`object | array | string | number | boolean | null`, []string{"object", "array", "string", "number", "boolean", "null"}},
	"object":        {`"{" space ( string ":" space value ( "," space string ":" space value )* space )? "}"`, []string{"space", "string", "value"}},
	"array":         {`"[" space ( value ( "," space value )* space )? "]"`, []string{"space", "value"}},
	"string":        {`"\"" char* "\""`, []string{"char"}},
	"char":          {`[^"\\\x7F\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" ( [0-9a-cA-Ce-fE-F] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2} ) )`, nil},
	"number":        {`"-"? integral-part ( "." decimal-part )? ( [eE] [-+]? [0-9]{1,2} )?`, []string{"integral-part", "decimal-part"}},
	"integer":       {`"-"? integral-part`, []string{"integral-part"}},
	"integral-part": {`"0" | [1-9] [0-9]{0,15}`, nil},
	"decimal-part":  {`[0-9]{1,16}`, nil},
	"boolean":       {`"true" | "false"`, nil},
	"null":          {`"null"`, nil},
	"plain-char":    {`[^"\\\x7F\x00-\x1F]`, nil},
}

// AnyJSONGBNF matches any JSON value; JSONObjectGBNF any JSON object
// (OpenAI's response_format {"type": "json_object"}).
var (
	AnyJSONGBNF    = primGrammar("value")
	JSONObjectGBNF = primGrammar("object")
)

func primGrammar(root string) string {
	c := newConv(nil, DefaultLimits.MaxRepetition)
	c.prim(root)
	c.rules["root"] = root
	c.order = append([]string{"root"}, c.order...)
	return c.text()
}

type conv struct {
	root    any
	doc     int // which document root is (a Builder holds several)
	rules   map[string]string
	order   []string
	byBody  map[string]string
	refRule map[string]string
	depth   int
	maxRep  int
}

func newConv(root any, maxRep int) *conv {
	return &conv{root: root, rules: map[string]string{}, byBody: map[string]string{}, refRule: map[string]string{}, maxRep: maxRep}
}

// SchemaError is a JSON Schema the converter cannot express.
type SchemaError struct {
	Path string // JSON pointer of the schema in the document
	Msg  string
}

func (e *SchemaError) Error() string {
	if e.Path == "" {
		return "JSON schema: " + e.Msg
	}
	return "JSON schema at " + e.Path + ": " + e.Msg
}

// JSONSchemaGBNF returns the GBNF grammar of the JSON texts that a JSON
// Schema accepts (see the keywords above).
func JSONSchemaGBNF(schema []byte) (string, error) {
	return jsonSchemaGBNF(schema, DefaultLimits.MaxRepetition)
}

func jsonSchemaGBNF(schema []byte, maxRep int) (string, error) {
	root, err := decodeOrdered(schema)
	if err != nil {
		return "", &SchemaError{Msg: "not valid JSON: " + err.Error()}
	}
	c := newConv(root, maxRep)
	expr, err := c.visit(root, "root", "#")
	if err != nil {
		return "", err
	}
	c.rules["root"] = expr
	c.order = append([]string{"root"}, c.order...)
	return c.text(), nil
}

// FromJSONSchema compiles a JSON Schema into a grammar.
func FromJSONSchema(schema []byte, lim Limits) (*Grammar, error) {
	lim = lim.withDefaults()
	src, err := jsonSchemaGBNF(schema, lim.MaxRepetition)
	if err != nil {
		return nil, err
	}
	return Parse(src, lim)
}

func (c *conv) text() string {
	var b strings.Builder
	for _, n := range c.order {
		fmt.Fprintf(&b, "%s ::= %s\n", n, c.rules[n])
	}
	return b.String()
}

func (c *conv) prim(name string) string {
	if _, ok := c.rules[name]; ok {
		return name
	}
	p := jsonPrims[name]
	c.rules[name] = p.body
	c.order = append(c.order, name)
	for _, d := range p.deps {
		c.prim(d)
	}
	return name
}

// ruleName makes a unique rule name from a hint.
func (c *conv) ruleName(hint string) string {
	var b strings.Builder
	dash := false
	for _, r := range hint {
		if r < 0x80 && isWordChar(byte(r)) {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	base := strings.Trim(b.String(), "-")
	if len(base) > 40 {
		base = strings.Trim(base[:40], "-")
	}
	if base == "" {
		base = "r"
	}
	if _, prim := jsonPrims[base]; prim || base == "root" {
		base += "-x"
	}
	name := base
	for i := 2; ; i++ {
		if _, taken := c.rules[name]; !taken {
			return name
		}
		name = base + "-" + strconv.Itoa(i)
	}
}

// rule defines a rule for body (reusing an identical one) and returns its
// name.
func (c *conv) rule(hint, body string) string {
	if n, ok := c.byBody[body]; ok {
		return n
	}
	n := c.ruleName(hint)
	c.rules[n] = body
	c.order = append(c.order, n)
	c.byBody[body] = n
	return n
}

func errAt(path, format string, args ...any) error {
	return &SchemaError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Keywords refused because they constrain what the grammar cannot express.
var unsupportedKeywords = []string{
	"not", "if", "then", "else", "patternProperties", "propertyNames", "dependentRequired",
	"dependentSchemas", "dependencies", "minProperties", "maxProperties", "contains", "minContains",
	"maxContains", "multipleOf", "unevaluatedProperties", "unevaluatedItems", "$dynamicRef", "$recursiveRef",
}

// annotation keywords: no constraint.
var annotations = map[string]bool{
	"title": true, "description": true, "default": true, "examples": true, "$schema": true, "$id": true,
	"$comment": true, "deprecated": true, "readOnly": true, "writeOnly": true, "contentEncoding": true,
	"contentMediaType": true, "$defs": true, "definitions": true, "$anchor": true, "strict": true,
}

func without(o *object, keys ...string) *object {
	n := newObject()
	for _, k := range o.keys {
		if !slices.Contains(keys, k) {
			n.set(k, o.vals[k])
		}
	}
	return n
}

// constrains reports whether o has any keyword other than annotations.
func constrains(o *object) bool {
	for _, k := range o.keys {
		if !annotations[k] {
			return true
		}
	}
	return false
}

func (c *conv) visit(s any, hint, path string) (string, error) {
	c.depth++
	defer func() { c.depth-- }()
	if c.depth > 200 {
		return "", errAt(path, "schema nested or merged too deeply")
	}
	var o *object
	switch x := s.(type) {
	case bool:
		if x {
			return c.prim("value"), nil
		}
		return "", errAt(path, "the schema false matches nothing")
	case *object:
		o = x
	default:
		return "", errAt(path, "a schema must be an object or a boolean")
	}
	for _, k := range unsupportedKeywords {
		if _, ok := o.get(k); ok {
			return "", errAt(path, "%q is not supported", k)
		}
	}
	if v, ok := o.get("uniqueItems"); ok && v != false {
		return "", errAt(path, `"uniqueItems" is not supported`)
	}
	if r, ok := o.get("$ref"); ok {
		ref, isStr := r.(string)
		if !isStr {
			return "", errAt(path, `"$ref" must be a string`)
		}
		rest := without(o, "$ref")
		if !constrains(rest) {
			return c.ref(ref, path)
		}
		target, err := c.resolve(ref, path)
		if err != nil {
			return "", err
		}
		m, err := c.merge(target, rest, path)
		if err != nil {
			return "", err
		}
		return c.visit(m, hint, path)
	}
	if v, ok := o.get("allOf"); ok {
		subs, isList := v.([]any)
		if !isList || len(subs) == 0 {
			return "", errAt(path, `"allOf" must be a non-empty array`)
		}
		m := without(o, "allOf")
		for i, sub := range subs {
			var err error
			if m, err = c.merge(m, sub, fmt.Sprintf("%s/allOf/%d", path, i)); err != nil {
				return "", err
			}
		}
		return c.visit(m, hint, path)
	}
	for _, kw := range []string{"anyOf", "oneOf"} {
		v, ok := o.get(kw)
		if !ok {
			continue
		}
		subs, isList := v.([]any)
		if !isList || len(subs) == 0 {
			return "", errAt(path, "%q must be a non-empty array", kw)
		}
		rest := without(o, kw)
		var alts []string
		for i, sub := range subs {
			p := fmt.Sprintf("%s/%s/%d", path, kw, i)
			var e string
			var err error
			if constrains(rest) {
				m, merr := c.merge(rest, sub, p)
				if merr != nil {
					return "", merr
				}
				e, err = c.visit(m, fmt.Sprintf("%s-%d", hint, i), p)
			} else {
				e, err = c.visit(sub, fmt.Sprintf("%s-%d", hint, i), p)
			}
			if err != nil {
				return "", err
			}
			alts = append(alts, e)
		}
		return c.rule(hint, strings.Join(alts, " | ")), nil
	}
	if v, ok := o.get("const"); ok {
		return c.literal(v), nil
	}
	if v, ok := o.get("enum"); ok {
		vals, isList := v.([]any)
		if !isList || len(vals) == 0 {
			return "", errAt(path, `"enum" must be a non-empty array`)
		}
		alts := make([]string, len(vals))
		for i, x := range vals {
			alts[i] = c.literal(x)
		}
		return c.rule(hint, strings.Join(alts, " | ")), nil
	}
	types, err := schemaTypes(o, path)
	if err != nil {
		return "", err
	}
	if n, _ := o.get("nullable"); n == true && !slices.Contains(types, "null") {
		types = append(types, "null")
	}
	var alts []string
	for _, t := range types {
		e, err := c.typed(o, t, hint, path)
		if err != nil {
			return "", err
		}
		alts = append(alts, e)
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return c.rule(hint, strings.Join(alts, " | ")), nil
}

func (c *conv) literal(v any) string {
	var b strings.Builder
	encodeCompact(&b, v)
	return gbnfLiteral(b.String())
}

// schemaTypes returns the schema's types, inferred from its keywords when
// "type" is absent ("any" for no constraint at all).
func schemaTypes(o *object, path string) ([]string, error) {
	known := []string{"object", "array", "string", "number", "integer", "boolean", "null"}
	if v, ok := o.get("type"); ok {
		var ts []string
		switch x := v.(type) {
		case string:
			ts = []string{x}
		case []any:
			for _, e := range x {
				s, isStr := e.(string)
				if !isStr {
					return nil, errAt(path, `"type" must be a string or an array of strings`)
				}
				ts = append(ts, s)
			}
		default:
			return nil, errAt(path, `"type" must be a string or an array of strings`)
		}
		if len(ts) == 0 {
			return nil, errAt(path, `"type" is an empty array`)
		}
		for _, t := range ts {
			if !slices.Contains(known, t) {
				return nil, errAt(path, "unknown type %q", t)
			}
		}
		return ts, nil
	}
	has := func(keys ...string) bool {
		for _, k := range keys {
			if _, ok := o.get(k); ok {
				return true
			}
		}
		return false
	}
	switch {
	case has("properties", "required", "additionalProperties"):
		return []string{"object"}, nil
	case has("items", "prefixItems", "minItems", "maxItems", "additionalItems"):
		return []string{"array"}, nil
	case has("pattern", "minLength", "maxLength", "format"):
		return []string{"string"}, nil
	case has("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
		return []string{"number"}, nil
	}
	return []string{"any"}, nil
}

func (c *conv) typed(o *object, t, hint, path string) (string, error) {
	switch t {
	case "any":
		return c.prim("value"), nil
	case "object":
		return c.object(o, hint, path)
	case "array":
		return c.array(o, hint, path)
	case "string":
		return c.str(o, hint, path)
	case "integer", "number":
		return c.number(o, t == "integer", hint, path)
	case "boolean":
		return c.prim("boolean"), nil
	case "null":
		return c.prim("null"), nil
	}
	return "", errAt(path, "unknown type %q", t)
}

// ---- $ref ----

func (c *conv) ref(ref, path string) (string, error) {
	key := strconv.Itoa(c.doc) + ref
	if n, ok := c.refRule[key]; ok {
		return n, nil
	}
	target, err := c.resolve(ref, path)
	if err != nil {
		return "", err
	}
	hint := "ref"
	if i := strings.LastIndexByte(ref, '/'); i >= 0 && i+1 < len(ref) {
		hint = "ref-" + ref[i+1:]
	}
	n := c.ruleName(hint)
	c.rules[n] = "" // reserved: the target may refer back to it
	c.order = append(c.order, n)
	c.refRule[key] = n
	e, err := c.visit(target, n, ref)
	if err != nil {
		return "", err
	}
	c.rules[n] = e
	return n, nil
}

// resolve follows a local reference ("#", "#/$defs/name", a JSON pointer).
func (c *conv) resolve(ref, path string) (any, error) {
	if !strings.HasPrefix(ref, "#") {
		return nil, errAt(path, "$ref %q: only references within the schema (starting with #) are supported", ref)
	}
	frag, err := url.PathUnescape(ref[1:])
	if err != nil {
		return nil, errAt(path, "$ref %q: %v", ref, err)
	}
	cur := c.root
	if frag == "" {
		return cur, nil
	}
	if !strings.HasPrefix(frag, "/") {
		return nil, errAt(path, "$ref %q: anchors are not supported (use a JSON pointer)", ref)
	}
	for _, tok := range strings.Split(frag[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch x := cur.(type) {
		case *object:
			v, ok := x.get(tok)
			if !ok {
				return nil, errAt(path, "$ref %q does not resolve (no %q)", ref, tok)
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return nil, errAt(path, "$ref %q does not resolve (no index %q)", ref, tok)
			}
			cur = x[i]
		default:
			return nil, errAt(path, "$ref %q does not resolve", ref)
		}
	}
	return cur, nil
}

// deref returns a schema with a top-level $ref replaced by its target
// merged with the other keywords.
func (c *conv) deref(s any, path string) (any, error) {
	for range 64 {
		o, ok := s.(*object)
		if !ok {
			return s, nil
		}
		r, ok := o.get("$ref")
		if !ok {
			return s, nil
		}
		ref, _ := r.(string)
		t, err := c.resolve(ref, path)
		if err != nil {
			return nil, err
		}
		rest := without(o, "$ref")
		if !constrains(rest) {
			s = t
			continue
		}
		to, ok := t.(*object)
		if !ok {
			if t == true {
				s = rest
				continue
			}
			return nil, errAt(path, "$ref %q: cannot combine false with other keywords", ref)
		}
		m := without(to)
		for _, k := range rest.keys {
			m.set(k, rest.vals[k])
		}
		if _, dup := to.get("$ref"); dup {
			return nil, errAt(path, "$ref chains with sibling keywords are not supported")
		}
		s = m
	}
	return nil, errAt(path, "$ref chain too long")
}

// merge intersects two schemas (allOf): keywords of one are added to the
// other; properties are merged, required lists joined, types intersected;
// the same keyword with different values in both is refused.
func (c *conv) merge(a, b any, path string) (*object, error) {
	a, err := c.deref(a, path)
	if err != nil {
		return nil, err
	}
	b, err = c.deref(b, path)
	if err != nil {
		return nil, err
	}
	ao, bo := toObject(a), toObject(b)
	if ao == nil || bo == nil {
		return nil, errAt(path, "allOf with the schema false matches nothing")
	}
	m := without(ao)
	for _, k := range bo.keys {
		bv := bo.vals[k]
		av, ok := m.get(k)
		if !ok || annotations[k] {
			if !ok {
				m.set(k, bv)
			}
			continue
		}
		switch k {
		case "properties":
			pa, pb := toObject(av), toObject(bv)
			if pa == nil || pb == nil {
				return nil, errAt(path, `"properties" must be an object`)
			}
			pm := without(pa)
			for _, name := range pb.keys {
				if x, both := pm.get(name); both {
					pm.set(name, &object{keys: []string{"allOf"}, vals: map[string]any{"allOf": []any{x, pb.vals[name]}}})
				} else {
					pm.set(name, pb.vals[name])
				}
			}
			m.set(k, pm)
		case "required":
			ra, _ := av.([]any)
			rb, _ := bv.([]any)
			out := slices.Clone(ra)
			for _, x := range rb {
				if !slices.Contains(out, x) {
					out = append(out, x)
				}
			}
			m.set(k, out)
		case "type":
			ta, err := schemaTypes(&object{keys: []string{"type"}, vals: map[string]any{"type": av}}, path)
			if err != nil {
				return nil, err
			}
			tb, err := schemaTypes(&object{keys: []string{"type"}, vals: map[string]any{"type": bv}}, path)
			if err != nil {
				return nil, err
			}
			var both []any
			for _, t := range ta {
				switch {
				case slices.Contains(tb, t):
					both = append(both, t)
				case t == "integer" && slices.Contains(tb, "number"):
					both = append(both, "integer")
				case t == "number" && slices.Contains(tb, "integer"):
					both = append(both, "integer")
				}
			}
			if len(both) == 0 {
				return nil, errAt(path, "allOf with types %v and %v matches nothing", ta, tb)
			}
			m.set(k, both)
		case "additionalProperties":
			switch {
			case av == false || bv == false:
				m.set(k, false)
			case av == true:
				m.set(k, bv)
			case bv == true:
			default:
				m.set(k, &object{keys: []string{"allOf"}, vals: map[string]any{"allOf": []any{av, bv}}})
			}
		default:
			var sa, sb strings.Builder
			encodeCompact(&sa, av)
			encodeCompact(&sb, bv)
			if sa.String() != sb.String() {
				return nil, errAt(path, "combining two different %q (allOf, or keywords next to $ref/anyOf/oneOf) is not supported", k)
			}
		}
	}
	return m, nil
}

func toObject(s any) *object {
	switch x := s.(type) {
	case *object:
		return x
	case bool:
		if x {
			return newObject()
		}
	}
	return nil
}

// ---- objects ----

func (c *conv) object(o *object, hint, path string) (string, error) {
	c.prim("space")
	var props *object
	if v, ok := o.get("properties"); ok {
		if props = toObject(v); props == nil || v == true {
			return "", errAt(path, `"properties" must be an object`)
		}
	}
	required := map[string]bool{}
	var reqOrder []string
	if v, ok := o.get("required"); ok {
		list, isList := v.([]any)
		if !isList {
			return "", errAt(path, `"required" must be an array of strings`)
		}
		for _, x := range list {
			s, isStr := x.(string)
			if !isStr {
				return "", errAt(path, `"required" must be an array of strings`)
			}
			if !required[s] {
				required[s] = true
				reqOrder = append(reqOrder, s)
			}
		}
	}
	kv := func(name string, schema any) (string, error) {
		v, err := c.visit(schema, hint+"-"+name, path+"/properties/"+name)
		if err != nil {
			return "", err
		}
		return c.rule(hint+"-"+name+"-kv", gbnfLiteral(jsonString(name)+":")+" space "+v), nil
	}
	var req, opt []string
	var known []string
	if props != nil {
		for _, name := range props.keys {
			known = append(known, name)
			r, err := kv(name, props.vals[name])
			if err != nil {
				return "", err
			}
			if required[name] {
				req = append(req, r)
			} else {
				opt = append(opt, r)
			}
		}
	}
	for _, name := range reqOrder {
		if props == nil || !slices.Contains(props.keys, name) {
			known = append(known, name)
			r, err := kv(name, true)
			if err != nil {
				return "", err
			}
			req = append(req, r)
		}
	}
	extra := ""
	if v, ok := o.get("additionalProperties"); ok && v != false {
		val, err := c.visit(v, hint+"-additional", path+"/additionalProperties")
		if err != nil {
			return "", err
		}
		key := c.notKeys(known, hint)
		extra = c.rule(hint+"-additional-kv", key+` ":" space `+val)
	}
	var body string
	switch {
	case len(req) > 0:
		body = strings.Join(req, ` "," space `)
		for _, r := range opt {
			body += ` ( "," space ` + r + ` )?`
		}
		if extra != "" {
			body += ` ( "," space ` + extra + ` )*`
		}
		return c.rule(hint, `"{" space `+body+` space "}"`), nil
	case len(opt) == 0 && extra == "":
		return c.rule(hint, `"{" space "}"`), nil
	}
	// No required properties: the first property present has no comma.
	// tail[i] is the optional properties from i on, each after a comma.
	tail := make([]string, len(opt)+1)
	if extra != "" {
		tail[len(opt)] = c.rule(hint+"-rest", `( "," space `+extra+` )*`)
	}
	for i := len(opt) - 1; i >= 1; i-- {
		b := `( "," space ` + opt[i] + ` )?`
		if tail[i+1] != "" {
			b += " " + tail[i+1]
		}
		tail[i] = c.rule(fmt.Sprintf("%s-tail-%d", hint, i), b)
	}
	var firsts []string
	for i, r := range opt {
		if tail[i+1] != "" {
			r += " " + tail[i+1]
		}
		firsts = append(firsts, r)
	}
	if extra != "" {
		firsts = append(firsts, extra+" "+tail[len(opt)])
	}
	return c.rule(hint, `"{" space ( ( `+strings.Join(firsts, " | ")+` ) space )? "}"`), nil
}

// notKeys returns an expression for a JSON string (quotes included) with
// no escapes whose text is none of keys.
func (c *conv) notKeys(keys []string, hint string) string {
	c.prim("plain-char")
	type tnode struct {
		kids  map[rune]*tnode
		order []rune
		end   bool
	}
	root := &tnode{kids: map[rune]*tnode{}}
	for _, k := range keys {
		n := root
		for _, r := range k {
			if r < 0x20 || r == '"' || r == '\\' || r == 0x7F {
				n = nil // not typable without escapes: nothing to exclude
				break
			}
			next := n.kids[r]
			if next == nil {
				next = &tnode{kids: map[rune]*tnode{}}
				n.kids[r] = next
				n.order = append(n.order, r)
			}
			n = next
		}
		if n != nil {
			n.end = true
		}
	}
	rest := c.rule(hint+"-key-rest", "plain-char*")
	var build func(n *tnode) string
	build = func(n *tnode) string {
		var alts []string
		if !n.end {
			alts = append(alts, `""`)
		}
		excl := []cpRange{{0, 0x1F}, {'"', '"'}, {'\\', '\\'}, {0x7F, 0x7F}, {0xD800, 0xDFFF}}
		slices.Sort(n.order)
		for _, r := range n.order {
			alts = append(alts, gbnfLiteral(string(r))+" "+build(n.kids[r]))
			excl = append(excl, cpRange{r, r})
		}
		if other := negateRanges(normRanges(excl)); len(other) > 0 {
			alts = append(alts, gbnfClass(other)+" "+rest)
		}
		return c.rule(hint+"-key", strings.Join(alts, " | "))
	}
	return `"\"" ` + build(root) + ` "\""`
}

// ---- arrays ----

func (c *conv) count(o *object, key, path string, def int) (int, error) {
	v, ok := o.get(key)
	if !ok {
		return def, nil
	}
	n, isNum := v.(json.Number)
	f, err := n.Float64()
	if !isNum || err != nil || f < 0 || f != math.Trunc(f) {
		return 0, errAt(path, "%q must be a non-negative integer", key)
	}
	if f > float64(c.maxRep) {
		return 0, errAt(path, "%q of %v is over the limit of %d", key, n, c.maxRep)
	}
	return int(f), nil
}

func rep(lo, hi int) string {
	switch {
	case hi < 0:
		return fmt.Sprintf("{%d,}", lo)
	case lo == hi:
		return fmt.Sprintf("{%d}", lo)
	}
	return fmt.Sprintf("{%d,%d}", lo, hi)
}

func (c *conv) array(o *object, hint, path string) (string, error) {
	c.prim("space")
	lo, err := c.count(o, "minItems", path, 0)
	if err != nil {
		return "", err
	}
	hi, err := c.count(o, "maxItems", path, -1)
	if err != nil {
		return "", err
	}
	if hi >= 0 && hi < lo {
		return "", errAt(path, "maxItems is below minItems")
	}
	var prefix []any
	var rest any = true
	if v, ok := o.get("prefixItems"); ok {
		prefix, _ = v.([]any)
		if it, ok := o.get("items"); ok {
			rest = it
		}
	} else if v, ok := o.get("items"); ok {
		if list, isList := v.([]any); isList {
			prefix = list
			if ai, ok := o.get("additionalItems"); ok {
				rest = ai
			}
		} else {
			rest = v
		}
	}
	restExpr := ""
	if rest != false {
		if restExpr, err = c.visit(rest, hint+"-item", path+"/items"); err != nil {
			return "", err
		}
	}
	if len(prefix) == 0 {
		if restExpr == "" || hi == 0 {
			if lo > 0 {
				return "", errAt(path, "minItems %d cannot be met: no items are allowed", lo)
			}
			return c.rule(hint, `"[" space "]"`), nil
		}
		more := rep(max(lo-1, 0), max(hi-1, -1))
		items := restExpr + ` ( "," space ` + restExpr + ` )` + more
		if lo == 0 {
			return c.rule(hint, `"[" space ( `+items+` space )? "]"`), nil
		}
		return c.rule(hint, `"[" space `+items+` space "]"`), nil
	}
	// A tuple: the prefix items (all of them, or the first maxItems), then
	// further items if allowed.
	n := len(prefix)
	if hi >= 0 && hi < n {
		n = hi
	}
	if n == 0 {
		return c.rule(hint, `"[" space "]"`), nil
	}
	parts := make([]string, n)
	for i := range n {
		if parts[i], err = c.visit(prefix[i], fmt.Sprintf("%s-%d", hint, i), fmt.Sprintf("%s/prefixItems/%d", path, i)); err != nil {
			return "", err
		}
	}
	body := strings.Join(parts, ` "," space `)
	if restExpr != "" && (hi < 0 || hi > n) {
		more := -1
		if hi >= 0 {
			more = hi - n
		}
		body += ` ( "," space ` + restExpr + ` )` + rep(max(lo-n, 0), more)
	} else if lo > n {
		return "", errAt(path, "minItems %d cannot be met with %d tuple items", lo, n)
	}
	return c.rule(hint, `"[" space `+body+` space "]"`), nil
}

// ---- strings ----

var formats = map[string]string{
	"date":      `[0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [1-2] [0-9] | "3" [0-1] )`,
	"time":      `( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,3} )? ( "Z" | [+\x2D] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )`,
	"date-time": `format-date "T" format-time`,
	"uuid":      `[0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{12}`,
}

func (c *conv) str(o *object, hint, path string) (string, error) {
	lo, err := c.count(o, "minLength", path, 0)
	if err != nil {
		return "", err
	}
	hi, err := c.count(o, "maxLength", path, -1)
	if err != nil {
		return "", err
	}
	if hi >= 0 && hi < lo {
		return "", errAt(path, "maxLength is below minLength")
	}
	_, hasLen := o.get("minLength")
	if _, ok := o.get("maxLength"); ok {
		hasLen = true
	}
	if v, ok := o.get("pattern"); ok {
		pat, isStr := v.(string)
		if !isStr {
			return "", errAt(path, `"pattern" must be a string`)
		}
		if hasLen {
			return "", errAt(path, `"pattern" together with "minLength"/"maxLength" is not supported (put the length in the pattern)`)
		}
		c.prim("char")
		e, err := regexGBNF(pat, "char", c.maxRep)
		if err != nil {
			return "", errAt(path, "%v", err)
		}
		return c.rule(hint, `"\"" `+e+` "\""`), nil
	}
	if v, ok := o.get("format"); ok {
		f, _ := v.(string)
		if _, known := formats[f]; known {
			if hasLen {
				return "", errAt(path, `"format" %q together with "minLength"/"maxLength" is not supported`, f)
			}
			name := c.formatRule(f)
			return c.rule(hint, `"\"" `+name+` "\""`), nil
		}
	}
	if !hasLen {
		return c.prim("string"), nil
	}
	c.prim("char")
	return c.rule(hint, `"\"" char`+rep(lo, hi)+` "\""`), nil
}

func (c *conv) formatRule(f string) string {
	name := "format-" + f
	if _, ok := c.rules[name]; !ok {
		c.rules[name] = formats[f]
		c.order = append(c.order, name)
		if f == "date-time" {
			c.formatRule("date")
			c.formatRule("time")
		}
	}
	return name
}

// ---- numbers ----

// maxInt is the largest magnitude generated integers reach (16 digits, as
// llama.cpp's integral part).
const maxInt = 9_999_999_999_999_999

type bound struct {
	v    int64
	excl bool
}

// bounds reads minimum/maximum and their exclusive forms. For integers,
// fractional bounds are rounded inwards; for numbers they must be integers.
func (c *conv) bounds(o *object, integer bool, path string) (lo, hi *bound, err error) {
	num := func(k string) (float64, bool, error) {
		v, ok := o.get(k)
		if !ok {
			return 0, false, nil
		}
		n, isNum := v.(json.Number)
		if !isNum {
			if _, isBool := v.(bool); isBool && (k == "exclusiveMinimum" || k == "exclusiveMaximum") {
				return 0, false, nil // draft 4 form, read below
			}
			return 0, false, errAt(path, "%q must be a number", k)
		}
		f, err := n.Float64()
		if err != nil || math.IsInf(f, 0) {
			return 0, false, errAt(path, "%q: %s is out of range", k, n)
		}
		return f, true, nil
	}
	mk := func(f float64, excl, isLo bool) (*bound, error) {
		if math.Abs(f) > maxInt {
			if (f < 0) == isLo {
				return nil, nil // beyond what is generated: no bound
			}
			return nil, errAt(path, "bound %v is beyond the 16-digit integers generated", f)
		}
		if f != math.Trunc(f) {
			if !integer {
				return nil, errAt(path, "fractional bounds on numbers (%v) are not supported; only integer bounds", f)
			}
			if isLo {
				f, excl = math.Ceil(f), false
			} else {
				f, excl = math.Floor(f), false
			}
		}
		b := &bound{int64(f), excl}
		if integer && excl {
			if isLo {
				b.v++
			} else {
				b.v--
			}
			b.excl = false
		}
		return b, nil
	}
	draft4 := func(k string) bool { v, _ := o.get(k); return v == true }
	pick := func(incl, excl string, isLo bool) (*bound, error) {
		fi, hasI, err := num(incl)
		if err != nil {
			return nil, err
		}
		fe, hasE, err := num(excl)
		if err != nil {
			return nil, err
		}
		switch {
		case hasI && draft4(excl):
			return mk(fi, true, isLo)
		case hasI && hasE:
			if isLo == (fe >= fi) {
				return mk(fe, true, isLo)
			}
			return mk(fi, false, isLo)
		case hasE:
			return mk(fe, true, isLo)
		case hasI:
			return mk(fi, false, isLo)
		}
		return nil, nil
	}
	if lo, err = pick("minimum", "exclusiveMinimum", true); err != nil {
		return nil, nil, err
	}
	if hi, err = pick("maximum", "exclusiveMaximum", false); err != nil {
		return nil, nil, err
	}
	return lo, hi, nil
}

func (c *conv) number(o *object, integer bool, hint, path string) (string, error) {
	lo, hi, err := c.bounds(o, integer, path)
	if err != nil {
		return "", err
	}
	if lo == nil && hi == nil {
		if integer {
			return c.prim("integer"), nil
		}
		return c.prim("number"), nil
	}
	var alts []string
	if integer {
		// Negative values: "-" then a magnitude in [max(1, -hi), -lo].
		if lo == nil || lo.v < 0 {
			mlo := int64(1)
			if hi != nil && hi.v < 0 {
				mlo = -hi.v
			}
			if lo == nil {
				alts = append(alts, `"-" `+atLeast(mlo))
			} else if mlo <= -lo.v {
				alts = append(alts, `"-" `+uintRange(mlo, -lo.v))
			}
		}
		if hi == nil || hi.v >= 0 {
			a := int64(0)
			if lo != nil && lo.v > 0 {
				a = lo.v
			}
			if hi == nil {
				alts = append(alts, atLeast(a))
			} else if a <= hi.v {
				alts = append(alts, uintRange(a, hi.v))
			}
		}
	} else {
		// Non-negative values v >= max(lo, 0).
		if hi == nil || hi.v > 0 || hi.v == 0 && !hi.excl {
			a := bound{0, false}
			if lo != nil && lo.v >= 0 {
				a = *lo
			}
			if e := decimalRange(a, hi); e != "" {
				alts = append(alts, e)
			}
		}
		// Negative values, as "-" and a magnitude y > 0.
		if lo == nil || lo.v < 0 {
			ya := bound{0, true}
			if hi != nil && hi.v < 0 {
				ya = bound{-hi.v, hi.excl}
			}
			var yb *bound
			if lo != nil {
				yb = &bound{-lo.v, lo.excl}
			}
			if e := decimalRange(ya, yb); e != "" {
				alts = append(alts, `"-" ( `+e+` )`)
			}
		}
	}
	if len(alts) == 0 {
		return "", errAt(path, "the bounds admit no value")
	}
	return c.rule(hint, strings.Join(alts, " | ")), nil
}

// Fraction parts of bounded decimals.
const (
	fracAny     = `( "." [0-9]{1,16} )?`
	fracZero    = `( "." "0"{1,16} )?`
	fracNonZero = `"." "0"{0,15} [1-9] [0-9]{0,15}`
)

// decimalRange is a GBNF expression for non-negative decimals I(.F) (no
// exponent) within the bounds a (lower, a.v >= 0) and b (upper, nil:
// none); "" when there are none. With f the fraction: v >= a iff I >= a;
// v > a iff I > a or I == a and f > 0; v <= b iff I < b or I == b and
// f == 0; v < b iff I < b.
func decimalRange(a bound, b *bound) string {
	var alts []string
	first := a.v
	if a.excl {
		first++
	}
	if b == nil {
		alts = append(alts, atLeast(first)+" "+fracAny)
		if a.excl {
			alts = append(alts, gbnfLiteral(strconv.FormatInt(a.v, 10))+" "+fracNonZero)
		}
		return strings.Join(alts, " | ")
	}
	if first <= b.v-1 {
		alts = append(alts, uintRange(first, b.v-1)+" "+fracAny)
	}
	if a.excl && a.v < b.v {
		alts = append(alts, gbnfLiteral(strconv.FormatInt(a.v, 10))+" "+fracNonZero)
	}
	if !b.excl && (b.v > a.v || b.v == a.v && !a.excl) {
		alts = append(alts, gbnfLiteral(strconv.FormatInt(b.v, 10))+" "+fracZero)
	}
	return strings.Join(alts, " | ")
}

// atLeast is a GBNF expression for the decimal integers (no sign, no
// leading zeros, at most 16 digits) >= lo.
func atLeast(lo int64) string {
	s := strconv.FormatInt(lo, 10)
	alts := []string{sameLength(s, strings.Repeat("9", len(s)))}
	if len(s) < 16 {
		alts = append(alts, fmt.Sprintf("[1-9] [0-9]{%d,15}", len(s)))
	}
	return "( " + strings.Join(alts, " | ") + " )"
}

// uintRange is a GBNF expression for the decimal integers (no sign, no
// leading zeros) in [lo, hi], 0 <= lo <= hi.
func uintRange(lo, hi int64) string {
	var alts []string
	ls, hs := strconv.FormatInt(lo, 10), strconv.FormatInt(hi, 10)
	for n := len(ls); n <= len(hs); n++ {
		a, b := ls, hs
		if n > len(ls) {
			a = "1" + strings.Repeat("0", n-1)
		}
		if n < len(hs) {
			b = strings.Repeat("9", n)
		}
		alts = append(alts, sameLength(a, b))
	}
	return "( " + strings.Join(alts, " | ") + " )"
}

// sameLength matches the digit strings of len(a) from a to b (a <= b,
// equal lengths; inner digits may be 0).
func sameLength(a, b string) string {
	if a == b {
		return gbnfLiteral(a)
	}
	n := len(a)
	if a[1:] == strings.Repeat("0", n-1) && b[1:] == strings.Repeat("9", n-1) {
		s := digits(a[0], b[0])
		if n > 1 {
			s += fmt.Sprintf(" [0-9]{%d}", n-1)
		}
		return s
	}
	if n == 1 {
		return digits(a[0], b[0])
	}
	if a[0] == b[0] {
		return gbnfLiteral(a[:1]) + " " + sameLength(a[1:], b[1:])
	}
	alts := []string{gbnfLiteral(a[:1]) + " " + sameLength(a[1:], strings.Repeat("9", n-1))}
	if a[0]+1 <= b[0]-1 {
		alts = append(alts, fmt.Sprintf("%s [0-9]{%d}", digits(a[0]+1, b[0]-1), n-1))
	}
	alts = append(alts, gbnfLiteral(b[:1])+" "+sameLength(strings.Repeat("0", n-1), b[1:]))
	return "( " + strings.Join(alts, " | ") + " )"
}

// digits is a class of the digits lo to hi.
func digits(lo, hi byte) string {
	if lo == hi {
		return fmt.Sprintf("[%c]", lo)
	}
	return fmt.Sprintf("[%c-%c]", lo, hi)
}

// Builder assembles one GBNF grammar from several JSON Schemas and rules
// written by hand (the tool-call formats use it). Rules are shared: equal
// bodies get one rule.
type Builder struct{ c *conv }

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder { return &Builder{c: newConv(nil, DefaultLimits.MaxRepetition)} }

// Schema adds the rules of a JSON Schema (its $refs resolve within it) and
// returns an expression matching the JSON values it accepts. hint names
// the rules.
func (b *Builder) Schema(schema []byte, hint string) (string, error) {
	root, err := decodeOrdered(schema)
	if err != nil {
		return "", &SchemaError{Msg: "not valid JSON: " + err.Error()}
	}
	b.c.doc++
	b.c.root = root
	return b.c.visit(root, hint, "#")
}

// Rule adds a rule with the given body (GBNF) and returns its name.
func (b *Builder) Rule(hint, body string) string { return b.c.rule(hint, body) }

// Prim returns the name of one of the JSON rules, adding it: "space" (the
// whitespace between JSON tokens), "value", "object", "array", "string",
// "number", "integer", "boolean", "null".
func (b *Builder) Prim(name string) string {
	if _, ok := jsonPrims[name]; !ok {
		panic("grammar: no JSON rule " + name)
	}
	return b.c.prim(name)
}

// TextUntil returns an expression matching any text that does not contain
// stop, followed by stop (the first occurrence ends it).
func (b *Builder) TextUntil(stop, hint string) string {
	s := []rune(stop)
	n := len(s)
	if n == 0 {
		return `""`
	}
	// fail[k]: the longest proper border of s[:k+1] (KMP).
	fail := make([]int, n)
	for i, k := 1, 0; i < n; i++ {
		for k > 0 && s[i] != s[k] {
			k = fail[k-1]
		}
		if s[i] == s[k] {
			k++
		}
		fail[i] = k
	}
	next := func(k int, c rune) int {
		for k > 0 && s[k] != c {
			k = fail[k-1]
		}
		if s[k] == c {
			return k + 1
		}
		return 0
	}
	var alpha []rune
	for _, r := range s {
		if !slices.Contains(alpha, r) {
			alpha = append(alpha, r)
		}
	}
	slices.Sort(alpha)
	var excl []cpRange
	for _, r := range alpha {
		excl = append(excl, cpRange{r, r})
	}
	other := gbnfClass(subtractRanges(negateRanges(normRanges(excl)), []cpRange{{0xD800, 0xDFFF}}))
	names := make([]string, n)
	for k := range n {
		names[k] = b.c.ruleName(fmt.Sprintf("%s-%d", hint, k))
		b.c.rules[names[k]] = ""
		b.c.order = append(b.c.order, names[k])
	}
	for k := range n {
		var alts []string
		for _, r := range alpha {
			if j := next(k, r); j == n {
				alts = append(alts, gbnfLiteral(string(r)))
			} else {
				alts = append(alts, gbnfLiteral(string(r))+" "+names[j])
			}
		}
		alts = append(alts, other+" "+names[0])
		b.c.rules[names[k]] = strings.Join(alts, " | ")
	}
	return names[0]
}

// GBNF returns the grammar, with root ::= rootExpr.
func (b *Builder) GBNF(rootExpr string) string {
	c := *b.c
	c.rules = maps.Clone(b.c.rules)
	c.rules["root"] = rootExpr
	c.order = append([]string{"root"}, b.c.order...)
	return c.text()
}

// Literal quotes text as a GBNF string literal.
func Literal(text string) string { return gbnfLiteral(text) }
