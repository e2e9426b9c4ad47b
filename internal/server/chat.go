package server

import (
	"github.com/kvserve/kvserve/internal/chat"
	"github.com/kvserve/kvserve/internal/engine"
)

// chatMessage is one chat turn handed to the template.
type chatMessage struct {
	Role        string
	Content     string
	NullContent bool // "content": null (or absent) on an assistant turn
	Name        string
}

// chatTemplate renders chat messages into a prompt.
type chatTemplate interface {
	apply(msgs []chatMessage, addGenerationPrompt bool, extra map[string]any) (string, error)
	source() string
}

// jinjaTemplate is the model's template, rendered by internal/chat.
type jinjaTemplate struct{ t *chat.Template }

func (j jinjaTemplate) apply(msgs []chatMessage, addGen bool, extra map[string]any) (string, error) {
	cm := make([]chat.Message, len(msgs))
	for i, m := range msgs {
		cm[i] = chat.Message{Role: m.Role, Content: m.Content, NullContent: m.NullContent, Name: m.Name}
	}
	return j.t.Apply(cm, addGen, extra)
}

func (j jinjaTemplate) source() string { return j.t.Source() }

// loadChatTemplate builds the model's chat template (ChatML for a model
// without one, as llama-server does).
func loadChatTemplate(e *engine.Engine) (chatTemplate, error) {
	t, err := chat.FromGGUF(e.File, e.Tok.TokenText)
	if err != nil {
		return nil, err
	}
	return jinjaTemplate{t}, nil
}
