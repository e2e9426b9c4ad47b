package cachepolicy

import "github.com/kvserve/kvserve/internal/kvcache"

// Stats count what a policy did.
type Stats struct {
	ByAge, ByLength, ByRole, ByBudget int64 // page conversions, by the rule that decided them
	BytesFreed                        int64
	DroppedTokens                     int64 // reasoning tokens dropped from slots' caches
	Evictions, EvictedTokens          int64 // middle pages evicted (Evict): times, tokens
}

// Add adds o's counters to st.
func (st *Stats) Add(o Stats) {
	st.ByAge += o.ByAge
	st.ByLength += o.ByLength
	st.ByRole += o.ByRole
	st.ByBudget += o.ByBudget
	st.BytesFreed += o.BytesFreed
	st.DroppedTokens += o.DroppedTokens
	st.Evictions += o.Evictions
	st.EvictedTokens += o.EvictedTokens
}

// Record counts one conversion a policy's plan made (by its reason).
func (st *Stats) Record(s kvcache.Step) {
	st.BytesFreed += int64(s.BytesBefore - s.BytesAfter)
	switch s.Reason {
	case "age":
		st.ByAge++
	case "length":
		st.ByLength++
	case "role":
		st.ByRole++
	default:
		st.ByBudget++
	}
}
