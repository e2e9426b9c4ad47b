package grammar

import (
	"strings"
	"testing"
)

func TestJSONSchema(t *testing.T) {
	cases := []struct {
		name, schema string
		ok, bad      []string
	}{
		{"any", `{}`, []string{`1`, `"x"`, `{"a": [1, true, null]}`, `[]`, `-0.5e10`}, []string{``, `{`, `'x'`, `01`, `{"a" 1}`}},
		{"boolean true", `true`, []string{`{}`, `[1]`}, nil},
		{"object properties", `{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"]}`,
			[]string{`{"name":"Bob","age":42}`, `{ "name": "A\"b", "age": -3 }`, "{\n  \"name\": \"x\",\n  \"age\": 0\n}"},
			[]string{`{"age":42,"name":"Bob"}`, `{"name":"Bob"}`, `{"name":"Bob","age":4.5}`, `{"name":"Bob","age":42,"x":1}`, `{"name":"Bob","age":042}`}},
		{"optional properties", `{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"boolean"},"c":{"type":"null"}}}`,
			[]string{`{}`, `{"a":1}`, `{"b":true}`, `{"a":1,"c":null}`, `{"a":1,"b":false,"c":null}`, `{"c":null}`},
			[]string{`{"b":true,"a":1}`, `{,"a":1}`, `{"a":1,}`, `{"d":1}`}},
		{"additionalProperties", `{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"],"additionalProperties":{"type":"string"}}`,
			[]string{`{"id":1}`, `{"id":1,"x":"y"}`, `{"id":1,"x":"y","idx":"z"}`},
			[]string{`{"id":1,"x":2}`, `{"id":1,"id":"z"}`, `{"x":"y"}`}},
		{"additionalProperties true, no properties", `{"type":"object","additionalProperties":true}`,
			[]string{`{}`, `{"a":1,"b":[true]}`}, []string{`[]`}},
		{"array bounds", `{"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":3}`,
			[]string{`[1]`, `[1, 2, 3]`, `[ 1,2 ]`}, []string{`[]`, `[1,2,3,4]`, `[1,]`, `["a"]`}},
		{"tuple", `{"type":"array","prefixItems":[{"type":"string"},{"type":"boolean"}],"items":false}`,
			[]string{`["a",true]`}, []string{`["a"]`, `["a",true,1]`, `[true,"a"]`}},
		{"enum and const", `{"type":"object","properties":{"c":{"enum":["red","green",3,null]},"k":{"const":{"x":[1]}}},"required":["c","k"]}`,
			[]string{`{"c":"red","k":{"x":[1]}}`, `{"c":3,"k":{"x":[1]}}`, `{"c":null,"k":{"x":[1]}}`},
			[]string{`{"c":"blue","k":{"x":[1]}}`, `{"c":"red","k":{"x":[2]}}`}},
		{"anyOf", `{"anyOf":[{"type":"integer"},{"type":"string","maxLength":2}]}`,
			[]string{`7`, `"ab"`}, []string{`"abc"`, `true`}},
		{"oneOf with siblings", `{"type":"object","required":["kind"],"oneOf":[{"properties":{"kind":{"const":"a"}}},{"properties":{"kind":{"const":"b"},"n":{"type":"integer"}}}]}`,
			[]string{`{"kind":"a"}`, `{"kind":"b","n":2}`}, []string{`{"kind":"a","n":2}`, `{}`}},
		{"allOf", `{"allOf":[{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]},{"properties":{"b":{"type":"string"}},"required":["b"]}]}`,
			[]string{`{"a":1,"b":"x"}`}, []string{`{"a":1}`, `{"b":"x"}`}},
		{"type list and nullable", `{"type":"object","properties":{"a":{"type":["string","null"]},"b":{"type":"integer","nullable":true}},"required":["a","b"]}`,
			[]string{`{"a":null,"b":null}`, `{"a":"x","b":5}`}, []string{`{"a":1,"b":null}`}},
		{"string length", `{"type":"string","minLength":2,"maxLength":4}`,
			[]string{`"ab"`, `"abcd"`, `"é\n"`, `"\u00e9x"`}, []string{`"a"`, `"abcde"`, `"\ud800x"`}},
		{"pattern", `{"type":"string","pattern":"^[A-Z]{2}-\\d{3}(\\.[a-z]+)?$"}`,
			[]string{`"AB-123"`, `"XY-000.abc"`}, []string{`"AB-12"`, `"ab-123"`, `"AB-123."`, `"AB-1234"`}},
		{"unanchored pattern", `{"type":"string","pattern":"ab"}`, []string{`"ab"`, `"xxabyy"`}, []string{`"a b"`}},
		{"pattern with quotes, backslash and dot", `{"type":"string","pattern":"^a\"\\\\.$"}`,
			[]string{`"a\"\\x"`, `"a\"\\\""`, `"a\"\\\t"`}, []string{`"a\"\\\n"`, `"a"\\x"`}},
		{"format date-time and uuid", `{"type":"array","prefixItems":[{"type":"string","format":"date-time"},{"type":"string","format":"uuid"}],"items":false}`,
			[]string{`["2024-02-29T13:05:59Z","123e4567-e89b-12d3-a456-426614174000"]`, `["2024-12-31T23:59:59.123+01:00","00000000-0000-0000-0000-000000000000"]`},
			[]string{`["2024-13-01T00:00:00Z","123e4567-e89b-12d3-a456-426614174000"]`, `["2024-02-29 13:05:59Z","123e4567-e89b-12d3-a456-426614174000"]`}},
		{"integer bounds", `{"type":"integer","minimum":-12,"maximum":305}`,
			[]string{`-12`, `-1`, `0`, `9`, `10`, `99`, `100`, `299`, `305`}, []string{`-13`, `306`, `310`, `1000`, `-0`, `007`, `1.0`}},
		{"integer exclusive bounds", `{"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":10}`,
			[]string{`1`, `9`}, []string{`0`, `10`, `-1`}},
		{"integer lower bound only", `{"type":"integer","minimum":37}`,
			[]string{`37`, `99`, `100`, `123456`}, []string{`36`, `-40`, `4`}},
		{"integer upper bound only", `{"type":"integer","maximum":-5}`,
			[]string{`-5`, `-123`}, []string{`-4`, `0`, `5`}},
		{"number bounds", `{"type":"number","minimum":-2,"exclusiveMaximum":3}`,
			[]string{`-2`, `-2.0`, `-1.5`, `-0.25`, `0`, `2.999`, `1`}, []string{`-2.01`, `3`, `3.0`, `3.5`, `-3`, `1e2`}},
		{"number exclusive minimum", `{"type":"number","exclusiveMinimum":1,"maximum":1000}`,
			[]string{`1.001`, `2`, `999.5`, `1000`, `1000.00`}, []string{`1`, `1.000`, `0.5`, `1000.5`}},
		{"number draft 4 exclusive", `{"type":"number","minimum":0,"exclusiveMinimum":true}`,
			[]string{`0.1`, `5`}, []string{`0`, `0.0`, `-1`}},
		{"recursive $ref", `{"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["v","kids"]}},"$ref":"#/$defs/node"}`,
			[]string{`{"v":1,"kids":[]}`, `{"v":1,"kids":[{"v":2,"kids":[{"v":3,"kids":[]}]}]}`}, []string{`{"v":1,"kids":[{"v":2}]}`}},
		{"$ref with siblings", `{"definitions":{"base":{"type":"object","properties":{"a":{"type":"integer"}}}},"$ref":"#/definitions/base","required":["a"]}`,
			[]string{`{"a":1}`}, []string{`{}`}},
		{"nested objects", `{"type":"object","properties":{"p":{"type":"object","properties":{"q":{"type":"array","items":{"type":"object","properties":{"r":{"type":"boolean"}},"required":["r"]},"maxItems":2}},"required":["q"]}},"required":["p"]}`,
			[]string{`{"p":{"q":[]}}`, `{"p":{"q":[{"r":true},{"r":false}]}}`}, []string{`{"p":{"q":[{"r":true},{"r":false},{"r":true}]}}`, `{"p":{}}`}},
	}
	for _, c := range cases {
		g, err := FromJSONSchema([]byte(c.schema), Limits{})
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		for _, s := range c.ok {
			if !matches(t, g, s) {
				t.Errorf("%s: %s rejected\n%s", c.name, s, g.Source())
			}
		}
		for _, s := range c.bad {
			if matches(t, g, s) {
				t.Errorf("%s: %s accepted\n%s", c.name, s, g.Source())
			}
		}
	}
}

func TestJSONSchemaErrors(t *testing.T) {
	cases := []struct{ schema, want string }{
		{`{"type":"string","pattern":"(a)\\1"}`, `backreferences are not supported`},
		{`{"type":"string","pattern":"(?=a)"}`, `lookaround assertions are not supported`},
		{`{"type":"string","pattern":"\\bword"}`, `word boundaries`},
		{`{"type":"string","pattern":"a^b"}`, `anchor '^' is supported only at the start`},
		{`{"type":"string","pattern":"\\p{L}"}`, `Unicode property classes`},
		{`{"type":"string","pattern":"a","maxLength":3}`, `"pattern" together with "minLength"/"maxLength" is not supported`},
		{`{"not":{"type":"string"}}`, `"not" is not supported`},
		{`{"type":"object","properties":{"a":{"if":{}}}}`, `at #/properties/a: "if" is not supported`},
		{`{"type":"object","minProperties":1}`, `"minProperties" is not supported`},
		{`{"type":"array","uniqueItems":true}`, `"uniqueItems" is not supported`},
		{`{"type":"number","multipleOf":2}`, `"multipleOf" is not supported`},
		{`{"type":"number","minimum":0.5}`, `fractional bounds on numbers (0.5) are not supported`},
		{`{"$ref":"other.json#/x"}`, `only references within the schema`},
		{`{"$ref":"#/$defs/missing"}`, `does not resolve`},
		{`{"type":"strnig"}`, `unknown type "strnig"`},
		{`false`, `the schema false matches nothing`},
		{`{"type":"array","maxItems":5000}`, `"maxItems" of 5000 is over the limit of 2000`},
		{`{"type":"integer","minimum":5,"maximum":2}`, `the bounds admit no value`},
		{`{"allOf":[{"type":"string"},{"type":"integer"}]}`, `matches nothing`},
		{`{"allOf":[{"maxLength":2},{"maxLength":3}]}`, `combining two different "maxLength"`},
		{`{"type": 5}`, `"type" must be a string or an array of strings`},
		{`[1,2]`, `a schema must be an object or a boolean`},
		{`{"type":`, `not valid JSON`},
		{`{"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"}`, `matches nothing`},
	}
	for _, c := range cases {
		_, err := FromJSONSchema([]byte(c.schema), Limits{})
		if err == nil {
			t.Errorf("%s: no error, want %q", c.schema, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q, want it to contain %q", c.schema, err, c.want)
		}
	}
}

func TestJSONObjectGrammar(t *testing.T) {
	g := MustParse(JSONObjectGBNF)
	for _, s := range []string{`{}`, `{"a": [1, {"b": null}]}`} {
		if !matches(t, g, s) {
			t.Errorf("%s rejected", s)
		}
	}
	for _, s := range []string{`[]`, `"x"`, `{"a":1} `, ` {}`} {
		if matches(t, g, s) {
			t.Errorf("%s accepted", s)
		}
	}
	if !matches(t, MustParse(AnyJSONGBNF), `[1,"2",{"3":4.5e-7}]`) {
		t.Error("any JSON rejected an array")
	}
}

func TestBuilder(t *testing.T) {
	b := NewBuilder()
	a, err := b.Schema([]byte(`{"$defs":{"x":{"type":"integer"}},"type":"object","properties":{"v":{"$ref":"#/$defs/x"}},"required":["v"]}`), "a")
	if err != nil {
		t.Fatal(err)
	}
	c, err := b.Schema([]byte(`{"$defs":{"x":{"type":"boolean"}},"type":"array","items":{"$ref":"#/$defs/x"},"maxItems":2}`), "c")
	if err != nil {
		t.Fatal(err)
	}
	think := b.TextUntil("</think>", "think")
	src := b.GBNF(`"<think>" ` + think + ` ` + b.Prim("space") + ` ( ` + a + ` | ` + c + ` )`)
	g, err := Parse(src, Limits{})
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	for _, s := range []string{`<think></think>{"v":1}`, "<think>a < b </thin </think>\n[true,false]", `<think><</think>[]`, `<think>///think></think>[]`} {
		if !matches(t, g, s) {
			t.Errorf("%q rejected\n%s", s, src)
		}
	}
	for _, s := range []string{`<think></think>{"v":true}`, `<think></think>[1]`, `<think></think></think>[]`, `<think>[]`} {
		if matches(t, g, s) {
			t.Errorf("%q accepted", s)
		}
	}
}
