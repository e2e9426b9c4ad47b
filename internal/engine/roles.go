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
// marker, generated (the answer) otherwise. It also finds where the
// reasoning began: the token where the open marker's text starts.
type roleTracker struct {
	m      *ReasoningMarkers
	in     bool   // inside the thinking block
	answer bool   // the block closed: the answer is being written
	start  int    // position of the token where the open marker starts (-1: not seen)
	tail   string // recent text, for a marker split across tokens
	at     []int  // position of the token each byte of tail came from
}

func newRoleTracker(m *ReasoningMarkers) roleTracker {
	if m == nil || m.Open == "" || m.Close == "" {
		return roleTracker{start: -1}
	}
	return roleTracker{m: m, in: m.InThink, start: -1}
}

// next returns the role of the generated token at position pos whose
// text is piece.
func (t *roleTracker) next(piece string, pos int) kvcache.Role {
	if t.m == nil || t.answer {
		return kvcache.RoleGenerated
	}
	t.tail += piece
	for range len(piece) {
		t.at = append(t.at, pos)
	}
	if !t.in {
		i := strings.Index(t.tail, t.m.Open)
		if i < 0 {
			t.keep(len(t.m.Open) - 1)
			return kvcache.RoleGenerated
		}
		t.in, t.start = true, t.at[i]
		t.tail, t.at = t.tail[i+len(t.m.Open):], t.at[i+len(t.m.Open):]
	}
	if strings.Contains(t.tail, t.m.Close) {
		t.in, t.answer, t.tail, t.at = false, true, "", nil
		return kvcache.RoleReasoning
	}
	t.keep(len(t.m.Close) - 1)
	return kvcache.RoleReasoning
}

// keep keeps the last n bytes of tail.
func (t *roleTracker) keep(n int) {
	if d := len(t.tail) - n; d > 0 {
		t.tail = t.tail[d:]
		t.at = append(t.at[:0], t.at[d:]...)
	}
}
