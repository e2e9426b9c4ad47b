package server

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/kvserve/kvserve/internal/chat"
	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/toolcall"
)

// chatMessage is one chat turn handed to the template.
type chatMessage struct {
	Role        string
	Content     string
	NullContent bool // "content": null (or absent) on an assistant turn
	Name        string
	ToolCalls   []msgToolCall // an assistant turn's tool calls
	ToolCallID  string        // a tool turn's call id
	Reasoning   string        // an assistant turn's reasoning_content
}

// msgToolCall is an assistant message's tool call (arguments as the JSON
// text OpenAI sends).
type msgToolCall struct {
	ID, Name, Arguments string
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
		cm[i] = chat.Message{Role: m.Role, Content: m.Content, NullContent: m.NullContent, Name: m.Name,
			ToolCallID: m.ToolCallID, ReasoningContent: m.Reasoning}
		for _, tc := range m.ToolCalls {
			// Templates render arguments with tojson: give them the object
			// when the text is one, else the text.
			var args any = tc.Arguments
			if a := strings.TrimSpace(tc.Arguments); strings.HasPrefix(a, "{") && json.Valid([]byte(a)) {
				args = json.RawMessage(a)
			}
			cm[i].ToolCalls = append(cm[i].ToolCalls, chat.ToolCall{ID: tc.ID, Type: "function",
				Function: chat.ToolCallFunction{Name: tc.Name, Arguments: args}})
		}
	}
	return j.t.Apply(cm, addGen, extra)
}

func (j jinjaTemplate) source() string { return j.t.Source() }

// loadChatTemplate builds the model's chat template (ChatML for a model
// without one, as llama-server does).
// A non-empty src replaces the model's template (bound to the model's
// BOS and EOS texts).
func loadChatTemplate(e *engine.Engine, src string) (chatTemplate, error) {
	t, err := chat.FromGGUF(e.File, e.Tok.TokenText)
	if err == nil && src != "" {
		t, err = chat.New(src, t.BOS(), t.EOS())
		if err != nil {
			err = fmt.Errorf("--chat-template: %w", err)
		}
	}
	if err != nil {
		return nil, err
	}
	return jinjaTemplate{t}, nil
}

// turnEnd returns the stop string that ends a chat answer where the
// template ends an assistant turn, or "" when none is needed. A model
// whose end-of-turn marker (ChatML's <|im_end|>, Llama 3's <|eot_id|>,
// ...) is one token stops on that token; one whose vocabulary lacks it
// writes the marker as several plain tokens and would never stop at the
// end of its turn, so the marker becomes a stop string. Harmony
// templates (gpt-oss) are left alone: their <|end|> also separates
// channels within one answer. Derived once per template source.
func (s *Server) turnEnd(t chatTemplate) string {
	src := t.source()
	if v, ok := s.turnEnds.Load(src); ok {
		return v.(string)
	}
	end := ""
	if toolcall.Detect(src).Format != toolcall.Harmony {
		end = templateTurnEnd(t)
	}
	if end != "" && len(s.eng.Tok.Encode(end, false, true)) == 1 {
		end = "" // one token: an end-of-generation token ends the turn
	}
	s.turnEnds.Store(src, end)
	return end
}

// templateTurnEnd renders a user turn and an assistant answer and returns
// what the template writes after the answer (its first line, trimmed):
// the end-of-turn marker.
func templateTurnEnd(t chatTemplate) string {
	const probe = "kvserve turn end probe"
	out, err := t.apply([]chatMessage{{Role: "user", Content: "Hello"}, {Role: "assistant", Content: probe}}, false, nil)
	if err != nil {
		return ""
	}
	i := strings.LastIndex(out, probe)
	if i < 0 {
		return ""
	}
	end := strings.TrimSpace(out[i+len(probe):])
	if j := strings.IndexByte(end, '\n'); j >= 0 {
		end = strings.TrimSpace(end[:j])
	}
	if len(end) > maxStopBytes {
		return ""
	}
	return end
}
