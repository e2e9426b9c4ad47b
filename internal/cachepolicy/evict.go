package cachepolicy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Evict is eviction as the last ladder step (opt-in, off by default):
// when the budget cannot be met even with every page of the running
// requests at the bottom of the ladders and the idle slots' caches
// dropped, a running request's middle pages are dropped StreamingLLM-style
// — the pages holding its first Sinks tokens and its last Window tokens
// are kept, the whole pages between them freed — and the kept tail moves
// down by the dropped span (keys re-roped, as a context shift does), so
// positions stay consistent. The engine carries it out (Span says what to
// drop); the fidelity cost is measured with kvserve perplexity --policy.
type Evict struct {
	Sinks, Window int // tokens; Window 0: off
}

// On reports whether eviction is enabled.
func (e Evict) On() bool { return e.Window > 0 }

// String is the setting as --cache-evict takes it ("" when off).
func (e Evict) String() string {
	if !e.On() {
		return ""
	}
	return fmt.Sprintf("sinks:%d,window:%d", e.Sinks, e.Window)
}

// ParseEvict reads "sinks:N,window:N" (either order; sinks defaults to 0;
// "" or "off": off).
func ParseEvict(s string) (Evict, error) {
	var e Evict
	s = strings.TrimSpace(s)
	if s == "" || s == "off" {
		return e, nil
	}
	seen := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(f), ":")
		k = strings.TrimSpace(k)
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if !ok || err != nil || n < 0 {
			return e, fmt.Errorf("%q: want sinks:N,window:N with N a non-negative number of tokens", f)
		}
		if seen[k] {
			return e, fmt.Errorf("%q given twice", k)
		}
		seen[k] = true
		switch k {
		case "sinks":
			e.Sinks = n
		case "window":
			e.Window = n
		default:
			return e, fmt.Errorf("%q: unknown field (want sinks and window)", k)
		}
	}
	if e.Window == 0 {
		return e, errors.New("window must be given and positive (the recent tokens kept), e.g. sinks:64,window:4096")
	}
	return e, nil
}

// Span returns what to evict from a sequence of n positions in pages of P
// tokens: the first keep positions stay (the sink pages: Sinks rounded up
// to whole pages), the discard positions after them go, the rest (at least
// Window positions, from a page boundary) stay. discard is a whole number
// of pages; 0 when the sequence holds no whole page between the two.
func (e Evict) Span(n, P int) (keep, discard int) {
	if !e.On() || P <= 0 {
		return 0, 0
	}
	keep = (e.Sinks + P - 1) / P * P
	tail := (n - e.Window) / P * P // the kept window starts at a page boundary
	if n-e.Window < 0 || tail <= keep {
		return keep, 0
	}
	return keep, tail - keep
}

// MaxTokens is the most positions a sequence holds under eviction right
// after a step that allocated one new page: the sink pages, the window's
// pages and the page being written.
func (e Evict) MaxTokens(P int) int {
	return (e.Sinks+P-1)/P*P + (e.Window+P-1)/P*P + 2*P
}
