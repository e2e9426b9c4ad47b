package synth

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/models"
)

// Token types (tokenizer.ggml.token_type), llama.cpp's llama_token_type.
const (
	tokNormal  int32 = 1
	tokUnknown int32 = 2
	tokControl int32 = 3
	tokUnused  int32 = 5
	tokByte    int32 = 6
)

// vocab is a built vocabulary: what goes under tokenizer.ggml.*.
type vocab struct {
	model, pre string // tokenizer.ggml.model / pre
	tokens     []string
	types      []int32
	scores     []float32 // SentencePiece only
	merges     []string  // BPE only

	bos, eos, eot, pad, unk int // -1: not written
	addBOS, addSpacePrefix  bool
	template                string

	// rank orders the ordinary tokens by how early the vocabulary learned
	// them (a proxy for frequency), for the output layer's prior; -1 for
	// tokens that get no prior (control, padding).
	rank []int32
}

// VocabSource locates the real vocabularies presets stand on.
type VocabSource struct {
	// Shared is the shared test assets directory (../shared), which holds
	// tokenizers/llama3/{encoder.json,vocab.bpe} and
	// models/kvtest-spm-5m-f16.gguf. Presets built on the kvtest
	// vocabulary do not need it.
	Shared string
}

// familySpecials are the special tokens a family adds to the base
// vocabulary (when not already there), in order.
func familySpecials(f Family, base VocabKind) []string {
	switch f {
	case FamilyLlama3:
		s := []string{"<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
			"<|finetune_right_pad_id|>", "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
			"<|eom_id|>", "<|eot_id|>", "<|python_tag|>"}
		for i := 3; i <= 247; i++ {
			s = append(s, fmt.Sprintf("<|reserved_special_token_%d|>", i))
		}
		return s // 256 tokens, ids 128000-128255 on the Llama-3 vocabulary
	case FamilyQwen:
		return []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>"}
	case FamilyGemma:
		return []string{"<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"}
	case FamilyPhi:
		return []string{"<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"}
	case FamilyMistral:
		return []string{"<unk>", "<s>", "</s>", "[INST]", "[/INST]"}
	case FamilyMistralSPM:
		return []string{"[INST]", "[/INST]"}
	case FamilyHarmony:
		return []string{"<|startoftext|>", "<|endoftext|>", "<|return|>", "<|constrain|>", "<|channel|>", "<|start|>",
			"<|end|>", "<|message|>", "<|call|>"}
	}
	return nil
}

// family special roles: BOS, EOS (the end of a turn, as instruct models
// set it), end of turn, padding.
func familyRoles(f Family) (bos, eos, eot, pad string, addBOS bool) {
	switch f {
	case FamilyLlama3:
		return "<|begin_of_text|>", "<|eot_id|>", "<|eot_id|>", "<|finetune_right_pad_id|>", true
	case FamilyQwen:
		return "<|endoftext|>", "<|im_end|>", "<|im_end|>", "<|endoftext|>", false
	case FamilyGemma:
		return "<bos>", "<end_of_turn>", "<end_of_turn>", "<pad>", true
	case FamilyPhi:
		return "<|endoftext|>", "<|end|>", "<|end|>", "<|endoftext|>", false
	case FamilyMistral, FamilyMistralSPM:
		return "<s>", "</s>", "", "", true
	case FamilyHarmony:
		// <|end|> closes every message, the analysis channel's too: only
		// <|return|> (and <|call|>) end the generation.
		return "<|startoftext|>", "<|return|>", "", "<|endoftext|>", false
	}
	return "", "", "", "", false
}

// Chat templates: each family's real template, shortened to plain turns
// (no tools).
var templates = map[Family]string{
	FamilyLlama3: "{% set loop_messages = messages %}{% for message in loop_messages %}" +
		"{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' %}" +
		"{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}" +
		"{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
	FamilyQwen: "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}" +
		"{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
	FamilyGemma: "{{ bos_token }}{% for message in messages %}" +
		"{% if message['role'] == 'assistant' %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}" +
		"{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}" +
		"{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}",
	FamilyPhi: "{% for message in messages %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}{% endfor %}" +
		"{% if add_generation_prompt %}{{ '<|assistant|>' }}{% else %}{{ eos_token }}{% endif %}",
	FamilyMistral: "{{ bos_token }}{% for message in messages %}" +
		"{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}" +
		"{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}",
}

func init() { templates[FamilyMistralSPM] = templates[FamilyMistral] }

// harmonyTemplate is gpt-oss's template shortened to plain turns: the
// system header with the reasoning effort (reasoning_effort, "medium"
// unless given), system messages as developer instructions, assistant
// turns on the final channel (their reasoning, on the analysis channel, is
// dropped from history as the real template does), and the generation
// prompt <|start|>assistant.
const harmonyTemplate = "{%- if reasoning_effort is defined and reasoning_effort %}{% set effort = reasoning_effort %}{% else %}{% set effort = 'medium' %}{% endif -%}" +
	"<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\nReasoning: {{ effort }}\n\n" +
	"# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>" +
	"{%- for message in messages -%}" +
	"{%- if message['role'] == 'system' or message['role'] == 'developer' -%}" +
	"<|start|>developer<|message|># Instructions\n\n{{ message['content'] }}<|end|>" +
	"{%- elif message['role'] == 'user' -%}<|start|>user<|message|>{{ message['content'] }}<|end|>" +
	"{%- elif message['role'] == 'assistant' -%}<|start|>assistant<|channel|>final<|message|>{{ message['content'] }}<|end|>" +
	"{%- endif -%}{%- endfor -%}" +
	"{%- if add_generation_prompt -%}<|start|>assistant{%- endif -%}"

func init() { templates[FamilyHarmony] = harmonyTemplate }

// buildVocab builds p's vocabulary: the base vocabulary, the family's
// special tokens, then "[PAD<id>]" tokens of type UNUSED up to p.NVocab
// (as llama.cpp's converter pads a vocabulary smaller than the embedding).
func buildVocab(p *Preset, src VocabSource) (*vocab, error) {
	base, err := loadBase(p.Vocab, src.Shared)
	if err != nil {
		return nil, fmt.Errorf("synth: preset %s: %w", p.Name, err)
	}
	v := base.clone()
	index := make(map[string]int, len(v.tokens))
	for i, t := range v.tokens {
		index[t] = i
	}
	for _, s := range familySpecials(p.Family, p.Vocab) {
		if _, ok := index[s]; ok {
			continue
		}
		index[s] = len(v.tokens)
		v.tokens = append(v.tokens, s)
		v.types = append(v.types, tokControl)
		v.rank = append(v.rank, -1)
		if v.scores != nil {
			v.scores = append(v.scores, 0)
		}
	}
	if len(v.tokens) > p.NVocab {
		return nil, fmt.Errorf("synth: preset %s: the vocabulary has %d tokens, more than the model's %d", p.Name, len(v.tokens), p.NVocab)
	}
	for i := len(v.tokens); i < p.NVocab; i++ {
		v.tokens = append(v.tokens, fmt.Sprintf("[PAD%d]", i))
		v.types = append(v.types, tokUnused)
		v.rank = append(v.rank, -1)
		if v.scores != nil {
			v.scores = append(v.scores, -1000)
		}
	}
	bos, eos, eot, pad, addBOS := familyRoles(p.Family)
	id := func(s string) int {
		if s == "" {
			return -1
		}
		if i, ok := index[s]; ok {
			return i
		}
		return -1
	}
	v.bos, v.eos, v.eot, v.pad, v.addBOS = id(bos), id(eos), id(eot), id(pad), addBOS
	if p.Vocab == VocabSPM {
		v.unk = id("<unk>")
	}
	if v.bos < 0 || v.eos < 0 {
		return nil, fmt.Errorf("synth: preset %s: BOS %q or EOS %q missing from the vocabulary", p.Name, bos, eos)
	}
	v.template = templates[p.Family]
	return v, nil
}

var (
	baseMu    sync.Mutex
	baseCache = map[string]*vocab{}
)

// loadBase loads a base vocabulary once per process.
func loadBase(kind VocabKind, shared string) (*vocab, error) {
	key := string(kind)
	if kind != VocabKvtest {
		key += "\x00" + shared
	}
	baseMu.Lock()
	defer baseMu.Unlock()
	if v, ok := baseCache[key]; ok {
		return v, nil
	}
	v := &vocab{bos: -1, eos: -1, eot: -1, pad: -1, unk: -1}
	switch kind {
	case VocabLlama3:
		if err := v.loadLlama3(shared); err != nil {
			return nil, err
		}
	case VocabKvtest:
		if err := v.loadGGUF(models.Default(), "embedded kvtest-27m"); err != nil {
			return nil, err
		}
		v.pre = "gpt-2"
	case VocabSPM:
		if shared == "" {
			return nil, fmt.Errorf("the SentencePiece vocabulary comes from the shared assets (models/kvtest-spm-5m-f16.gguf); give their directory (--shared, or $KVSERVE_SHARED)")
		}
		path := filepath.Join(shared, "models", "kvtest-spm-5m-f16.gguf")
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("SentencePiece vocabulary: %w", err)
		}
		if err := v.loadGGUF(b, path); err != nil {
			return nil, err
		}
		v.addSpacePrefix = true
	default:
		return nil, fmt.Errorf("unknown vocabulary %q", kind)
	}
	baseCache[key] = v
	return v, nil
}

// clone copies the slices a preset extends.
func (v *vocab) clone() *vocab {
	c := *v
	c.tokens = append([]string(nil), v.tokens...)
	c.types = append([]int32(nil), v.types...)
	c.rank = append([]int32(nil), v.rank...)
	if v.scores != nil {
		c.scores = append([]float32(nil), v.scores...)
	}
	return &c
}

// loadLlama3 reads the Llama-3 vocabulary: encoder.json (token → id,
// 128,000 tokens) and vocab.bpe (merges in rank order).
func (v *vocab) loadLlama3(shared string) error {
	if shared == "" {
		return fmt.Errorf("the Llama-3 vocabulary comes from the shared assets (tokenizers/llama3): give their directory (--shared, or $KVSERVE_SHARED)")
	}
	dir := filepath.Join(shared, "tokenizers", "llama3")
	b, err := os.ReadFile(filepath.Join(dir, "encoder.json"))
	if err != nil {
		return fmt.Errorf("Llama-3 vocabulary: %w", err)
	}
	var enc map[string]int
	if err := json.Unmarshal(b, &enc); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, "encoder.json"), err)
	}
	v.tokens = make([]string, len(enc))
	seen := make([]bool, len(enc))
	for t, id := range enc {
		if id < 0 || id >= len(enc) || seen[id] {
			return fmt.Errorf("encoder.json: token ids are not 0..%d", len(enc)-1)
		}
		seen[id] = true
		v.tokens[id] = t
	}
	b, err = os.ReadFile(filepath.Join(dir, "vocab.bpe"))
	if err != nil {
		return fmt.Errorf("Llama-3 merges: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#version") {
			continue
		}
		if strings.Count(line, " ") != 1 {
			return fmt.Errorf("vocab.bpe: malformed merge %q", line)
		}
		v.merges = append(v.merges, line)
	}
	v.model, v.pre = "gpt2", "llama-bpe"
	v.types = make([]int32, len(v.tokens))
	v.rank = make([]int32, len(v.tokens))
	for i := range v.types {
		v.types[i] = tokNormal
		v.rank[i] = bpeRank(i)
	}
	return nil
}

// bpeRank is a byte-level BPE token's rank for the prior: merged tokens in
// the order they were learned; the 256 single bytes ranked as moderately
// common.
func bpeRank(id int) int32 {
	if id < 256 {
		return 2000
	}
	return int32(id - 256)
}

// loadGGUF takes the tokenizer of a GGUF model (kvtest-27m's GPT-2 BPE
// or kvtest-spm-5m's SentencePiece vocabulary).
func (v *vocab) loadGGUF(b []byte, what string) error {
	f, err := gguf.Parse(b)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	const p = "tokenizer.ggml."
	v.model, _ = f.String(p + "model")
	v.pre, _ = f.String(p + "pre")
	toks, ok := f.Strings(p + "tokens")
	if !ok {
		return fmt.Errorf("%s has no tokens", what)
	}
	v.tokens = append([]string(nil), toks...)
	v.types = make([]int32, len(toks))
	for i := range v.types {
		v.types[i] = tokNormal
	}
	if a, ok := f.Array(p + "token_type"); ok {
		if t, ok := a.Values.([]int32); ok && len(t) == len(toks) {
			copy(v.types, t)
		}
	}
	switch v.model {
	case "gpt2":
		merges, ok := f.Strings(p + "merges")
		if !ok {
			return fmt.Errorf("%s has no merges", what)
		}
		v.merges = append([]string(nil), merges...)
	case "llama":
		a, ok := f.Array(p + "scores")
		s, ok2 := []float32(nil), false
		if ok {
			s, ok2 = a.Values.([]float32)
		}
		if !ok2 || len(s) != len(toks) {
			return fmt.Errorf("%s has no scores", what)
		}
		v.scores = append([]float32(nil), s...)
	default:
		return fmt.Errorf("%s: tokenizer model %q", what, v.model)
	}
	v.rank = make([]int32, len(toks))
	// Rank ordinary tokens by id (merge order for BPE, score order for
	// SentencePiece), bytes as moderately common.
	order := make([]int, 0, len(toks))
	for i, t := range v.types {
		switch t {
		case tokNormal:
			order = append(order, i)
		case tokByte:
			v.rank[i] = 2000
		default:
			v.rank[i] = -1
		}
	}
	if v.scores != nil {
		sort.SliceStable(order, func(a, b int) bool { return v.scores[order[a]] > v.scores[order[b]] })
	}
	for r, i := range order {
		v.rank[i] = int32(r)
		if v.model == "gpt2" {
			v.rank[i] = bpeRank(i)
		}
	}
	return nil
}

// kvs returns the tokenizer.ggml.* metadata and the chat template.
func (v *vocab) kvs() []gguf.KV {
	str := func(k, s string) gguf.KV { return gguf.KV{Key: k, Value: gguf.Value{Type: gguf.TypeString, V: s}} }
	u32 := func(k string, x int) gguf.KV {
		return gguf.KV{Key: k, Value: gguf.Value{Type: gguf.TypeUint32, V: uint32(x)}}
	}
	boolean := func(k string, b bool) gguf.KV { return gguf.KV{Key: k, Value: gguf.Value{Type: gguf.TypeBool, V: b}} }
	arr := func(k string, elem gguf.ValueType, vals any) gguf.KV {
		return gguf.KV{Key: k, Value: gguf.Value{Type: gguf.TypeArray, V: &gguf.Array{Elem: elem, Values: vals}}}
	}
	const p = "tokenizer.ggml."
	kv := []gguf.KV{str(p+"model", v.model), str(p+"pre", v.pre), arr(p+"tokens", gguf.TypeString, v.tokens)}
	if v.scores != nil {
		kv = append(kv, arr(p+"scores", gguf.TypeFloat32, v.scores))
	}
	kv = append(kv, arr(p+"token_type", gguf.TypeInt32, v.types))
	if v.merges != nil {
		kv = append(kv, arr(p+"merges", gguf.TypeString, v.merges))
	}
	kv = append(kv, u32(p+"bos_token_id", v.bos), u32(p+"eos_token_id", v.eos))
	if v.eot >= 0 {
		kv = append(kv, u32(p+"eot_token_id", v.eot))
	}
	if v.unk >= 0 {
		kv = append(kv, u32(p+"unknown_token_id", v.unk))
	}
	if v.pad >= 0 {
		kv = append(kv, u32(p+"padding_token_id", v.pad))
	}
	kv = append(kv, boolean(p+"add_bos_token", v.addBOS), boolean(p+"add_eos_token", false))
	if v.model == "llama" {
		kv = append(kv, boolean(p+"add_space_prefix", v.addSpacePrefix))
	}
	if v.template != "" {
		kv = append(kv, str("tokenizer.chat_template", v.template))
	}
	return kv
}
