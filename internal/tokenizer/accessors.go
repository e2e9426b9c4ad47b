package tokenizer

// VocabSize returns the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.texts) }

// Model returns the tokenizer model name ("gpt2" or "llama").
func (t *Tokenizer) Model() string { return t.modelName }

// Pre returns the pre-tokenizer name as given.
func (t *Tokenizer) Pre() string { return t.preName }

// BOS returns the beginning-of-sequence token, or -1.
func (t *Tokenizer) BOS() int { return t.bos }

// EOS returns the end-of-sequence token, or -1.
func (t *Tokenizer) EOS() int { return t.eos }

// EOT returns the end-of-turn token (given, or found by its text as
// llama.cpp does), or -1.
func (t *Tokenizer) EOT() int { return t.eot }

// EOM returns the end-of-message token, or -1.
func (t *Tokenizer) EOM() int { return t.eom }

// UNK returns the unknown token, or -1.
func (t *Tokenizer) UNK() int { return t.unk }

// PAD returns the padding token, or -1.
func (t *Tokenizer) PAD() int { return t.pad }

// SEP returns the separator token, or -1.
func (t *Tokenizer) SEP() int { return t.sep }

// MaxTokenBytes bounds the input bytes a single token stands for: a text
// of B bytes encodes to at least ceil(B / MaxTokenBytes()) tokens (before
// BOS/EOS). It is 0 when the vocabulary allows no such bound (some input
// bytes encode to no token). Servers use it to refuse, before encoding, a
// text that cannot fit a context.
func (t *Tokenizer) MaxTokenBytes() int { return t.maxTokenBytes }

// AddBOS reports whether Encode with addSpecial prepends BOS.
func (t *Tokenizer) AddBOS() bool { return t.addBOS }

// AddEOS reports whether Encode with addSpecial appends EOS.
func (t *Tokenizer) AddEOS() bool { return t.addEOS }

// AddSpacePrefix reports whether SentencePiece text gets a space prefix.
func (t *Tokenizer) AddSpacePrefix() bool { return t.addSpacePrefix }

// IsEOG reports whether id ends generation: EOS, EOT, EOM, and the tokens
// llama.cpp recognizes as such by their text (<|im_end|>, <|eot_id|>, …).
func (t *Tokenizer) IsEOG(id int) bool { return validID(id, len(t.eog)) && t.eog[id] }

// TokenText returns a token's vocabulary text ("" for an id out of range).
func (t *Tokenizer) TokenText(id int) string {
	if !validID(id, len(t.texts)) {
		return ""
	}
	return t.texts[id]
}

// TokenType returns a token's type (a Type* constant; TypeUndefined for an
// id out of range). Tokens that llama.cpp treats as control tokens because
// of their text (<|im_end|>, …) report TypeControl.
func (t *Tokenizer) TokenType(id int) int32 {
	if !validID(id, len(t.types)) {
		return TypeUndefined
	}
	return t.types[id]
}

// TokenID returns the id of the token with exactly this vocabulary text.
func (t *Tokenizer) TokenID(text string) (int, bool) {
	id, ok := t.tokenID[text]
	return int(id), ok
}
