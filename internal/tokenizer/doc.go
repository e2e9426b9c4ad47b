// Package tokenizer owns text ↔ token id conversion for GGUF models, with
// the behaviour of llama.cpp's llama-vocab.cpp: the vocabulary and its
// settings read from tokenizer.ggml.* metadata (with llama.cpp's defaults),
// special-token splitting, encoding, per-token pieces, whole-sequence and
// streaming decoding, and the end-of-generation token set.
//
// Two tokenizer models are supported:
//
//   - "gpt2": byte-level BPE, with the pre-tokenizers "default", "gpt-2",
//     "llama-bpe" (Llama 3, which emits a pre-token that is itself a token
//     without merging, "ignore_merges") and "qwen2", and the other names
//     llama.cpp maps to those regexes (SupportedPre). The pre-tokenizer
//     regexes are implemented by hand-written matchers, proven equal to the
//     regexp2 evaluation of the regexes by the package's differential tests.
//     Merge results are cached per word.
//   - "llama": SentencePiece BPE as llama.cpp implements it (highest-score
//     bigram merging, byte fallback to <0xXX> tokens, space prefix).
//
// The package does not know about chat templates, sampling or the model.
package tokenizer
