package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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

// decodeStrict decodes a JSON object body, refusing unknown fields (a
// misspelt option must not silently do nothing).
func decodeStrict(w http.ResponseWriter, r *http.Request, v any) bool {
	b, aerr := readBody(r)
	if aerr == nil && len(bytes.TrimSpace(b)) == 0 {
		aerr = badRequest("empty body: send a JSON object")
	}
	if aerr == nil {
		if _, aerr = parseObject(b); aerr == nil {
			d := json.NewDecoder(bytes.NewReader(b))
			d.DisallowUnknownFields()
			if err := d.Decode(v); err != nil {
				aerr = badRequest("invalid request: %s", jsonErr(err))
			}
		}
	}
	if aerr != nil {
		writeAPIError(w, aerr)
		return false
	}
	return true
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

// handleRequantize serves POST /cache/requantize: convert the cache's
// pages in scope to new types in place, without re-evaluating any token.
func (s *Server) handleRequantize(w http.ResponseWriter, r *http.Request) {
	var req requantizeRequest
	if !decodeStrict(w, r, &req) {
		return
	}
	if req.TypeK == nil && req.TypeV == nil {
		WriteError(w, http.StatusBadRequest, TypeInvalidRequest, "give type_k and/or type_v")
		return
	}
	m := s.eng.Model
	var t kvcache.Target
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
			WriteError(w, http.StatusBadRequest, TypeInvalidRequest, side.name+": "+err.Error())
			return
		}
		*side.out = &typ
	}
	if req.Layers != nil {
		layers, err := parseLayerList(*req.Layers, m.NLayer)
		if err != nil {
			WriteError(w, http.StatusBadRequest, TypeInvalidRequest, "layers: "+err.Error())
			return
		}
		t.Layers = layers
	}
	if req.Slots != nil {
		if len(req.Slots) == 0 {
			WriteError(w, http.StatusBadRequest, TypeInvalidRequest, "slots: empty list (omit it for all slots)")
			return
		}
		for _, id := range req.Slots {
			if id < 0 || id >= s.o.Slots {
				WriteError(w, http.StatusBadRequest, TypeInvalidRequest, fmt.Sprintf("slots: slot %d out of range (0-%d)", id, s.o.Slots-1))
				return
			}
		}
		t.Seqs = req.Slots
	}
	t.Rotate = req.Rotate
	rep, err := s.sched.Requantize(t, req.DryRun)
	switch {
	case errors.Is(err, engine.ErrRequantizeBusy):
		WriteError(w, http.StatusConflict, TypeInvalidRequest, err.Error())
		return
	case errors.Is(err, engine.ErrClosed):
		WriteError(w, http.StatusServiceUnavailable, TypeUnavailable, err.Error())
		return
	case err != nil:
		WriteError(w, http.StatusBadRequest, TypeInvalidRequest, err.Error())
		return
	}
	layers := make([]layerReport, len(rep.Layers))
	for i, l := range rep.Layers {
		layers[i] = layerReport{l.Layer, l.TypeKBefore, l.TypeKAfter, l.TypeVBefore, l.TypeVAfter,
			l.BytesKBefore, l.BytesKAfter, l.BytesVBefore, l.BytesVAfter}
	}
	s.log.Info("cache requantize", "dry_run", rep.DryRun, "pages", rep.PagesConverted,
		"bytes_before", rep.BytesBefore, "bytes_after", rep.BytesAfter, "elapsed", rep.Elapsed)
	WriteJSON(w, http.StatusOK, map[string]any{
		"dry_run":          rep.DryRun,
		"layers":           layers,
		"bytes_before":     rep.BytesBefore,
		"bytes_after":      rep.BytesAfter,
		"bytes_freed":      rep.BytesFreed,
		"tokens_converted": rep.TokensConverted,
		"pages_converted":  rep.PagesConverted,
		"elapsed_ms":       float64(rep.Elapsed.Microseconds()) / 1000,
	})
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
	Kind   string    `json:"kind"`             // "full" or "window"
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
	Tokens  int    `json:"tokens"`
	Bytes   int    `json:"bytes"`
}

type slotUsage struct {
	ID     int          `json:"id"`
	Tokens int          `json:"tokens"`
	Pages  int          `json:"pages"`
	Bytes  int64        `json:"bytes"`
	BytesK int64        `json:"bytes_k"`
	BytesV int64        `json:"bytes_v"`
	Layers []layerUsage `json:"layers"`
	List   []pageUsage  `json:"pages_list,omitempty"`
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
		var slots []slotUsage
		for seq := 0; seq < cfg.Seqs; seq++ {
			su := slotUsage{ID: seq, Tokens: c.Len(seq), Layers: make([]layerUsage, cfg.Layers)}
			for l := range su.Layers {
				wk, wv := c.WriteTypes(seq, l)
				a := c.Attn(l)
				su.Layers[l] = layerUsage{Layer: l, Kind: a.Kind(), Window: a.Window, Tokens: c.Len(seq),
					K: sideUsage{BytesByType: map[string]int64{}, PagesByType: map[string]int{}, WriteType: wk.String()},
					V: sideUsage{BytesByType: map[string]int64{}, PagesByType: map[string]int{}, WriteType: wv.String()}}
			}
			for _, p := range c.Pages(seq) {
				lu := &su.Layers[p.Layer]
				side, ladder, name := &lu.K, []tensor.Type(nil), "k"
				if pol != nil {
					ladder = pol.LadderK
				}
				if p.V {
					side, name = &lu.V, "v"
					if pol != nil {
						ladder = pol.LadderV
					}
				} else {
					lu.Pages++
					su.Pages++
				}
				side.Bytes += int64(p.Bytes)
				side.BytesByType[p.Type.String()] += int64(p.Bytes)
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
				if withPages {
					su.List = append(su.List, pageUsage{Layer: p.Layer, Side: name, Index: p.Index, Type: p.Type.String(),
						Rotated: p.Rotated, Tier: tier, Tokens: p.Tokens, Bytes: p.Bytes})
				}
			}
			su.Bytes = su.BytesK + su.BytesV
			slots = append(slots, su)
		}
		out["slots"] = slots
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
		return nil
	})
	if err != nil {
		WriteError(w, http.StatusServiceUnavailable, TypeUnavailable, err.Error())
		return
	}
	out["policy"] = policyJSON(pol, s.sched.Stats())
	WriteJSON(w, http.StatusOK, out)
}

// policyRequest is the body of POST /cache/policy. Fields that are given
// replace the current policy's; {"enabled": false} removes the policy.
type policyRequest struct {
	Enabled  *bool            `json:"enabled"`
	LadderK  []string         `json:"ladder_k"`
	LadderV  []string         `json:"ladder_v"`
	Hot      *int             `json:"hot"`
	Warm     *int             `json:"warm"`
	Sink     *int             `json:"sink"`
	Dynamic  *string          `json:"dynamic"`
	DynamicK *string          `json:"dynamic_k"`
	DynamicV *string          `json:"dynamic_v"`
	Budget   *json.RawMessage `json:"budget"` // bytes as a number, or "48MiB"; 0 or "" for none
}

func typeNames(ts []tensor.Type) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.String()
	}
	return out
}

func lengthsJSON(steps []cachepolicy.LengthStep) []map[string]any {
	out := []map[string]any{}
	for _, st := range steps {
		out = append(out, map[string]any{"at": st.At, "type": st.T.String()})
	}
	return out
}

func policyJSON(p *cachepolicy.Policy, st engine.Stats) map[string]any {
	stats := map[string]any{
		"conversions_by_age": st.Policy.ByAge, "conversions_by_length": st.Policy.ByLength,
		"conversions_by_budget": st.Policy.ByBudget, "bytes_freed": st.Policy.BytesFreed,
		"budget_rejections": st.BudgetRejections,
	}
	if p == nil {
		return map[string]any{"enabled": false, "stats": stats}
	}
	return map[string]any{
		"enabled": true, "ladder_k": typeNames(p.LadderK), "ladder_v": typeNames(p.LadderV),
		"hot": p.Hot, "warm": p.Warm, "sink": p.Sink,
		"dynamic_k": lengthsJSON(p.LengthK), "dynamic_v": lengthsJSON(p.LengthV),
		"budget_bytes": p.Budget, "stats": stats,
	}
}

func (s *Server) handleGetPolicy(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, policyJSON(s.sched.Policy(), s.sched.Stats()))
}

// handleSetPolicy serves POST /cache/policy: the new rules apply from the
// next step; running streams continue.
func (s *Server) handleSetPolicy(w http.ResponseWriter, r *http.Request) {
	var req policyRequest
	if !decodeStrict(w, r, &req) {
		return
	}
	if req.Enabled != nil && !*req.Enabled {
		if err := s.sched.SetPolicy(nil); err != nil {
			WriteError(w, http.StatusServiceUnavailable, TypeUnavailable, err.Error())
			return
		}
		s.log.Info("cache policy removed")
		s.handleGetPolicy(w, r)
		return
	}
	var p cachepolicy.Policy
	if cur := s.sched.Policy(); cur != nil {
		p = *cur
	} else {
		p.LadderK, p.LadderV = cachepolicy.DefaultLadders()
		p.Warm = cachepolicy.DefaultWarm
	}
	bad := func(field string, err error) {
		WriteError(w, http.StatusBadRequest, TypeInvalidRequest, field+": "+err.Error())
	}
	var err error
	if req.LadderK != nil {
		if p.LadderK, err = cachepolicy.ParseLadder(strings.Join(req.LadderK, ",")); err != nil {
			bad("ladder_k", err)
			return
		}
	}
	if req.LadderV != nil {
		if p.LadderV, err = cachepolicy.ParseLadder(strings.Join(req.LadderV, ",")); err != nil {
			bad("ladder_v", err)
			return
		}
	}
	for _, f := range []struct {
		name string
		in   *int
		out  *int
	}{{"hot", req.Hot, &p.Hot}, {"warm", req.Warm, &p.Warm}, {"sink", req.Sink, &p.Sink}} {
		if f.in != nil {
			*f.out = *f.in
		}
	}
	for _, d := range []struct {
		name string
		in   *string
		out  []*[]cachepolicy.LengthStep
	}{{"dynamic", req.Dynamic, []*[]cachepolicy.LengthStep{&p.LengthK, &p.LengthV}},
		{"dynamic_k", req.DynamicK, []*[]cachepolicy.LengthStep{&p.LengthK}},
		{"dynamic_v", req.DynamicV, []*[]cachepolicy.LengthStep{&p.LengthV}}} {
		if d.in == nil {
			continue
		}
		steps, err := cachepolicy.ParseLengths(*d.in)
		if err != nil {
			bad(d.name, err)
			return
		}
		for _, o := range d.out {
			*o = steps
		}
	}
	if req.Budget != nil {
		var n int64
		var str string
		switch {
		case json.Unmarshal(*req.Budget, &n) == nil:
		case json.Unmarshal(*req.Budget, &str) == nil:
			if str != "" {
				if n, err = cachepolicy.ParseBytes(str); err != nil {
					bad("budget", err)
					return
				}
			}
		default:
			bad("budget", errors.New(`want a number of bytes or a size such as "48MiB"`))
			return
		}
		if n < 0 {
			bad("budget", errors.New("must not be negative"))
			return
		}
		p.Budget = n
	}
	var np *cachepolicy.Policy
	if p.Enabled() {
		np = &p
	}
	if err := s.sched.SetPolicy(np); err != nil {
		if errors.Is(err, engine.ErrClosed) {
			WriteError(w, http.StatusServiceUnavailable, TypeUnavailable, err.Error())
			return
		}
		WriteError(w, http.StatusBadRequest, TypeInvalidRequest, err.Error())
		return
	}
	s.log.Info("cache policy set", "policy", policyJSON(np, engine.Stats{}))
	s.handleGetPolicy(w, r)
}
