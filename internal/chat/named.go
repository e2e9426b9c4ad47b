package chat

import "sort"

// Built-in named templates, for llama-server's --chat-template NAME: Jinja
// sources that render what llama.cpp's own formatter (llama-chat.cpp)
// renders for that name. Only the common names are built in; the others
// llama.cpp knows are listed in namedElsewhere so the error can say so.
var named = map[string]string{
	"chatml": DefaultSource,
	"llama3": `{%- for m in messages -%}
{{- '<|start_header_id|>' + m.role + '<|end_header_id|>\n\n' + (m.content | trim) + '<|eot_id|>' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}{%- endif -%}`,
	"phi3": `{%- for m in messages -%}
{{- '<|' + m.role + '|>\n' + m.content + '<|end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|assistant|>\n' -}}{%- endif -%}`,
	"phi4": `{%- for m in messages -%}
{{- '<|im_start|>' + m.role + '<|im_sep|>' + m.content + '<|im_end|>' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|im_start|>assistant<|im_sep|>' -}}{%- endif -%}`,
	"falcon3": `{%- for m in messages -%}
{{- '<|' + m.role + '|>\n' + m.content + '\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|assistant|>\n' -}}{%- endif -%}`,
	"zephyr": `{%- for m in messages -%}
{{- '<|' + m.role + '|>\n' + m.content + '<|endoftext|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|assistant|>\n' -}}{%- endif -%}`,
	"gemma": `{%- set ns = namespace(sys='') -%}
{%- for m in messages -%}
{%- if m.role == 'system' -%}
{%- set ns.sys = ns.sys + (m.content | trim) -%}
{%- else -%}
{%- set role = 'model' if m.role == 'assistant' else m.role -%}
{{- '<start_of_turn>' + role + '\n' -}}
{%- if ns.sys != '' and role != 'model' -%}{{- ns.sys + '\n\n' -}}{%- set ns.sys = '' -%}{%- endif -%}
{{- (m.content | trim) + '<end_of_turn>\n' -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<start_of_turn>model\n' -}}{%- endif -%}`,
	"mistral-v7":        mistralV7(" "),
	"mistral-v7-tekken": mistralV7(""),
	"deepseek3": `{%- for m in messages -%}
{%- if m.role == 'system' -%}{{- m.content + '\n\n' -}}
{%- elif m.role == 'user' -%}{{- '<｜User｜>' + m.content -}}
{%- elif m.role == 'assistant' -%}{{- '<｜Assistant｜>' + m.content + '<｜end▁of▁sentence｜>' -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<｜Assistant｜>' -}}{%- endif -%}`,
	"llama2":     llama2(false),
	"llama2-sys": llama2(true),
}

func mistralV7(sp string) string {
	return `{%- for m in messages -%}
{%- if m.role == 'system' -%}{{- '[SYSTEM_PROMPT]` + sp + `' + m.content + '[/SYSTEM_PROMPT]' -}}
{%- elif m.role == 'user' -%}{{- '[INST]` + sp + `' + m.content + '[/INST]' -}}
{%- else -%}{{- '` + sp + `' + m.content + '</s>' -}}
{%- endif -%}
{%- endfor -%}`
}

// llama2 is llama.cpp's "llama2" (sys=false: a system message is written
// as plain text) and "llama2-sys" (<<SYS>> blocks).
func llama2(sys bool) string {
	system := `{{- m.content + '\n' -}}`
	if sys {
		system = `{{- '<<SYS>>\n' + m.content + '\n<</SYS>>\n\n' -}}`
	}
	return `{%- set ns = namespace(inside=true) -%}
{{- '[INST] ' -}}
{%- for m in messages -%}
{%- if not ns.inside -%}{%- set ns.inside = true -%}{{- '[INST] ' -}}{%- endif -%}
{%- if m.role == 'system' -%}` + system + `
{%- elif m.role == 'user' -%}{{- m.content + ' [/INST]' -}}
{%- else -%}{{- m.content + '</s>' -}}{%- set ns.inside = false -%}
{%- endif -%}
{%- endfor -%}`
}

// namedElsewhere are llama.cpp's other built-in template names (which
// kvserve does not build in).
var namedElsewhere = []string{"llama2-sys-bos", "llama2-sys-strip", "mistral-v1", "mistral-v3", "mistral-v3-tekken",
	"monarch", "orion", "openchat", "vicuna", "vicuna-orca", "deepseek", "deepseek2", "command-r", "chatglm3",
	"chatglm4", "glmedge", "minicpm", "exaone3", "exaone4", "rwkv-world", "granite", "gigachat", "megrez", "yandex",
	"bailing", "bailing-think", "bailing2", "llama4", "smolvlm", "hunyuan-moe", "gpt-oss", "hunyuan-dense",
	"kimi-k2", "grok-2", "pangu-embedded"}

// Named returns the Jinja source of a built-in named template (llama.cpp's
// names: chatml, llama3, gemma, ...). known reports whether llama.cpp knows
// the name at all (so a caller can tell "not built in" from "not a name").
func Named(name string) (src string, ok, known bool) {
	if src, ok := named[name]; ok {
		return src, true, true
	}
	for _, n := range namedElsewhere {
		if n == name {
			return "", false, true
		}
	}
	return "", false, false
}

// NamedList returns the built-in template names, sorted.
func NamedList() []string {
	out := make([]string, 0, len(named))
	for n := range named {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
