package tokenizer

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Token types, as stored in tokenizer.ggml.token_type (llama.cpp's
// llama_token_type).
const (
	TypeUndefined   = 0
	TypeNormal      = 1
	TypeUnknown     = 2
	TypeControl     = 3
	TypeUserDefined = 4
	TypeUnused      = 5
	TypeByte        = 6
)

// NoToken marks an absent special token in Vocab.
const NoToken = -1

// Token attributes, as llama.cpp derives them from the token types.
const (
	attrUnknown uint8 = 1 << iota
	attrUnused
	attrNormal
	attrControl
	attrUserDefined
	attrByte
)

func typeAttr(t int32) uint8 {
	switch t {
	case TypeNormal:
		return attrNormal
	case TypeUnknown:
		return attrUnknown
	case TypeControl:
		return attrControl
	case TypeUserDefined:
		return attrUserDefined
	case TypeUnused:
		return attrUnused
	case TypeByte:
		return attrByte
	}
	return 0
}

// Vocab is a tokenizer's vocabulary and settings: what a GGUF file holds
// under tokenizer.ggml.*. The special token fields hold -1 (NoToken) when
// the vocabulary has no such token.
type Vocab struct {
	Model string // "gpt2" (byte-level BPE) or "llama" (SentencePiece)
	Pre   string // BPE pre-tokenizer name (tokenizer.ggml.pre); ignored for "llama"

	Tokens []string  // token texts, by id
	Scores []float32 // nil, or one per token (SentencePiece merge priorities)
	Types  []int32   // nil (all normal), or one per token: Type* constants
	Merges []string  // BPE merges "left right", in rank order ("gpt2" only)

	BOS, EOS, EOT, EOM, UNK, PAD, SEP int
	// ExtraEOG lists further end-of-generation tokens (llama.cpp's FIM
	// pad/repo/file-separator tokens).
	ExtraEOG []int

	AddBOS, AddEOS bool
	AddSpacePrefix bool // SentencePiece: prefix the text with a space
}

type modelKind int

const (
	modelBPE modelKind = iota
	modelSPM
)

// Pre-tokenizer names accepted for the "gpt2" model, grouped by the
// llama.cpp pre-tokenizer type whose regexes they use.
var (
	preGPT2 = []string{"gpt-2", "phi-2", "mpt", "olmo", "exaone4", "gigachat", "a.x-4.0", "mellum", "trillion", "granite-docling"}
	// ignore_merges and add_bos by default
	preLlama3 = []string{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"}
	// the Llama-3 regex without ignore_merges
	preLlama3Merges = []string{"dbrx", "smaug-bpe"}
	preQwen2        = []string{"qwen2", "deepseek-r1-qwen", "megrez", "stablelm2", "kormo", "f2llmv2"}
)

type preInfo struct {
	kind         pretokKind
	ignoreMerges bool
	addBOS       bool // llama.cpp's default for add_bos_token
}

func lookupPre(name string) (preInfo, bool) {
	has := func(list []string) bool {
		for _, s := range list {
			if s == name {
				return true
			}
		}
		return false
	}
	switch {
	case name == "" || name == "default":
		return preInfo{kind: pretokDefault}, true
	case has(preGPT2):
		return preInfo{kind: pretokGPT2}, true
	case has(preLlama3):
		return preInfo{kind: pretokLlama3, ignoreMerges: true, addBOS: true}, true
	case has(preLlama3Merges):
		return preInfo{kind: pretokLlama3}, true
	case has(preQwen2):
		return preInfo{kind: pretokQwen2}, true
	}
	return preInfo{}, false
}

// SupportedModels returns the tokenizer model names New accepts.
func SupportedModels() []string { return []string{"gpt2", "llama"} }

// SupportedPre returns the pre-tokenizer names accepted with the "gpt2"
// model ("default" is also what an empty name means).
func SupportedPre() []string {
	var all []string
	all = append(all, "default")
	for _, l := range [][]string{preGPT2, preLlama3, preLlama3Merges, preQwen2} {
		all = append(all, l...)
	}
	return all
}

// Texts by which llama.cpp recognizes end-of-turn and other
// end-of-generation tokens (llama-vocab.cpp, load()).
var (
	eotTexts = []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
		"<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>"}
	eogTexts = []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>",
		"<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]",
		"[EOS]", "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
		"<｜end▁of▁sentence｜>", "[e~["}
	fimEOGTexts = []string{"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", // FIM pad
		"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", // FIM repo
		"<|file_sep|>"} // FIM file separator
	userDefinedTexts = []string{"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"}
)

// mergeVal is a BPE merge: its rank and the interned id of its result.
type mergeVal struct {
	rank   int32
	result int32
}

// Tokenizer encodes text to token ids and back. It is safe for concurrent
// use.
type Tokenizer struct {
	model     modelKind
	modelName string
	preName   string

	texts   []string
	scores  []float32
	types   []int32
	attrs   []uint8
	tokenID map[string]int32

	bos, eos, eot, eom, unk, pad, sep int
	addBOS, addEOS, addSpacePrefix    bool
	eog                               []bool

	specials []int32  // control, user-defined and unknown tokens, longest text first
	pieces   [][]byte // each token's text as rendered with special=true

	// byte-level BPE
	pretok       pretokKind
	ignoreMerges bool
	internID     map[string]int32 // merge operands and results, and the 256 byte symbols
	internTok    []int32          // interned id -> token id, or -1
	internText   []string         // interned id -> text
	merges       map[uint64]mergeVal
	byteSym      [256]int32 // interned id of each byte's symbol

	// tokens of recently seen words (BPE pre-tokens, SentencePiece words),
	// bounded in entries and in bytes
	cacheMu    sync.RWMutex
	cache      map[string][]int32
	cacheBytes int

	// maxTokenBytes bounds the input bytes one token stands for (0: no
	// such bound holds, some bytes may encode to no token)
	maxTokenBytes int

	// SentencePiece
	spmByte     [256]int32 // token for each byte in byte fallback, or -1
	spmSegments bool       // words can be encoded separately (spmSegmentable)
}

// Word cache bounds: entries, bytes (words, ids and a map entry's
// overhead), and the longest word cached (longer ones rarely repeat).
const (
	maxCacheEntries = 1 << 17
	maxCacheBytes   = 16 << 20
	maxCachedWord   = 256
	cacheEntryExtra = 64
	maxWordBytes    = 16 << 10 // BPE pre-token or SentencePiece word encoded at once
	maxSegmentBytes = 64 << 10 // whole-text SentencePiece segment encoded at once
)

func validID(id, n int) bool { return id >= 0 && id < n }

// New builds a tokenizer from a vocabulary. It checks the vocabulary for
// consistency and returns an error, never panics, on bad input.
func New(v Vocab) (*Tokenizer, error) {
	t := &Tokenizer{modelName: v.Model, preName: v.Pre}
	switch v.Model {
	case "gpt2":
		t.model = modelBPE
		info, ok := lookupPre(v.Pre)
		if !ok {
			return nil, fmt.Errorf("tokenizer: unknown pre-tokenizer %q for model gpt2 (supported: %s)",
				v.Pre, strings.Join(SupportedPre(), ", "))
		}
		t.pretok, t.ignoreMerges = info.kind, info.ignoreMerges
	case "llama":
		t.model = modelSPM
	default:
		return nil, fmt.Errorf("tokenizer: unknown tokenizer model %q (supported: %s)",
			v.Model, strings.Join(SupportedModels(), ", "))
	}
	n := len(v.Tokens)
	if n == 0 {
		return nil, errors.New("tokenizer: the vocabulary has no tokens")
	}
	if n > 1<<31-1 {
		return nil, fmt.Errorf("tokenizer: %d tokens is too many", n)
	}
	if v.Scores != nil && len(v.Scores) != n {
		return nil, fmt.Errorf("tokenizer: %d scores for %d tokens", len(v.Scores), n)
	}
	if v.Types != nil && len(v.Types) != n {
		return nil, fmt.Errorf("tokenizer: %d token types for %d tokens", len(v.Types), n)
	}
	for _, s := range []struct {
		name string
		id   int
	}{{"BOS", v.BOS}, {"EOS", v.EOS}, {"EOT", v.EOT}, {"EOM", v.EOM}, {"UNK", v.UNK}, {"PAD", v.PAD}, {"SEP", v.SEP}} {
		if s.id != NoToken && !validID(s.id, n) {
			return nil, fmt.Errorf("tokenizer: %s token id %d out of range [0, %d) (use -1 for none)", s.name, s.id, n)
		}
	}
	for _, id := range v.ExtraEOG {
		if !validID(id, n) {
			return nil, fmt.Errorf("tokenizer: end-of-generation token id %d out of range [0, %d)", id, n)
		}
	}
	if v.AddBOS && v.BOS == NoToken {
		return nil, errors.New("tokenizer: AddBOS is set but there is no BOS token")
	}
	if v.AddEOS && v.EOS == NoToken {
		return nil, errors.New("tokenizer: AddEOS is set but there is no EOS token")
	}
	if t.model == modelSPM && len(v.Merges) > 0 {
		return nil, errors.New("tokenizer: merges given for a SentencePiece (llama) vocabulary")
	}

	t.bos, t.eos, t.eot, t.eom, t.unk, t.pad, t.sep = v.BOS, v.EOS, v.EOT, v.EOM, v.UNK, v.PAD, v.SEP
	t.addBOS, t.addEOS, t.addSpacePrefix = v.AddBOS, v.AddEOS, v.AddSpacePrefix

	t.texts = make([]string, n)
	t.scores = make([]float32, n)
	t.types = make([]int32, n)
	t.attrs = make([]uint8, n)
	t.tokenID = make(map[string]int32, n)
	for i, s := range v.Tokens {
		if s == "" {
			// llama.cpp renames empty tokens so that they stay distinct.
			s = fmt.Sprintf("[EMPTY_%d]", i)
		}
		if j, dup := t.tokenID[s]; dup {
			return nil, fmt.Errorf("tokenizer: duplicate token %q has ids %d and %d", s, j, i)
		}
		t.tokenID[s] = int32(i)
		t.texts[i] = s
		t.types[i] = TypeNormal
		if v.Types != nil {
			t.types[i] = v.Types[i]
		}
		if v.Scores != nil {
			t.scores[i] = v.Scores[i]
		}
		t.attrs[i] = typeAttr(t.types[i])
	}

	t.setupSpecial(v.ExtraEOG)

	switch t.model {
	case modelBPE:
		t.setupBPE(v.Merges)
	case modelSPM:
		t.setupSPM()
	}
	t.setupPieces()
	t.setupMaxTokenBytes()
	return t, nil
}

// setupMaxTokenBytes finds the longest token text: no token stands for
// more input bytes than its text has (byte-level BPE texts spend one or
// two bytes per input byte; SentencePiece's U+2581 three per space), so a
// text of B bytes encodes to at least B / maxTokenBytes tokens — provided
// every input byte encodes to some token (a byte-level BPE vocabulary
// with every byte symbol; SentencePiece with byte or UNK fallback).
func (t *Tokenizer) setupMaxTokenBytes() {
	for b := 0; b < 256; b++ {
		switch t.model {
		case modelBPE:
			if _, ok := t.tokenID[byteToUnicode[b]]; !ok {
				return
			}
		case modelSPM:
			if t.spmByte[b] < 0 {
				return
			}
		}
	}
	for _, s := range t.texts {
		t.maxTokenBytes = max(t.maxTokenBytes, len(s))
	}
}

// cachePut remembers a word's tokens, within the cache's bounds: a full
// cache is emptied and starts again.
func (t *Tokenizer) cachePut(word string, ids []int32) {
	if len(word) > maxCachedWord {
		return
	}
	cost := len(word) + 4*len(ids) + cacheEntryExtra
	t.cacheMu.Lock()
	if len(t.cache) >= maxCacheEntries || t.cacheBytes+cost > maxCacheBytes {
		t.cache = make(map[string][]int32)
		t.cacheBytes = 0
	}
	if _, ok := t.cache[word]; !ok {
		t.cache[strings.Clone(word)] = ids
		t.cacheBytes += cost
	}
	t.cacheMu.Unlock()
}

// markControl gives a token the control attribute, as llama.cpp does for
// control-looking tokens of another type.
func (t *Tokenizer) markControl(id int) {
	if t.attrs[id]&attrControl == 0 {
		t.attrs[id] |= attrControl
		t.types[id] = TypeControl
	}
}

// setupSpecial follows llama.cpp's load(): end-of-turn and
// end-of-generation detection by token text, then the special-token list
// used to split text.
func (t *Tokenizer) setupSpecial(extraEOG []int) {
	n := len(t.texts)
	in := func(s string, list []string) bool {
		for _, x := range list {
			if s == x {
				return true
			}
		}
		return false
	}
	for id, s := range t.texts {
		if t.eot == NoToken && in(s, eotTexts) {
			t.eot = id
			t.markControl(id)
		}
		if t.eom == NoToken && s == "<|eom_id|>" {
			t.eom = id
			t.markControl(id)
		}
	}
	t.eog = make([]bool, n)
	for _, id := range extraEOG {
		t.eog[id] = true
	}
	for id, s := range t.texts {
		if in(s, eogTexts) {
			t.eog[id] = true
			t.markControl(id)
		} else if in(s, fimEOGTexts) {
			t.eog[id] = true
			t.markControl(id)
		}
	}
	for id, s := range t.texts {
		if in(s, userDefinedTexts) { // llama.cpp: gpt-oss tokens always rendered
			t.attrs[id] = attrUserDefined
			t.types[id] = TypeUserDefined
		}
	}
	// o200k_harmony / solar-open: <|end|> is not end-of-generation there.
	has := func(s string) (int, bool) {
		id, ok := t.tokenID[s]
		return int(id), ok && t.eog[id]
	}
	_, ret := has("<|return|>")
	_, call := has("<|call|>")
	_, calls := has("<|calls|>")
	_, flush := has("<|flush|>")
	if end, ok := has("<|end|>"); ok && ((ret && call) || ((call || calls) && flush)) {
		t.eog[end] = false
		t.attrs[end] = attrUserDefined
		t.types[end] = TypeUserDefined
	}
	// gemma4 / paddleocr: </s> is not end-of-generation when <|tool_response> exists.
	if _, ok := has("<|tool_response>"); ok {
		if s, ok := has("</s>"); ok {
			t.eog[s] = false
			t.attrs[s] = attrNormal
			t.types[s] = TypeNormal
		}
	}
	for _, id := range []int{t.eos, t.eot, t.eom} {
		if id != NoToken {
			t.eog[id] = true
		}
	}

	for id := range t.texts {
		if t.attrs[id]&(attrControl|attrUserDefined|attrUnknown) != 0 {
			t.specials = append(t.specials, int32(id))
		}
	}
	sort.SliceStable(t.specials, func(a, b int) bool {
		return len(t.texts[t.specials[a]]) > len(t.texts[t.specials[b]])
	})
}

func (t *Tokenizer) intern(s string) int32 {
	if id, ok := t.internID[s]; ok {
		return id
	}
	id := int32(len(t.internText))
	t.internID[s] = id
	t.internText = append(t.internText, s)
	tok := int32(-1)
	if x, ok := t.tokenID[s]; ok {
		tok = x
	}
	t.internTok = append(t.internTok, tok)
	return id
}

func (t *Tokenizer) setupBPE(merges []string) {
	t.internID = make(map[string]int32, 2*len(merges)+256)
	t.merges = make(map[uint64]mergeVal, len(merges))
	t.cache = make(map[string][]int32)
	for b := 0; b < 256; b++ {
		t.byteSym[b] = t.intern(byteToUnicode[b])
	}
	for rank, m := range merges {
		// llama.cpp splits at the first space after the first character.
		if len(m) < 2 {
			continue
		}
		k := strings.IndexByte(m[1:], ' ')
		if k < 0 {
			continue
		}
		left, right := m[:k+1], m[k+2:]
		if right == "" {
			continue
		}
		l, r := t.intern(left), t.intern(right)
		key := uint64(uint32(l))<<32 | uint64(uint32(r))
		if _, dup := t.merges[key]; dup {
			continue // the first rank wins
		}
		t.merges[key] = mergeVal{rank: int32(rank), result: t.intern(left + right)}
	}
}

func (t *Tokenizer) setupSPM() {
	t.cache = make(map[string][]int32)
	t.spmSegments = spmSegmentable(t.texts)
	const hex = "0123456789ABCDEF"
	for b := 0; b < 256; b++ {
		id := int32(-1)
		if x, ok := t.tokenID[string([]byte{'<', '0', 'x', hex[b>>4], hex[b&15], '>'})]; ok {
			id = x
		} else if x, ok := t.tokenID[string([]byte{byte(b)})]; ok {
			id = x
		} else if t.unk != NoToken {
			id = int32(t.unk)
		}
		t.spmByte[b] = id
	}
}

// parseByteToken reads a <0xXX> byte token's value.
func parseByteToken(s string) (byte, bool) {
	if len(s) != 6 || s[:3] != "<0x" || s[5] != '>' {
		return 0, false
	}
	var v byte
	for _, c := range []byte(s[3:5]) {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | (c - '0')
		case c >= 'A' && c <= 'F':
			v = v<<4 | (c - 'A' + 10)
		case c >= 'a' && c <= 'f':
			v = v<<4 | (c - 'a' + 10)
		default:
			return 0, false
		}
	}
	return v, true
}

// setupPieces renders every token as llama.cpp's token_to_piece does with
// special = true.
func (t *Tokenizer) setupPieces() {
	t.pieces = make([][]byte, len(t.texts))
	for id, s := range t.texts {
		a := t.attrs[id]
		var p []byte
		switch {
		case a&(attrUnknown|attrControl|attrUserDefined) != 0:
			p = []byte(s)
		case a&attrNormal != 0:
			if t.model == modelSPM {
				p = []byte(strings.ReplaceAll(s, "\u2581", " "))
			} else {
				p = decodeByteLevel(s)
			}
		case a&attrByte != 0:
			if b, ok := parseByteToken(s); ok {
				p = []byte{b}
			} else {
				p = []byte(s)
			}
		}
		t.pieces[id] = p
	}
}
