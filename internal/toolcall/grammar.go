package toolcall

import (
	"fmt"
	"strings"

	"github.com/kvserve/kvserve/internal/grammar"
)

// Think says how a forced call may be preceded by reasoning.
type Think int

const (
	// NoThink: the output starts with the call.
	NoThink Think = iota
	// ThinkOptional: the output may start with <think>...</think>.
	ThinkOptional
	// ThinkOpen: the prompt opened <think>; the output starts with
	// reasoning ended by </think>.
	ThinkOpen
)

// GrammarOptions choose what a forced call may be.
type GrammarOptions struct {
	Only     string // the one function to call ("": any of the tools)
	Parallel bool   // one or more calls (else exactly one)
	Think    Think
}

// anyObjectSchema is used for a function without parameters.
const anyObjectSchema = `{"type":"object","additionalProperties":true}`

// Grammar returns the GBNF grammar of output that calls tools in format f:
// the format's markers and JSON layout, each call's name one of the tools'
// (or o.Only) and its arguments valid against that tool's parameters
// schema. Unsupported schema constructs are errors naming the tool and the
// construct.
func Grammar(f Format, tools []Tool, o GrammarOptions) (string, error) {
	b := grammar.NewBuilder()
	sp := b.Prim("space")
	var calls []string
	for _, t := range tools {
		if o.Only != "" && t.Name != o.Only {
			continue
		}
		params := strings.TrimSpace(string(t.Parameters))
		if params == "" || params == "{}" || params == "null" {
			params = anyObjectSchema
		}
		args, err := b.Schema([]byte(params), "args-"+t.Name)
		if err != nil {
			return "", fmt.Errorf("tool %q: %w", t.Name, err)
		}
		name := grammar.Literal(jsonString(t.Name))
		var call string
		switch f {
		case Llama3:
			call = `"{" ` + sp + ` "\"name\":" ` + sp + ` ` + name + ` "," ` + sp + ` "\"parameters\":" ` + sp + ` ` + args + ` ` + sp + ` "}"`
		case Mistral:
			call = `"{" ` + sp + ` "\"name\":" ` + sp + ` ` + name + ` "," ` + sp + ` "\"arguments\":" ` + sp + ` ` + args +
				` ( "," ` + sp + ` "\"id\":" ` + sp + ` "\"" [a-zA-Z0-9]{9} "\"" )? ` + sp + ` "}"`
		case Harmony:
			call = `"<|channel|>commentary to=functions." ` + grammar.Literal(t.Name) + ` " <|constrain|>json<|message|>" ` + args
		default: // Generic, Hermes
			call = `"{" ` + sp + ` "\"name\":" ` + sp + ` ` + name + ` "," ` + sp + ` "\"arguments\":" ` + sp + ` ` + args + ` ` + sp + ` "}"`
		}
		calls = append(calls, b.Rule("call-"+t.Name, call))
	}
	if len(calls) == 0 {
		return "", fmt.Errorf("no tool named %q", o.Only)
	}
	one := b.Rule("call", strings.Join(calls, " | "))
	list := func(sep string) string {
		if o.Parallel {
			return one + ` ( ` + sep + ` ` + one + ` )*`
		}
		return one
	}
	var root string
	switch f {
	case Llama3:
		root = `"<|python_tag|>"? ` + list(`";" `+sp)
	case Hermes:
		block := b.Rule("tool-call", `"<tool_call>" `+sp+` `+one+` `+sp+` "</tool_call>"`)
		root = block
		if o.Parallel {
			root = block + ` ( ` + sp + ` ` + block + ` )*`
		}
	case Mistral:
		root = `"[TOOL_CALLS]" "[" ` + sp + ` ` + list(`"," `+sp) + ` ` + sp + ` "]"`
	case Harmony:
		analysis := `"<|channel|>analysis<|message|>" ` + b.TextUntil("<|end|>", "analysis") + ` "<|start|>assistant"`
		return b.GBNF(`( ` + analysis + ` )? ` + one), nil
	default:
		root = `"{" ` + sp + ` "\"tool_calls\":" ` + sp + ` "[" ` + sp + ` ` + list(`"," `+sp) + ` ` + sp + ` "]" ` + sp + ` "}"`
	}
	switch o.Think {
	case ThinkOptional:
		root = `( "<think>" ` + b.TextUntil("</think>", "think") + ` ` + sp + ` )? ` + root
	case ThinkOpen:
		root = b.TextUntil("</think>", "think") + ` ` + sp + ` ` + root
	}
	return b.GBNF(root), nil
}
