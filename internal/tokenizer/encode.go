package tokenizer

import (
	"strings"
)

// fragment is a piece of the input: raw text, or a special token (tok >= 0).
type fragment struct {
	text string
	tok  int32
}

// partition is llama.cpp's tokenizer_st_partition: for each special token,
// longest text first, every occurrence in the remaining raw-text fragments
// becomes that token. Control and unknown-type tokens are matched only with
// parseSpecial; user-defined tokens always are.
func (t *Tokenizer) partition(text string, parseSpecial bool) []fragment {
	frags := []fragment{{text: text, tok: -1}}
	for _, id := range t.specials {
		if !parseSpecial && t.attrs[id]&(attrControl|attrUnknown) != 0 {
			continue
		}
		st := t.texts[id]
		found := false
		for _, f := range frags {
			if f.tok < 0 && strings.Contains(f.text, st) {
				found = true
				break
			}
		}
		if !found {
			continue
		}
		next := make([]fragment, 0, len(frags)+8)
		for _, f := range frags {
			if f.tok >= 0 {
				next = append(next, f)
				continue
			}
			rest := f.text
			for {
				k := strings.Index(rest, st)
				if k < 0 {
					break
				}
				if k > 0 {
					next = append(next, fragment{text: rest[:k], tok: -1})
				}
				next = append(next, fragment{tok: id})
				rest = rest[k+len(st):]
			}
			if rest != "" {
				next = append(next, fragment{text: rest, tok: -1})
			}
		}
		frags = next
	}
	return frags
}

// encodeState is the working memory of one Encode call.
type encodeState struct {
	runes []rune
	cats  []uint8
	offs  []int32
	ends  []int32
	bpe   bpeScratch
	spm   spmScratch
	limit int // stop once past this many tokens (< 0: never)
}

// Encode tokenizes text as llama.cpp's llama_tokenize does. With
// addSpecial, BOS and EOS are added as the vocabulary asks (AddBOS,
// AddEOS). With parseSpecial, the texts of control and unknown-type tokens
// in the input become those tokens; user-defined tokens always do.
func (t *Tokenizer) Encode(text string, addSpecial, parseSpecial bool) []int {
	out, _ := t.encode(text, addSpecial, parseSpecial, -1)
	return out
}

// EncodeLimit is Encode for a text whose tokens must fit a limit: it
// stops as soon as the result would exceed maxTokens tokens and returns
// false. A text that cannot fit — more bytes than maxTokens ×
// MaxTokenBytes() — is refused before any work.
func (t *Tokenizer) EncodeLimit(text string, addSpecial, parseSpecial bool, maxTokens int) ([]int, bool) {
	if maxTokens < 0 {
		return nil, false
	}
	if L := t.maxTokenBytes; L > 0 && (len(text)+L-1)/L > maxTokens {
		return nil, false
	}
	return t.encode(text, addSpecial, parseSpecial, maxTokens)
}

// encode is Encode with a limit on the tokens (< 0: none).
func (t *Tokenizer) encode(text string, addSpecial, parseSpecial bool, limit int) ([]int, bool) {
	over := func(out []int) bool { return limit >= 0 && len(out) > limit }
	n := len(text)/3 + 2
	if limit >= 0 {
		n = min(n, limit+2)
	}
	out := make([]int, 0, n)
	if addSpecial && t.addBOS {
		out = append(out, t.bos)
	}
	var frags []fragment
	if text != "" {
		frags = t.partition(text, parseSpecial)
	}
	var st encodeState
	st.limit = limit
	prevSpecial := true // SentencePiece: a space prefix at the start and after special tokens
	for _, f := range frags {
		if f.tok >= 0 {
			out = append(out, int(f.tok))
			prevSpecial = true
		} else {
			switch t.model {
			case modelBPE:
				out = t.bpeText(f.text, &st, out)
			case modelSPM:
				s := f.text
				if t.addSpacePrefix && prevSpecial {
					s = " " + s
				}
				out = t.spmEncode(strings.ReplaceAll(s, " ", "\u2581"), &st, out)
				prevSpecial = false
			}
		}
		if over(out) {
			return nil, false
		}
	}
	if addSpecial && t.addEOS {
		out = append(out, t.eos)
	}
	if over(out) {
		return nil, false
	}
	return out, true
}

// bpeText tokenizes one raw-text fragment with byte-level BPE (stopping
// once past st.limit tokens, when that is set).
func (t *Tokenizer) bpeText(text string, st *encodeState, out []int) []int {
	text = llamaClean(text)
	st.runes, st.cats, st.offs = st.runes[:0], st.cats[:0], st.offs[:0]
	for i := 0; i < len(text); {
		r, n := decodeRune(text, i)
		st.runes = append(st.runes, r)
		st.cats = append(st.cats, runeCat(r))
		st.offs = append(st.offs, int32(i))
		i += n
	}
	st.offs = append(st.offs, int32(len(text)))
	st.ends = split(t.pretok, st.runes, st.cats, st.ends[:0])
	prev := int32(0)
	for _, e := range st.ends {
		out = t.bpeWord(text[st.offs[prev]:st.offs[e]], &st.bpe, out)
		prev = e
		if st.limit >= 0 && len(out) > st.limit {
			break
		}
	}
	return out
}

func pretokenize(kind pretokKind, text string) []string {
	text = llamaClean(text)
	var runes []rune
	var cats []uint8
	var offs []int
	for i := 0; i < len(text); {
		r, n := decodeRune(text, i)
		runes = append(runes, r)
		cats = append(cats, runeCat(r))
		offs = append(offs, i)
		i += n
	}
	offs = append(offs, len(text))
	var out []string
	prev := 0
	for _, e := range split(kind, runes, cats, nil) {
		out = append(out, text[offs[prev]:offs[e]])
		prev = int(e)
	}
	return out
}
