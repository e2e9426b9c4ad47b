package tokenizer

import (
	"fmt"

	"github.com/kvserve/kvserve/internal/gguf"
)

// VocabFromGGUF reads the tokenizer.ggml.* metadata of a GGUF file into a
// Vocab, applying llama.cpp's defaults for whatever is absent:
//
//   - "llama" (SentencePiece): BOS 1, EOS 2, UNK 0, add BOS, add space prefix;
//   - "gpt2" (byte-level BPE): BOS = EOS = 11, no UNK, no space prefix, and
//     add BOS only for the Llama-3 family of pre-tokenizers.
//
// A default special token id outside the vocabulary means no such token;
// an explicit one is an error.
func VocabFromGGUF(f *gguf.File) (Vocab, error) {
	var v Vocab
	const p = "tokenizer.ggml."
	model, ok := f.String(p + "model")
	if !ok {
		return v, fmt.Errorf("tokenizer: GGUF has no string %smodel", p)
	}
	v.Model = model
	v.Pre, _ = f.String(p + "pre")
	v.BOS, v.EOS, v.EOT, v.EOM, v.UNK, v.PAD, v.SEP = NoToken, NoToken, NoToken, NoToken, NoToken, NoToken, NoToken
	switch model {
	case "llama":
		v.BOS, v.EOS, v.UNK = 1, 2, 0
		v.AddBOS, v.AddSpacePrefix = true, true
	case "gpt2":
		v.BOS, v.EOS = 11, 11
		info, ok := lookupPre(v.Pre)
		if !ok {
			_, err := New(v) // the error naming the pre-tokenizer
			return v, err
		}
		v.AddBOS = info.addBOS
		merges, ok := f.Strings(p + "merges")
		if !ok {
			if _, present := f.Get(p + "merges"); present {
				return v, fmt.Errorf("tokenizer: %smerges is not an array of strings", p)
			}
			return v, fmt.Errorf("tokenizer: GGUF has no %smerges (required by the gpt2 model)", p)
		}
		v.Merges = merges
	default:
		_, err := New(v) // the error naming the model
		return v, err
	}

	tokens, ok := f.Strings(p + "tokens")
	if !ok {
		if _, present := f.Get(p + "tokens"); present {
			return v, fmt.Errorf("tokenizer: %stokens is not an array of strings", p)
		}
		return v, fmt.Errorf("tokenizer: GGUF has no %stokens", p)
	}
	v.Tokens = tokens
	n := len(tokens)

	// llama.cpp accepts score and type arrays longer than the vocabulary
	// and uses their first n entries; shorter ones are an error.
	if _, present := f.Get(p + "scores"); present {
		a, _ := f.Array(p + "scores")
		if a == nil {
			return v, fmt.Errorf("tokenizer: %sscores is not an array", p)
		}
		switch x := a.Values.(type) {
		case []float32:
			if len(x) < n {
				return v, fmt.Errorf("tokenizer: %d scores for %d tokens", len(x), n)
			}
			v.Scores = x[:n:n]
		case []int32:
			if len(x) < n {
				return v, fmt.Errorf("tokenizer: %d scores for %d tokens", len(x), n)
			}
			v.Scores = make([]float32, n)
			for i := range v.Scores {
				v.Scores[i] = float32(x[i])
			}
		default:
			return v, fmt.Errorf("tokenizer: %sscores has element type %s, want float32 or int32", p, a.Elem)
		}
	}
	if _, present := f.Get(p + "token_type"); present {
		a, _ := f.Array(p + "token_type")
		x, ok := []int32(nil), false
		if a != nil {
			x, ok = a.Values.([]int32)
		}
		if !ok {
			return v, fmt.Errorf("tokenizer: %stoken_type is not an array of int32", p)
		}
		if len(x) < n {
			return v, fmt.Errorf("tokenizer: %d token types for %d tokens", len(x), n)
		}
		v.Types = x[:n:n]
	}

	for _, d := range []*int{&v.BOS, &v.EOS, &v.UNK} {
		if *d >= n {
			*d = NoToken
		}
	}
	for _, s := range []struct {
		key string
		id  *int
	}{
		{"bos_token_id", &v.BOS}, {"eos_token_id", &v.EOS}, {"eot_token_id", &v.EOT},
		{"eom_token_id", &v.EOM}, {"unknown_token_id", &v.UNK}, {"seperator_token_id", &v.SEP},
		{"padding_token_id", &v.PAD},
	} {
		id, err := specialID(f, p+s.key, n)
		if err != nil {
			return v, err
		}
		if id != nil {
			*s.id = *id
		}
	}
	for _, key := range []string{"fim_pad_token_id", "fim_rep_token_id", "fim_sep_token_id"} {
		id, err := specialID(f, p+key, n)
		if err != nil {
			return v, err
		}
		if id != nil && *id != NoToken {
			v.ExtraEOG = append(v.ExtraEOG, *id)
		}
	}

	for _, b := range []struct {
		key string
		val *bool
	}{{"add_bos_token", &v.AddBOS}, {"add_eos_token", &v.AddEOS}, {"add_space_prefix", &v.AddSpacePrefix}} {
		if _, present := f.Get(p + b.key); !present {
			continue
		}
		x, ok := f.Bool(p + b.key)
		if !ok {
			return v, fmt.Errorf("tokenizer: %s%s is not a bool", p, b.key)
		}
		*b.val = x
	}
	return v, nil
}

// specialID reads an optional special token id: nil if absent, NoToken if
// negative, an error if not an integer or not below n.
func specialID(f *gguf.File, key string, n int) (*int, error) {
	if _, present := f.Get(key); !present {
		return nil, nil
	}
	x, ok := f.Int(key)
	if !ok {
		return nil, fmt.Errorf("tokenizer: %s is not an integer", key)
	}
	id := NoToken
	if x >= 0 {
		if x >= int64(n) {
			return nil, fmt.Errorf("tokenizer: %s = %d is out of range for %d tokens", key, x, n)
		}
		id = int(x)
	}
	return &id, nil
}

// FromGGUF builds the tokenizer described by a GGUF file's metadata.
func FromGGUF(f *gguf.File) (*Tokenizer, error) {
	v, err := VocabFromGGUF(f)
	if err != nil {
		return nil, err
	}
	return New(v)
}
