package engine

import (
	"sync"

	"github.com/kvserve/kvserve/internal/grammar"
	"github.com/kvserve/kvserve/internal/tokenizer"
)

type grammarVocab struct {
	once sync.Once
	v    *grammar.Vocab
}

// GrammarVocab returns the model's vocabulary prepared for constrained
// decoding (every token's text in a trie, end-of-generation and control
// tokens marked), built on the first call and shared by every request.
// Token texts are the pieces with special tokens rendered, so a grammar
// can match a control token such as <|python_tag|> by its text when the
// request renders special tokens (control and unknown-type tokens are
// allowed only then: otherwise their text is not part of the output).
func (e *Engine) GrammarVocab() *grammar.Vocab {
	e.gvocab.once.Do(func() {
		t := e.Tok
		pieces := make([][]byte, t.VocabSize())
		for id := range pieces {
			pieces[id] = t.Piece(id, true)
		}
		e.gvocab.v = grammar.NewVocab(pieces, func(id int) grammar.TokenKind {
			switch {
			case t.IsEOG(id):
				return grammar.EOG
			case t.TokenType(id) == tokenizer.TypeControl, t.TokenType(id) == tokenizer.TypeUnknown:
				return grammar.Control
			}
			return grammar.Normal
		})
	})
	return e.gvocab.v
}
