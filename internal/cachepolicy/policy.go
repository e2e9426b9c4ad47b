// Package cachepolicy owns kvserve's automatic cache precision: the policy
// (one type, with its JSON and command-line bindings), its rules, and the
// plan they make together. Rules ask for precision: by the age of a page's
// tokens (multistage: recent and first tokens stay at the hot type, older
// pages step down), by a sequence's length, by the role of a page's tokens
// (prompt, generated answer, reasoning), and under a memory budget (oldest
// pages of the least recently used sequences first). They compose so that
// the stricter wins: a page's target is the lowest precision any rule asks
// for.
//
// A policy only plans: Plan returns page conversions (kvcache.Step, the
// type a requantization plans too) and the types new pages are written in;
// the engine's converter carries them out. Pages only move down (to fewer
// bits), and a page is converted at most once per ladder step: a policy
// never re-quantizes history that is already at its target.
package cachepolicy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/tensor"
)

// LengthStep says: once a sequence holds At tokens, its cache is of type T.
type LengthStep struct {
	At int
	T  tensor.Type
}

// Policy is a set of rules; the zero value does nothing.
type Policy struct {
	// Ladders of types, highest precision first, for K and V. Tier 0 is
	// the type new tokens are written in.
	LadderK, LadderV []tensor.Type
	// Multistage by age (off when Hot == 0): pages holding any of the
	// last Hot tokens or of the first Sink tokens stay at tier 0; an older
	// page is at tier 1 + (age-Hot)/Warm (capped at the ladder's end),
	// age being that of its newest token; Warm 0 sends every page older
	// than Hot to the bottom of the ladder.
	Hot, Warm, Sink int
	// By context length (off when empty): steps for K and V, sorted by At.
	LengthK, LengthV []LengthStep
	// Budget caps the cache's bytes across all sequences (0: none).
	Budget int64
	// Evict, when on, is the budget's last step: middle pages of running
	// requests are dropped when nothing else makes room (needs a budget).
	Evict Evict
	// Roles are the rules by the role of a page's tokens, indexed by
	// kvcache.Role (prompt, generated, reasoning); a zero RoleRule is none.
	Roles [kvcache.NumRoles]RoleRule
	// ColdK, ColdV give layers their own coldest type, replacing the
	// bottom of the ladder for those layers (nil: the ladder's bottom for
	// every layer); see Ladder.
	ColdK, ColdV ColdLayers
}

// Enabled reports whether any rule is on.
func (p *Policy) Enabled() bool {
	return p.Hot > 0 || len(p.LengthK) > 0 || len(p.LengthV) > 0 || p.Budget > 0 || p.hasRoles()
}

func (p *Policy) hasRoles() bool {
	for _, r := range p.Roles {
		if r.On() {
			return true
		}
	}
	return false
}

// DefaultWarm is the default span of a middle tier (tokens of age), and
// the recommended multistage setting is Hot 64, Sink 64 with the default
// ladders: on kvtest-27m over a 4096-token context it averages 5.9 bits
// per cached value with a KL divergence below uniform q8_0's (8.5 bits);
// see BENCHMARKS.md.
const DefaultWarm = 448

// Auto is the --dynamic-cache (JSON "dynamic") value that selects
// AutoPolicy.
const Auto = "auto"

// AutoPolicy is the --dynamic-cache auto preset, chosen from the measured
// KL divergence against the f16 cache (docs/cache.md, BENCHMARKS.md;
// scripts/policy_cb.sh): the most recent 64 tokens and the first 64 at
// f16, the next 192 tokens of age at q8_0, older pages with K at q5_0 and
// V at cb4 (keys carry most of the error, so K stays a step above V).
// Over a 4096-token growing context (64-token pages, centred keys, which
// the commands turn on with it) it holds 5.69 bits per cached value at the
// end, key-channel means included, at KLD 9.0e-5 on kvtest-27m and 7.4e-5
// on kvtest-qwen3-14m: under llama.cpp q8_0's 1.1e-4 on both. The earlier
// preset (warm 448, cb4 for K and V: 5.385 bits) measured 9.2e-5 and 1.49e-4.
func AutoPolicy() Policy {
	return Policy{
		LadderK: []tensor.Type{tensor.F16, tensor.Q8_0, tensor.Q5_0},
		LadderV: []tensor.Type{tensor.F16, tensor.Q8_0, tensor.CB4},
		Hot:     64, Warm: 192, Sink: 64,
	}
}

// DefaultLadders keep K one step above V (keys are more sensitive to
// quantization): K f16 → q8_0 → q5_0, V f16 → q8_0 → q4_0.
func DefaultLadders() (k, v []tensor.Type) {
	return []tensor.Type{tensor.F16, tensor.Q8_0, tensor.Q5_0},
		[]tensor.Type{tensor.F16, tensor.Q8_0, tensor.Q4_0}
}

// Validate checks the policy against a model's layer count and head
// dimensions: ladders and length rules step down in precision (never back
// up), lengths increase, counts are not negative, per-layer cold types
// name existing layers. Its errors name the field.
func (p *Policy) Validate(layers, headDimK, headDimV int) error {
	for _, f := range []struct {
		name string
		v    int64
	}{{"hot", int64(p.Hot)}, {"warm", int64(p.Warm)}, {"sink", int64(p.Sink)}, {"budget", p.Budget}} {
		if f.v < 0 {
			return fmt.Errorf("%s must not be negative (got %d)", f.name, f.v)
		}
	}
	for _, side := range []string{"K", "V"} {
		l, dim := p.LadderK, headDimK
		if side == "V" {
			l, dim = p.LadderV, headDimV
		}
		for i, t := range l {
			if err := kvcache.CheckType(t, dim); err != nil {
				return fmt.Errorf("%s ladder: %w", side, err)
			}
			if i > 0 && t.BitsPerValue() > l[i-1].BitsPerValue() {
				return fmt.Errorf("%s ladder must go down in precision: %s after %s", side, t, l[i-1])
			}
		}
	}
	for _, side := range []string{"K", "V"} {
		steps, dim := p.LengthK, headDimK
		if side == "V" {
			steps, dim = p.LengthV, headDimV
		}
		for i, st := range steps {
			if err := kvcache.CheckType(st.T, dim); err != nil {
				return fmt.Errorf("dynamic cache %s: %w", side, err)
			}
			if st.At < 0 || (i > 0 && st.At <= steps[i-1].At) {
				return fmt.Errorf("dynamic cache %s: lengths must increase", side)
			}
			if i > 0 && st.T.BitsPerValue() > steps[i-1].T.BitsPerValue() {
				return fmt.Errorf("dynamic cache %s must go down in precision: %d:%s after %d:%s", side, st.At, st.T, steps[i-1].At, steps[i-1].T)
			}
		}
	}
	for role, r := range p.Roles {
		if err := r.validate(kvcache.Role(role), headDimK, headDimV); err != nil {
			return err
		}
	}
	if p.Hot > 0 && (len(p.LadderK) < 2 || len(p.LadderV) < 2) {
		return errors.New("a multistage policy (--cache-hot) needs ladders of at least two types")
	}
	if p.Budget > 0 && (len(p.LadderK) < 1 || len(p.LadderV) < 1) {
		return errors.New("a budget needs ladders to demote along")
	}
	return p.validateCold(layers, headDimK, headDimV)
}

func pageRef(seq, l int, v bool, i int) kvcache.PageRef {
	return kvcache.PageRef{Seq: seq, Layer: l, V: v, Index: i}
}

// nextDown returns the ladder's next type below t (by bits per value).
func nextDown(ladder []tensor.Type, t tensor.Type) (tensor.Type, bool) {
	for _, l := range ladder {
		if l.BitsPerValue() < t.BitsPerValue() {
			return l, true
		}
	}
	return 0, false
}

// MinBytes is the least a sequence of n tokens can take under the policy:
// every page at the bottom of its layer's ladder (per-layer cold types
// included; a side without a ladder at the layer's own type).
func (p *Policy) MinBytes(c *kvcache.Cache, n int) int64 {
	cfg := c.Config()
	pages := int64((n + cfg.PageTokens - 1) / cfg.PageTokens)
	return pages * p.BottomPageBytes(cfg)
}

// BottomPageBytes is what one page of every layer, K and V, costs with
// each layer at the bottom of its ladders (per-layer cold types included;
// a side without a ladder at the layer's configured type). Recurrent
// layers hold no pages and count nothing.
func (p *Policy) BottomPageBytes(cfg kvcache.Config) int64 {
	var b int64
	for l := 0; l < cfg.Layers; l++ {
		if l < len(cfg.Recurrent) && cfg.Recurrent[l] {
			continue
		}
		lk, lv := cfg.TypeK[l], cfg.TypeV[l]
		if t, ok := p.Bottom(l, false); ok {
			lk = t
		}
		if t, ok := p.Bottom(l, true); ok {
			lv = t
		}
		b += int64(cfg.PageBytes(lk, false) + cfg.PageBytes(lv, true))
	}
	return b
}

// TopPageBytes is what one page of every layer, K and V, costs at the
// ladders' tier 0 (the write types; recurrent layers count nothing).
func (p *Policy) TopPageBytes(cfg kvcache.Config) int64 {
	var b int64
	for l := 0; l < cfg.Layers; l++ {
		if l < len(cfg.Recurrent) && cfg.Recurrent[l] {
			continue
		}
		lk, lv := cfg.TypeK[l], cfg.TypeV[l]
		if lad := p.Ladder(l, false); len(lad) > 0 {
			lk = lad[0]
		}
		if lad := p.Ladder(l, true); len(lad) > 0 {
			lv = lad[0]
		}
		b += int64(cfg.PageBytes(lk, false) + cfg.PageBytes(lv, true))
	}
	return b
}

// PageBytes is what one new page (K and V, all layers) of seq costs at its
// current write types.
func PageBytes(c *kvcache.Cache, seq int) int64 {
	cfg := c.Config()
	var b int64
	for l := 0; l < cfg.Layers; l++ {
		k, v := c.WriteTypes(seq, l)
		b += int64(cfg.PageBytes(k, false) + cfg.PageBytes(v, true))
	}
	return b
}

// Tier returns t's position in ladder: its index when present, else the
// number of ladder types with more bits per value than t.
func Tier(ladder []tensor.Type, t tensor.Type) int {
	n := 0
	for i, l := range ladder {
		if l == t {
			return i
		}
		if l.BitsPerValue() > t.BitsPerValue() {
			n++
		}
	}
	return n
}

// ParseLadder parses "f16,q8_0,q4_0".
func ParseLadder(s string) ([]tensor.Type, error) {
	var out []tensor.Type
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		t, err := kvcache.ParseType(f)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty ladder %q", s)
	}
	return out, nil
}

// ParseLengths parses "0:f16,2048:q8_0,3072:q4_0": lengths in increasing
// order (steps given out of order are refused, not sorted); "" is no rule.
func ParseLengths(s string) ([]LengthStep, error) {
	var out []LengthStep
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		at, typ, ok := strings.Cut(f, ":")
		if !ok {
			return nil, fmt.Errorf("%q: want LENGTH:TYPE, e.g. 2048:q8_0", f)
		}
		n, err := strconv.Atoi(strings.TrimSpace(at))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q: length must be a non-negative integer", f)
		}
		t, err := kvcache.ParseType(strings.TrimSpace(typ))
		if err != nil {
			return nil, err
		}
		if k := len(out); k > 0 && n <= out[k-1].At {
			return nil, fmt.Errorf("%q: lengths must increase (%d after %d)", f, n, out[k-1].At)
		}
		out = append(out, LengthStep{At: n, T: t})
	}
	return out, nil
}

// ParseBytes parses sizes such as "48MiB", "1.5GiB", "500MB", "1048576".
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suf string
		mul float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}}
	mul := 1.0
	for _, u := range units {
		if strings.HasSuffix(strings.ToUpper(s), strings.ToUpper(u.suf)) {
			s, mul = strings.TrimSpace(s[:len(s)-len(u.suf)]), u.mul
			break
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad size %q (e.g. 48MiB, 2GiB, 1000000)", s)
	}
	return int64(v * mul), nil
}
