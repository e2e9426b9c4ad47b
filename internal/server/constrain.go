package server

import (
	"encoding/json"

	"github.com/kvserve/kvserve/internal/grammar"
)

// parseConstraint reads what constrains a completion's output, compiled:
// "grammar" (GBNF text), "json_schema" (a JSON Schema), or OpenAI's
// "response_format" ({"type": "text"}; {"type": "json_object"}, with an
// optional "schema"; {"type": "json_schema", "json_schema": {"name",
// "schema", "strict"}}, an absent schema meaning any JSON value). At most
// one may be given. A grammar or schema that does not compile is a 400
// naming the construct.
func parseConstraint(o *object) *grammar.Grammar {
	if o.err != nil {
		return nil
	}
	var g *grammar.Grammar
	n := 0
	use := func(field string, gg *grammar.Grammar, err error) {
		n++
		if err != nil {
			o.fail("%q: %v", field, err)
			return
		}
		g = gg
	}
	if o.has("grammar") {
		src := o.string("grammar", "")
		if o.err != nil {
			return nil
		}
		if src != "" {
			gg, err := grammar.Parse(src, grammar.Limits{})
			use("grammar", gg, err)
		}
	}
	if raw, ok := o.raw("json_schema"); ok {
		if k := kind(raw); k != "an object" && k != "a boolean" {
			o.fail(`"json_schema" must be a JSON Schema (an object), not %s`, k)
			return nil
		}
		gg, err := grammar.FromJSONSchema(raw, grammar.Limits{})
		use("json_schema", gg, err)
	}
	if rf := o.object("response_format"); rf != nil {
		switch t := rf.string("type", "text"); {
		case rf.err != nil:
			o.fail(`"response_format": %s`, rf.err.Message)
		case t == "text":
		case t == "json_object":
			if raw, ok := rf.raw("schema"); ok {
				gg, err := grammar.FromJSONSchema(raw, grammar.Limits{})
				use("response_format", gg, err)
			} else {
				gg, err := grammar.Parse(grammar.JSONObjectGBNF, grammar.Limits{})
				use("response_format", gg, err)
			}
		case t == "json_schema":
			js := rf.object("json_schema")
			if rf.err != nil {
				o.fail(`"response_format": %s`, rf.err.Message)
				return nil
			}
			schema := json.RawMessage(`{}`)
			if js != nil {
				js.string("name", "")
				js.bool("strict", false)
				if js.err != nil {
					o.fail(`"response_format"."json_schema": %s`, js.err.Message)
					return nil
				}
				if raw, ok := js.raw("schema"); ok {
					schema = raw
				}
			}
			gg, err := grammar.FromJSONSchema(schema, grammar.Limits{})
			use("response_format", gg, err)
		default:
			o.fail(`"response_format" of type %q is not supported ("text", "json_object" or "json_schema")`, t)
		}
	}
	if n > 1 && o.err == nil {
		o.fail(`give only one of "grammar", "json_schema" and "response_format"`)
	}
	if o.err != nil {
		return nil
	}
	return g
}
