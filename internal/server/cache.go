package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/tensor"
)

// cacheRoutes registers the cache endpoints: usage, live requantization
// and the automatic precision policy.
func (s *Server) cacheRoutes() {
	s.HandleFunc("GET /cache/usage", s.handleCacheUsage)
	s.HandleFunc("POST /cache/requantize", s.handleRequantize)
	s.HandleFunc("GET /cache/policy", s.handleGetPolicy)
	s.HandleFunc("POST /cache/policy", s.handleSetPolicy)
}

type requantizeRequest struct {
	TypeK  *string          `json:"type_k"`
	TypeV  *string          `json:"type_v"`
	Layers *json.RawMessage `json:"layers"` // "0-3,7" or [0,1,2]
	Slots  []int            `json:"slots"`
	Rotate *bool            `json:"rotate"`
	DryRun bool             `json:"dry_run"`
}

type layerReport struct {
	Layer        int    `json:"layer"`
	TypeKBefore  string `json:"type_k_before"`
	TypeKAfter   string `json:"type_k_after"`
	TypeVBefore  string `json:"type_v_before"`
	TypeVAfter   string `json:"type_v_after"`
	BytesKBefore int64  `json:"bytes_k_before"`
	BytesKAfter  int64  `json:"bytes_k_after"`
	BytesVBefore int64  `json:"bytes_v_before"`
	BytesVAfter  int64  `json:"bytes_v_after"`
}

// decodeRequantize reads the body of POST /cache/requantize into the
// conversion's target, checked against the model and the slots.
func (s *Server) decodeRequantize(body []byte) (kvcache.Target, bool, *apiError) {
	var t kvcache.Target
	var req requantizeRequest
	if aerr := decodeJSON(body, &req, false); aerr != nil {
		return t, false, aerr
	}
	if req.TypeK == nil && req.TypeV == nil {
		return t, false, badRequest("give type_k and/or type_v")
	}
	m := s.eng.Model
	for _, side := range []struct {
		name string
		in   *string
		dim  int
		out  **tensor.Type
	}{{"type_k", req.TypeK, m.HeadDim, &t.K}, {"type_v", req.TypeV, m.HeadDimV, &t.V}} {
		if side.in == nil {
			continue
		}
		typ, err := kvcache.ParseType(*side.in)
		if err == nil {
			err = kvcache.CheckType(typ, side.dim)
		}
		if err != nil {
			return t, false, badRequest("%s: %v", side.name, err)
		}
		*side.out = &typ
	}
	if req.Layers != nil {
		layers, err := parseLayerList(*req.Layers, m.NLayer)
		if err != nil {
			return t, false, badRequest("layers: %v", err)
		}
		t.Layers = layers
	}
	if req.Slots != nil {
		if len(req.Slots) == 0 {
			return t, false, badRequest("slots: empty list (omit it for all slots)")
		}
		for _, id := range req.Slots {
			if id < 0 || id >= s.o.Slots {
				return t, false, badRequest("slots: slot %d out of range (0-%d)", id, s.o.Slots-1)
			}
		}
		t.Seqs = req.Slots
	}
	t.Rotate = req.Rotate
	return t, req.DryRun, nil
}

// handleRequantize serves POST /cache/requantize: convert the cache's
// pages in scope to new types in place, without re-evaluating any token.
func (s *Server) handleRequantize(w http.ResponseWriter, r *http.Request) {
	body, aerr := readBody(r)
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	t, dryRun, aerr := s.decodeRequantize(body)
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	rep, err := s.sched.Requantize(t, dryRun)
	switch {
	case errors.Is(err, engine.ErrRequantizeBusy):
		WriteError(w, errorf(http.StatusConflict, TypeInvalidRequest, "%v", err))
		return
	case errors.Is(err, engine.ErrClosed):
		WriteError(w, errorf(http.StatusServiceUnavailable, TypeUnavailable, "%v", err))
		return
	case err != nil:
		WriteError(w, badRequest("%v", err))
		return
	}
	layers := make([]layerReport, len(rep.Layers))
	for i, l := range rep.Layers {
		layers[i] = layerReport{l.Layer, l.TypeKBefore, l.TypeKAfter, l.TypeVBefore, l.TypeVAfter,
			l.BytesKBefore, l.BytesKAfter, l.BytesVBefore, l.BytesVAfter}
	}
	s.log.Info("cache requantize", "dry_run", rep.DryRun, "pages", rep.PagesConverted,
		"bytes_before", rep.BytesBefore, "bytes_after", rep.BytesAfter, "elapsed", rep.Elapsed)
	out := map[string]any{
		"dry_run":          rep.DryRun,
		"layers":           layers,
		"bytes_before":     rep.BytesBefore,
		"bytes_after":      rep.BytesAfter,
		"bytes_freed":      rep.BytesFreed,
		"tokens_converted": rep.TokensConverted,
		"pages_converted":  rep.PagesConverted,
		"elapsed_ms":       float64(rep.Elapsed.Microseconds()) / 1000,
	}
	if rep.StateBytes > 0 {
		out["recurrent_state"] = map[string]any{"type": "f32", "bytes": rep.StateBytes,
			"note": "requantize acts on the attention layers' KV pages; the recurrent layers' state stays f32"}
	}
	if rep.Draft {
		out["draft"] = map[string]any{
			"bytes_before": rep.DraftBytesBefore, "bytes_after": rep.DraftBytesAfter,
			"bytes_freed":     rep.DraftBytesBefore - rep.DraftBytesAfter,
			"pages_converted": rep.DraftPagesConverted, "tokens_converted": rep.DraftTokensConv,
		}
	}
	WriteJSON(w, http.StatusOK, out)
}

// parseLayerList accepts "0-3,7" or [0,1,2].
func parseLayerList(raw json.RawMessage, nLayer int) ([]int, error) {
	var str string
	if err := json.Unmarshal(raw, &str); err == nil {
		return engine.ParseLayers(str, nLayer)
	}
	var list []int
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf(`want a string such as "0-3,7" or an array of layer numbers`)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("empty list (omit it for all layers)")
	}
	for _, l := range list {
		if l < 0 || l >= nLayer {
			return nil, fmt.Errorf("layer %d out of range (0-%d)", l, nLayer-1)
		}
	}
	return list, nil
}

type sideUsage struct {
	Bytes        int64            `json:"bytes"`
	BytesByType  map[string]int64 `json:"bytes_by_type"`
	PagesByType  map[string]int   `json:"pages_by_type"`
	PagesByTier  map[string]int   `json:"pages_by_tier,omitempty"`
	RotatedPages int              `json:"rotated_pages"`
	WriteType    string           `json:"write_type"`
}

type layerUsage struct {
	Layer  int       `json:"layer"`
	Kind   string    `json:"kind"`             // "full", "window" or "recurrent"
	Window int       `json:"window,omitempty"` // sliding window in tokens
	Tokens int       `json:"tokens"`
	Pages  int       `json:"pages"`
	K      sideUsage `json:"k"`
	V      sideUsage `json:"v"`
}

type pageUsage struct {
	Layer   int    `json:"layer"`
	Side    string `json:"kv"`
	Index   int    `json:"index"`
	Type    string `json:"type"`
	Rotated bool   `json:"rotated"`
	Tier    *int   `json:"tier,omitempty"`
	Role    string `json:"role"` // prompt, generated, reasoning, or mixed
	Tokens  int    `json:"tokens"`
	Bytes   int    `json:"bytes"`
	Slots   int    `json:"slots"` // slots holding the page (more than 1: a shared prefix page)
}

type slotUsage struct {
	ID     int   `json:"id"`
	Tokens int   `json:"tokens"`
	Pages  int   `json:"pages"`
	Bytes  int64 `json:"bytes"`
	BytesK int64 `json:"bytes_k"`
	BytesV int64 `json:"bytes_v"`
	// BytesShared: of Bytes, those of pages other slots hold too.
	BytesShared int64 `json:"bytes_shared"`
	// QueryStatBytes: the slot's query statistics (--cache-key-encode
	// query), not in Bytes.
	QueryStatBytes int64 `json:"query_stat_bytes"`
	// By the role of the tokens (a page holding several roles: "mixed").
	BytesByRole  map[string]int64 `json:"bytes_by_role"`
	TokensByRole map[string]int   `json:"tokens_by_role"`
	Layers       []layerUsage     `json:"layers"`
	List         []pageUsage      `json:"pages_list,omitempty"`
}

type estimate struct {
	Type        string  `json:"type"`
	BitsPer     float64 `json:"bits_per_value"`
	BytesNow    int64   `json:"bytes_current_contents"`
	BytesFull   int64   `json:"bytes_full_context"`
	SavedVsNow  int64   `json:"bytes_saved_vs_now"`
	FitsHeadDim bool    `json:"fits"`
}

// handleCacheUsage serves GET /cache/usage (?pages=1 adds every page).
func (s *Server) handleCacheUsage(w http.ResponseWriter, r *http.Request) {
	withPages := r.URL.Query().Get("pages") != ""
	pol := s.sched.Policy()
	out := map[string]any{}
	err := s.sched.Do(func(c *kvcache.Cache) error {
		cacheUsage(out, c, pol, withPages)
		if s.disk != nil {
			st := s.disk.Stats()
			out["disk"] = map[string]any{"entries": st.Entries, "bytes": st.Bytes, "budget_bytes": st.Budget,
				"spills": st.Spills, "hits": st.Hits, "misses": st.Misses, "skipped": st.Skipped,
				"evicted": st.Evicted, "failed": st.Failed}
			if st.RAMBudget > 0 {
				out["ram"] = map[string]any{"entries": st.RAMEntries, "bytes": st.RAMBytes, "budget_bytes": st.RAMBudget,
					"hits": st.RAMHits, "prefetched": st.Prefetched}
			}
		}
		if dc := s.sched.DraftCache(); dc != nil {
			d := map[string]any{"model": filepath.Base(s.sched.DraftEngine().Path)}
			cacheUsage(d, dc, pol, withPages)
			out["draft"] = d
		}
		return nil
	})
	if err != nil {
		WriteError(w, errorf(http.StatusServiceUnavailable, TypeUnavailable, "%v", err))
		return
	}
	out["policy"] = policyJSON(pol, s.sched.Stats())
	WriteJSON(w, http.StatusOK, out)
}

// cacheUsage fills out with what GET /cache/usage reports of one cache:
// bytes, capacity, pages by type, role, tier, slot and layer, and what
// every cache type would take.
func cacheUsage(out map[string]any, c *kvcache.Cache, pol *cachepolicy.Policy, withPages bool) {
	cfg := c.Config()
	total := c.Bytes()
	out["total_bytes"] = total
	out["capacity_bytes"] = c.Capacity()
	out["page_tokens"] = cfg.PageTokens
	out["rotate"] = cfg.Rotate
	byType := map[string]int64{}
	for t, b := range c.BytesByType() {
		byType[t.String()] = b
	}
	out["bytes_by_type"] = byType
	// Pages shared by several slots (prefix sharing) are held, and
	// counted in total_bytes, once; each slot's figures include them.
	sb, sp := c.SharedBytes()
	out["shared_bytes"], out["shared_pages"] = sb, sp
	var slots []slotUsage
	byRole := map[string]int64{}
	for seq := 0; seq < cfg.Seqs; seq++ {
		su := slotUsage{ID: seq, Tokens: c.Len(seq), Layers: make([]layerUsage, cfg.Layers),
			BytesByRole: map[string]int64{}, TokensByRole: map[string]int{}}
		for _, r := range c.Roles(seq) {
			su.TokensByRole[r.String()]++
		}
		for l := range su.Layers {
			wk, wv := c.WriteTypes(seq, l)
			a := c.Attn(l)
			kind := a.Kind()
			if c.IsRecurrent(l) {
				kind = "recurrent" // no pages: its state is under recurrent_state
			}
			su.Layers[l] = layerUsage{Layer: l, Kind: kind, Window: a.Window, Tokens: c.Len(seq),
				K: sideUsage{BytesByType: map[string]int64{}, PagesByType: map[string]int{}, WriteType: wk.String()},
				V: sideUsage{BytesByType: map[string]int64{}, PagesByType: map[string]int{}, WriteType: wv.String()}}
		}
		for _, p := range c.Pages(seq) {
			lu := &su.Layers[p.Layer]
			side, ladder, name := &lu.K, []tensor.Type(nil), "k"
			if pol != nil { // the layer's own ladder: its cold type ends it
				ladder = pol.Ladder(p.Layer, p.V)
			}
			if p.V {
				side, name = &lu.V, "v"
			} else {
				lu.Pages++
				su.Pages++
			}
			side.Bytes += int64(p.Bytes)
			side.BytesByType[p.Type.String()] += int64(p.Bytes)
			su.BytesByRole[p.Roles.Label()] += int64(p.Bytes)
			if p.Holders == 1 || c.Canonical(p.Ref(seq)).Seq == seq { // a shared page once
				byRole[p.Roles.Label()] += int64(p.Bytes)
			}
			side.PagesByType[p.Type.String()]++
			if p.Rotated {
				side.RotatedPages++
			}
			var tier *int
			if len(ladder) > 0 {
				tr := cachepolicy.Tier(ladder, p.Type)
				tier = &tr
				if side.PagesByTier == nil {
					side.PagesByTier = map[string]int{}
				}
				side.PagesByTier[strconv.Itoa(tr)]++
			}
			if p.V {
				su.BytesV += int64(p.Bytes)
			} else {
				su.BytesK += int64(p.Bytes)
			}
			if p.Holders > 1 {
				su.BytesShared += int64(p.Bytes)
			}
			if withPages {
				su.List = append(su.List, pageUsage{Layer: p.Layer, Side: name, Index: p.Index, Type: p.Type.String(),
					Rotated: p.Rotated, Tier: tier, Role: p.Roles.Label(), Tokens: p.Tokens, Bytes: p.Bytes, Slots: p.Holders})
			}
		}
		su.Bytes = su.BytesK + su.BytesV
		su.QueryStatBytes = c.SeqQueryStatBytes(seq)
		slots = append(slots, su)
	}
	out["slots"] = slots
	out["bytes_by_role"] = byRole
	if rs := recurrentState(c); rs != nil {
		out["recurrent_state"] = rs
	}
	if qs := queryStat(c); qs != nil {
		out["query_stat"] = qs
	}
	var est []estimate
	for _, t := range kvcache.Types {
		e := estimate{Type: t.String(), BitsPer: t.BitsPerValue()}
		if v, ok := c.Estimate()[t]; ok {
			e.BytesNow, e.BytesFull, e.FitsHeadDim = v[0], v[1], true
			e.SavedVsNow = total - v[0]
		}
		est = append(est, e)
	}
	sort.SliceStable(est, func(i, j int) bool { return est[i].BitsPer > est[j].BitsPer })
	out["estimates"] = est
}

// queryStat describes the query statistics of --cache-key-encode query
// (kvcache.QueryStatBytes), apart from the pages: nil when off. Called
// between scheduler steps.
func queryStat(c *kvcache.Cache) map[string]any {
	if !c.Config().KeyQuery {
		return nil
	}
	return map[string]any{
		"type":           "f32",
		"bytes":          c.QueryStatBytes(),
		"bytes_per_slot": c.QueryStatBytesPerSeq(),
		"capacity_bytes": kvcache.QueryStatCapacityFor(c.Config()),
	}
}

// policyJSON is the policy as GET /cache/policy shows it (cachepolicy
// owns the schema) with the policy's counters.
func policyJSON(p *cachepolicy.Policy, st engine.Stats) map[string]any {
	m := p.JSON()
	m["stats"] = map[string]any{
		"conversions_by_age": st.Policy.ByAge, "conversions_by_length": st.Policy.ByLength,
		"conversions_by_role": st.Policy.ByRole, "conversions_by_budget": st.Policy.ByBudget,
		"bytes_freed": st.Policy.BytesFreed, "reasoning_tokens_dropped": st.Policy.DroppedTokens,
		"budget_rejections": st.BudgetRejections,
		"evictions":         st.Policy.Evictions, "evicted_tokens": st.Policy.EvictedTokens,
	}
	return m
}

func (s *Server) handleGetPolicy(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, policyJSON(s.sched.Policy(), s.sched.Stats()))
}

// decodePolicy reads the body of POST /cache/policy (cachepolicy.Update)
// and applies it to the current policy (cur, nil for none): the new
// policy, or nil when the request removes it. An invalid field is a 400
// naming it, and nothing changes.
func (s *Server) decodePolicy(body []byte, cur *cachepolicy.Policy) (*cachepolicy.Policy, *apiError) {
	var u cachepolicy.Update
	if aerr := decodeJSON(body, &u, false); aerr != nil {
		return nil, aerr
	}
	m := s.eng.Model
	p, err := u.Apply(cur, m.NLayer, m.HeadDim, m.HeadDimV)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	return p, nil
}

// handleSetPolicy serves POST /cache/policy: the new rules apply from the
// next step; running streams continue.
func (s *Server) handleSetPolicy(w http.ResponseWriter, r *http.Request) {
	body, aerr := readBody(r)
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	np, aerr := s.decodePolicy(body, s.sched.Policy())
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	if err := s.sched.SetPolicy(np); err != nil {
		if errors.Is(err, engine.ErrClosed) {
			WriteError(w, errorf(http.StatusServiceUnavailable, TypeUnavailable, "%v", err))
			return
		}
		WriteError(w, badRequest("%v", err))
		return
	}
	if np == nil {
		s.log.Info("cache policy removed")
	} else {
		s.log.Info("cache policy set", "policy", policyJSON(np, engine.Stats{}))
	}
	s.handleGetPolicy(w, r)
}

// ParseSpillType reads --cache-spill-type: "" (none), "TYPE" (K and V) or
// "TYPE_K/TYPE_V".
func ParseSpillType(s string) (k, v *tensor.Type, err error) {
	if s = strings.TrimSpace(s); s == "" {
		return nil, nil, nil
	}
	ks, vs, ok := strings.Cut(s, "/")
	if !ok {
		vs = ks
	}
	tk, err := kvcache.ParseType(strings.TrimSpace(ks))
	if err != nil {
		return nil, nil, fmt.Errorf("--cache-spill-type: %w", err)
	}
	tv, err := kvcache.ParseType(strings.TrimSpace(vs))
	if err != nil {
		return nil, nil, fmt.Errorf("--cache-spill-type: %w", err)
	}
	return &tk, &tv, nil
}
