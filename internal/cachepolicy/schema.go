package cachepolicy

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/tensor"
)

// The policy's schema: its JSON (POST/GET /cache/policy) and its
// command-line flags, both read through Update, so the server and the
// command line accept the same policies with the same errors.

// FieldError is an invalid policy field: Field is its JSON name (for a
// flag, the flag's name).
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Update is a change to a policy, as the body of POST /cache/policy: the
// fields given replace the current policy's; {"enabled": false} removes
// the policy.
type Update struct {
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
	Evict    *string          `json:"evict"`  // "sinks:N,window:N" ("" or "off": none); needs a budget
	// Per-layer coldest types, "0-4:cb3,5:q5_0" ("" clears): they replace
	// the bottom of the ladder for the layers named.
	ColdKLayers *string `json:"cold_k_layers"`
	ColdVLayers *string `json:"cold_v_layers"`
	// Rules by role: a role given replaces that role's rule ({} removes
	// it).
	Prompt    *RoleUpdate `json:"prompt"`
	Generated *RoleUpdate `json:"generated"`
	Reasoning *RoleUpdate `json:"reasoning"`
}

// RoleUpdate is a rule by role: {"type_k": "q8_0", "type_v": "q8_0",
// "after": "answer", "drop": true}.
type RoleUpdate struct {
	TypeK *string `json:"type_k"`
	TypeV *string `json:"type_v"`
	After *string `json:"after"`
	Drop  *bool   `json:"drop"`
}

func (u *Update) roles() [kvcache.NumRoles]*RoleUpdate {
	return [kvcache.NumRoles]*RoleUpdate{u.Prompt, u.Generated, u.Reasoning}
}

// ruleGiven reports whether the update sets a rule (not only what shapes
// rules: ladders, warm, sink).
func (u *Update) ruleGiven() bool {
	if u.Hot != nil || u.Dynamic != nil || u.DynamicK != nil || u.DynamicV != nil || u.Budget != nil {
		return true
	}
	for _, r := range u.roles() {
		if r != nil {
			return true
		}
	}
	return false
}

func (u *Update) anyField() bool {
	return u.LadderK != nil || u.LadderV != nil || u.Warm != nil || u.Sink != nil || u.Evict != nil ||
		u.ColdKLayers != nil || u.ColdVLayers != nil || u.ruleGiven()
}

// Apply returns the policy the update makes of cur (nil: no policy; a
// new policy starts from the default ladders and warm span), checked
// against the model's layer count and the cache's head dimensions. It returns nil (no error) when the
// update removes the policy: {"enabled": false}, or turning off its last
// rule. Every field is checked before anything changes, and an invalid
// one is an error naming it (a *FieldError where one field is to blame):
// an update never silently removes or ignores.
func (u *Update) Apply(cur *Policy, layers, headDimK, headDimV int) (*Policy, error) {
	if u.Enabled != nil && !*u.Enabled {
		if u.anyField() {
			return nil, &FieldError{Field: "enabled", Err: errors.New("false removes the policy; give no other field with it")}
		}
		return nil, nil
	}
	var p Policy
	if cur != nil {
		p = *cur
	} else {
		p.LadderK, p.LadderV = DefaultLadders()
		p.Warm = DefaultWarm
	}
	if err := u.merge(&p); err != nil {
		return nil, err
	}
	if err := p.Validate(layers, headDimK, headDimV); err != nil {
		return nil, err
	}
	if !p.Enabled() {
		if cur == nil || !u.ruleGiven() {
			return nil, errors.New("this leaves no rule on, so the policy would do nothing: give hot (multistage), dynamic, dynamic_k, dynamic_v, budget, prompt, generated or reasoning (ladders, warm/sink and cold layers only shape those rules)")
		}
		return nil, nil // the update turned the last rule off
	}
	return &p, nil
}

// merge sets the fields the update gives on p, parsing each.
func (u *Update) merge(p *Policy) error {
	bad := func(field string, err error) error { return &FieldError{Field: field, Err: err} }
	var err error
	for _, l := range []struct {
		name string
		in   []string
		out  *[]tensor.Type
	}{{"ladder_k", u.LadderK, &p.LadderK}, {"ladder_v", u.LadderV, &p.LadderV}} {
		if l.in == nil {
			continue
		}
		if len(l.in) == 0 {
			return bad(l.name, errors.New("empty ladder: give at least one type"))
		}
		if *l.out, err = ParseLadder(strings.Join(l.in, ",")); err != nil {
			return bad(l.name, err)
		}
	}
	for _, c := range []struct {
		name string
		in   *string
		out  *ColdLayers
	}{{"cold_k_layers", u.ColdKLayers, &p.ColdK}, {"cold_v_layers", u.ColdVLayers, &p.ColdV}} {
		if c.in == nil {
			continue
		}
		if *c.out, err = ParseColdLayers(*c.in); err != nil {
			return bad(c.name, err)
		}
	}
	for _, f := range []struct {
		name string
		in   *int
		out  *int
	}{{"hot", u.Hot, &p.Hot}, {"warm", u.Warm, &p.Warm}, {"sink", u.Sink, &p.Sink}} {
		if f.in != nil {
			if *f.in < 0 {
				return bad(f.name, fmt.Errorf("must not be negative (got %d)", *f.in))
			}
			*f.out = *f.in
		}
	}
	if u.Dynamic != nil && *u.Dynamic == Auto {
		if u.LadderK != nil || u.LadderV != nil || u.Hot != nil || u.Warm != nil || u.Sink != nil {
			return bad("dynamic", errors.New(`"auto" sets ladder_k, ladder_v, hot, warm and sink; give none of them with it`))
		}
		a := AutoPolicy()
		p.LadderK, p.LadderV, p.Hot, p.Warm, p.Sink = a.LadderK, a.LadderV, a.Hot, a.Warm, a.Sink
		p.LengthK, p.LengthV = nil, nil
	}
	for _, d := range []struct {
		name string
		in   *string
		out  []*[]LengthStep
	}{{"dynamic", u.Dynamic, []*[]LengthStep{&p.LengthK, &p.LengthV}},
		{"dynamic_k", u.DynamicK, []*[]LengthStep{&p.LengthK}},
		{"dynamic_v", u.DynamicV, []*[]LengthStep{&p.LengthV}}} {
		if d.in == nil || d.name == "dynamic" && *d.in == Auto {
			continue
		}
		steps, err := ParseLengths(*d.in)
		if err != nil {
			return bad(d.name, err)
		}
		for _, o := range d.out {
			*o = steps
		}
	}
	if u.Budget != nil {
		var n int64
		var str string
		switch {
		case json.Unmarshal(*u.Budget, &n) == nil:
		case json.Unmarshal(*u.Budget, &str) == nil:
			if str != "" {
				if n, err = ParseBytes(str); err != nil {
					return bad("budget", err)
				}
			}
		default:
			return bad("budget", errors.New(`want a number of bytes or a size such as "48MiB"`))
		}
		if n < 0 {
			return bad("budget", fmt.Errorf("must not be negative (got %d)", n))
		}
		p.Budget = n
	}
	if u.Evict != nil {
		if p.Evict, err = ParseEvict(*u.Evict); err != nil {
			return bad("evict", err)
		}
	}
	if p.Evict.On() && p.Budget == 0 {
		return bad("evict", errors.New("eviction is the last step of a cache budget: give a budget too"))
	}
	for role, ru := range u.roles() {
		if ru == nil {
			continue
		}
		name := kvcache.Role(role).String()
		var r RoleRule
		for _, s := range []struct {
			field string
			in    *string
			t     *tensor.Type
			has   *bool
		}{{"type_k", ru.TypeK, &r.K, &r.HasK}, {"type_v", ru.TypeV, &r.V, &r.HasV}} {
			if s.in == nil {
				continue
			}
			if *s.t, err = kvcache.ParseType(*s.in); err != nil {
				return bad(name+"."+s.field, err)
			}
			*s.has = true
		}
		if ru.After != nil {
			r.After = *ru.After
		}
		if ru.Drop != nil {
			r.Drop = *ru.Drop
		}
		if err := r.validate(kvcache.Role(role), 0, 0); err != nil && !isTypeField(err) {
			return err
		}
		p.Roles[role] = r
	}
	return nil
}

// isTypeField reports whether err is about a role's type fitting the head
// dimension (checked later, by Validate, when the dimensions are known).
func isTypeField(err error) bool {
	var fe *FieldError
	return errors.As(err, &fe) && (strings.HasSuffix(fe.Field, ".type_k") || strings.HasSuffix(fe.Field, ".type_v"))
}

// JSON is the policy as GET /cache/policy shows it (p nil: none).
func (p *Policy) JSON() map[string]any {
	if p == nil {
		return map[string]any{"enabled": false}
	}
	m := map[string]any{
		"enabled": true, "ladder_k": typeNames(p.LadderK), "ladder_v": typeNames(p.LadderV),
		"hot": p.Hot, "warm": p.Warm, "sink": p.Sink,
		"dynamic_k": lengthsJSON(p.LengthK), "dynamic_v": lengthsJSON(p.LengthV),
		"budget_bytes": p.Budget, "evict": p.Evict.String(),
		"cold_k_layers": p.ColdK.String(), "cold_v_layers": p.ColdV.String(),
	}
	for role, r := range p.Roles {
		if !r.On() {
			continue
		}
		o := map[string]any{}
		if r.HasK {
			o["type_k"] = r.K.String()
		}
		if r.HasV {
			o["type_v"] = r.V.String()
		}
		if r.After != "" {
			o["after"] = r.After
		}
		if r.Drop {
			o["drop"] = true
		}
		m[kvcache.Role(role).String()] = o
	}
	return m
}

func typeNames(ts []tensor.Type) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.String()
	}
	return out
}

func lengthsJSON(steps []LengthStep) []map[string]any {
	out := []map[string]any{}
	for _, st := range steps {
		out = append(out, map[string]any{"at": st.At, "type": st.T.String()})
	}
	return out
}

// FlagSet is where Flags registers (the command line's flag set).
type FlagSet interface {
	String(p *string, def, help string, names ...string)
	Int(p *int, def int, help string, names ...string)
	Bool(p *bool, def bool, help string, names ...string)
}

// Flags are the policy's command-line flags; each is a field of Update.
type Flags struct {
	LadderK, LadderV             string
	Hot, Warm, Sink              int
	Dynamic, DynamicK, DynamicV  string
	Budget                       string
	Evict                        string
	ColdK, ColdV                 string
	Prompt, Generated, Reasoning string // TYPE, or TYPE_K/TYPE_V
	ReasoningAfter               string
	ReasoningDrop                bool
}

// flagNames maps Update's fields to the flags that set them.
var flagNames = map[string]string{
	"ladder_k": "--cache-ladder-k", "ladder_v": "--cache-ladder-v",
	"hot": "--cache-hot", "warm": "--cache-warm", "sink": "--cache-sink",
	"dynamic": "--dynamic-cache", "dynamic_k": "--dynamic-cache-k", "dynamic_v": "--dynamic-cache-v",
	"budget": "--cache-budget", "evict": "--cache-evict",
	"cold_k_layers": "--cache-cold-k-layers", "cold_v_layers": "--cache-cold-v-layers",
	"prompt.type_k": "--cache-type-prompt", "prompt.type_v": "--cache-type-prompt",
	"generated.type_k": "--cache-type-generated", "generated.type_v": "--cache-type-generated",
	"reasoning.type_k": "--cache-type-reasoning", "reasoning.type_v": "--cache-type-reasoning",
	"reasoning.after": "--cache-reasoning-after", "reasoning.drop": "--cache-reasoning-drop",
}

// Bind registers the flags.
func (f *Flags) Bind(fs FlagSet) {
	dk, dv := DefaultLadders()
	fs.String(&f.LadderK, strings.Join(typeNames(dk), ","), "K cache ladder for policies, highest precision first (tier 0 is the write type)", "cache-ladder-k")
	fs.String(&f.LadderV, strings.Join(typeNames(dv), ","), "V cache ladder for policies", "cache-ladder-v")
	fs.Int(&f.Hot, 0, "multistage: keep the most recent N tokens at tier 0, demote older pages as they age (0: off)", "cache-hot")
	fs.Int(&f.Warm, DefaultWarm, "multistage: pages older than --cache-hot spend N tokens of age in each middle tier of the ladder (0: straight to the bottom)", "cache-warm")
	fs.Int(&f.Sink, 0, "multistage: keep the first N tokens at tier 0", "cache-sink")
	fs.String(&f.Dynamic, "", "step K and V down by context length, e.g. 0:f16,2048:q8_0,3072:q4_0; or auto: the measured multistage preset (hot 64 f16, warm 192 q8_0, then K q5_0 / V cb4; sink 64; centred keys)", "dynamic-cache")
	fs.String(&f.DynamicK, "", "step K down by context length (overrides --dynamic-cache for K)", "dynamic-cache-k")
	fs.String(&f.DynamicV, "", "step V down by context length (overrides --dynamic-cache for V)", "dynamic-cache-v")
	fs.String(&f.Budget, "", "cache memory budget across all slots, e.g. 48MiB: demote old pages to stay under it", "cache-budget")
	fs.String(&f.Evict, "", "last step of the cache budget, off by default: when even the lowest types do not fit, drop a running request's middle pages, keeping the first sinks and the last window tokens (StreamingLLM), e.g. sinks:64,window:4096", "cache-evict")
	fs.String(&f.ColdK, "", "per-layer coldest K type, replacing the bottom of the K ladder for the layers named, e.g. 0-4:cb3,5:q5_0", "cache-cold-k-layers")
	fs.String(&f.ColdV, "", "per-layer coldest V type, replacing the bottom of the V ladder for the layers named, e.g. 0:cb4,1-4:cb3", "cache-cold-v-layers")
	fs.String(&f.Prompt, "", "cache type of prompt tokens' pages: TYPE, or TYPE_K/TYPE_V (e.g. q8_0)", "cache-type-prompt")
	fs.String(&f.Generated, "", "cache type of generated tokens' pages: TYPE or TYPE_K/TYPE_V", "cache-type-generated")
	fs.String(&f.Reasoning, "", "cache type of reasoning tokens' pages (inside the model's thinking markers): TYPE or TYPE_K/TYPE_V", "cache-type-reasoning")
	fs.String(&f.ReasoningAfter, "", "apply --cache-type-reasoning only once the answer starts (answer)", "cache-reasoning-after")
	fs.Bool(&f.ReasoningDrop, false, "when a request ends, cut its slot's cache before its reasoning (for chat templates that drop earlier turns' reasoning)", "cache-reasoning-drop")
}

// Policy returns the policy the flags describe (nil when no rule is on).
// Errors name the flag. Types are checked against the model's head
// dimensions when the policy is installed (Validate).
func (f *Flags) Policy() (*Policy, error) {
	u := Update{Hot: &f.Hot, Warm: &f.Warm, Sink: &f.Sink}
	u.LadderK = strings.Split(f.LadderK, ",")
	u.LadderV = strings.Split(f.LadderV, ",")
	if f.Dynamic == Auto {
		// The preset sets the ladders and windows: pass on only the
		// flags moved from their defaults (an error with auto).
		dk, dv := DefaultLadders()
		if f.Hot == 0 {
			u.Hot = nil
		}
		if f.Warm == DefaultWarm {
			u.Warm = nil
		}
		if f.Sink == 0 {
			u.Sink = nil
		}
		if f.LadderK == strings.Join(typeNames(dk), ",") {
			u.LadderK = nil
		}
		if f.LadderV == strings.Join(typeNames(dv), ",") {
			u.LadderV = nil
		}
	}
	for _, d := range []struct {
		in  string
		out **string
	}{{f.Dynamic, &u.Dynamic}, {f.DynamicK, &u.DynamicK}, {f.DynamicV, &u.DynamicV}} {
		if d.in != "" {
			s := d.in
			*d.out = &s
		}
	}
	if f.Budget != "" {
		b, _ := json.Marshal(f.Budget)
		raw := json.RawMessage(b)
		u.Budget = &raw
	}
	if f.Evict != "" {
		ev := f.Evict
		u.Evict = &ev
	}
	if f.ColdK != "" {
		s := f.ColdK
		u.ColdKLayers = &s
	}
	if f.ColdV != "" {
		s := f.ColdV
		u.ColdVLayers = &s
	}
	for _, r := range []struct {
		spec string
		out  **RoleUpdate
	}{{f.Prompt, &u.Prompt}, {f.Generated, &u.Generated}, {f.Reasoning, &u.Reasoning}} {
		if r.spec == "" {
			continue
		}
		k, v, ok := strings.Cut(r.spec, "/")
		if !ok {
			v = k
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		*r.out = &RoleUpdate{TypeK: &k, TypeV: &v}
	}
	if f.ReasoningAfter != "" || f.ReasoningDrop {
		if u.Reasoning == nil {
			u.Reasoning = &RoleUpdate{}
		}
		after, drop := f.ReasoningAfter, f.ReasoningDrop
		u.Reasoning.After, u.Reasoning.Drop = &after, &drop
	}
	var p Policy
	if err := u.merge(&p); err != nil {
		return nil, flagError(err)
	}
	if !p.Enabled() {
		if len(p.ColdK) > 0 || len(p.ColdV) > 0 {
			return nil, errors.New("--cache-cold-k-layers / --cache-cold-v-layers end the ladders the policy's rules walk: give a rule too (--cache-hot, --cache-budget, ...)")
		}
		return nil, nil
	}
	return &p, nil
}

// FlagError renames a field error's field to its flag (for errors of a
// policy built from flags, e.g. Validate's).
func FlagError(err error) error { return flagError(err) }

// flagError renames a field error's field to its flag.
func flagError(err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		if name, ok := flagNames[fe.Field]; ok {
			return &FieldError{Field: name, Err: fe.Err}
		}
	}
	return err
}
