package engine

import (
	"strings"

	"github.com/kvserve/kvserve/internal/kvcache"
)

// ReasoningMarkers say how a request's output marks reasoning: text
// between Open and Close is the model's thinking (the chat template's
// markers, e.g. <think> and </think>). InThink: the prompt already opened
// the block, so the output starts inside it.
type ReasoningMarkers struct {
	Open, Close string
	InThink     bool
}

// roleTracker follows a request's output token by token and says the
// cache role of each generated token: reasoning from the token that
// completes the open marker through the one that completes the close
// marker, generated (the answer) otherwise.
type roleTracker struct {
	m      *ReasoningMarkers
	in     bool   // inside the thinking block
	answer bool   // the block closed: the answer is being written
	tail   string // recent text, for a marker split across tokens
}

func newRoleTracker(m *ReasoningMarkers) roleTracker {
	if m == nil || m.Open == "" || m.Close == "" {
		return roleTracker{}
	}
	return roleTracker{m: m, in: m.InThink}
}

// next returns the role of a generated token whose text is piece.
func (t *roleTracker) next(piece string) kvcache.Role {
	if t.m == nil || t.answer {
		return kvcache.RoleGenerated
	}
	t.tail += piece
	if !t.in {
		i := strings.Index(t.tail, t.m.Open)
		if i < 0 {
			t.tail = keepTail(t.tail, len(t.m.Open)-1)
			return kvcache.RoleGenerated
		}
		t.in = true
		t.tail = t.tail[i+len(t.m.Open):]
	}
	if strings.Contains(t.tail, t.m.Close) {
		t.in, t.answer, t.tail = false, true, ""
		return kvcache.RoleReasoning
	}
	t.tail = keepTail(t.tail, len(t.m.Close)-1)
	return kvcache.RoleReasoning
}

func keepTail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
