package toolcall

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Parser splits a model's output into reasoning, content and tool calls.
type Parser struct {
	Format Format
	// Tools: look for tool calls (tools given and tool_choice not "none").
	Tools bool
	// Reasoning: separate <think> reasoning (Harmony's analysis channel is
	// always parsed; without Reasoning it goes to the content).
	Reasoning bool
	// InThink: the prompt opened a <think> block, so the output starts
	// with reasoning.
	InThink bool
}

// PartialCall is a tool call as far as the output has written it.
type PartialCall struct {
	ID   string // from the output (Mistral), else ""
	Name string // "" until the name is complete
	Args string // the arguments' JSON text so far (all of it when Done)
	Done bool
}

// Result is what output parses into. Before the end (final false),
// Reasoning and Content hold only text that later output cannot change (a
// possible start of a marker, and trailing whitespace, are held back), so
// successive results extend each other; Calls are the calls begun so far.
type Result struct {
	Reasoning string
	Content   string
	Calls     []PartialCall
	// Failed: at the end, text that looked like tool calls did not parse;
	// Content then holds the whole output after the reasoning.
	Failed bool
}

const (
	thinkOpen  = "<think>"
	thinkClose = "</think>"
)

func safe(s string) string { return strings.TrimRight(s, " \t\r\n") }

// holdPartial drops from s a suffix that is a proper prefix of one of the
// markers (it may become the marker).
func holdPartial(s string, markers ...string) string {
	cut := 0
	for _, m := range markers {
		for k := min(len(m)-1, len(s)); k > cut; k-- {
			if strings.HasSuffix(s, m[:k]) {
				cut = k
				break
			}
		}
	}
	return s[:len(s)-cut]
}

// Parse parses the output text so far (final: the whole output).
func (p Parser) Parse(text string, final bool) Result {
	if p.Format == Harmony {
		return p.harmony(text, final)
	}
	var r Result
	rest := text
	had := false
	if p.Reasoning {
		body, open := text, p.InThink
		if !open {
			t := strings.TrimLeft(text, " \t\r\n")
			switch {
			case strings.HasPrefix(t, thinkOpen):
				body, open = t[len(thinkOpen):], true
			case !final && strings.HasPrefix(thinkOpen, t):
				return r // may still become <think>
			}
		}
		if open {
			had = true
			if i := strings.Index(body, thinkClose); i >= 0 {
				r.Reasoning = strings.TrimSpace(body[:i])
				rest = body[i+len(thinkClose):]
			} else {
				if final {
					r.Reasoning = strings.TrimSpace(body)
				} else {
					r.Reasoning = safe(strings.TrimLeft(holdPartial(body, thinkClose), " \t\r\n"))
				}
				return r
			}
		}
	}
	if had {
		rest = strings.TrimLeft(rest, " \t\r\n")
	}
	if !p.Tools {
		r.Content = rest
		return r
	}
	var content string
	var calls []PartialCall
	var failed bool
	switch p.Format {
	case Llama3:
		content, calls, failed = parseLlama3(rest, final)
	case Hermes:
		content, calls, failed = parseHermes(rest, final)
	case Mistral:
		content, calls, failed = parseMistral(rest, final)
	default:
		content, calls, failed = parseGeneric(rest, final)
	}
	switch {
	case failed:
		r.Content, r.Failed = rest, true
	case final && len(calls) > 0:
		r.Content, r.Calls = strings.TrimSpace(content), calls
	case final:
		r.Content = content
	default:
		r.Content, r.Calls = safe(strings.TrimLeft(content, " \t\r\n")), calls
	}
	return r
}

// ---- JSON scanning ----

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// scanValue returns the end of the JSON value starting at s[i], and
// whether it is complete within s.
func scanValue(s string, i int) (int, bool) {
	if i >= len(s) {
		return i, false
	}
	switch s[i] {
	case '"':
		return scanString(s, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(s); j++ {
			switch s[j] {
			case '"':
				e, ok := scanString(s, j)
				if !ok {
					return len(s), false
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}
		return len(s), false
	}
	j := i
	for j < len(s) && !strings.ContainsRune(",}] \t\r\n", rune(s[j])) {
		j++
	}
	return j, j < len(s)
}

func scanString(s string, i int) (int, bool) {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return len(s), false
}

// scanCall reads a call object written with the name first, as the
// grammars write them: {"name": "f", "<args key>": {...} ...}. It returns
// the call as far as written, the end of the object (when complete) and
// whether the text so far has that shape.
func scanCall(s string, i int) (PartialCall, int, bool) {
	var c PartialCall
	i = skipSpace(s, i)
	if i >= len(s) {
		return c, i, true
	}
	if s[i] != '{' {
		return c, i, false
	}
	key := func(j int) (string, int, bool, bool) { // key, index after ':', complete, ok
		j = skipSpace(s, j)
		if j >= len(s) {
			return "", j, false, true
		}
		if s[j] != '"' {
			return "", j, false, false
		}
		e, ok := scanString(s, j)
		if !ok {
			return "", e, false, true
		}
		var k string
		json.Unmarshal([]byte(s[j:e]), &k)
		j = skipSpace(s, e)
		if j >= len(s) {
			return k, j, false, true
		}
		if s[j] != ':' {
			return k, j, false, false
		}
		return k, skipSpace(s, j+1), true, true
	}
	k, j, done, ok := key(i + 1)
	if !ok || !done {
		return c, j, ok
	}
	if k != "name" {
		return c, j, false
	}
	if j >= len(s) {
		return c, j, true
	}
	e, ok := scanValue(s, j)
	if !ok {
		return c, e, s[j] == '"'
	}
	if json.Unmarshal([]byte(s[j:e]), &c.Name) != nil {
		return c, e, false
	}
	j = skipSpace(s, e)
	if j >= len(s) {
		return c, j, true
	}
	if s[j] != ',' {
		return c, j, false
	}
	k, j, done, ok = key(j + 1)
	if !ok || !done {
		return c, j, ok
	}
	if k != "arguments" && k != "parameters" {
		return c, j, false
	}
	e, complete := scanValue(s, j)
	c.Args = s[j:e]
	if !complete {
		return c, e, true
	}
	c.Done = true
	// The rest of the object (an "id", whitespace) up to its end.
	end, complete := scanValue(s, i)
	if !complete {
		return c, len(s), true
	}
	return c, end, true
}

// decodeCall reads a complete call object (keys in any order): name, and
// arguments (or parameters) as an object or a JSON string; id if any.
func decodeCall(obj string) (PartialCall, bool) {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(obj))
	dec.UseNumber()
	if dec.Decode(&m) != nil {
		return PartialCall{}, false
	}
	if fn, ok := m["function"]; ok && m["name"] == nil { // {"type":"function","function":{...}}
		return decodeCall(string(fn))
	}
	var c PartialCall
	if json.Unmarshal(m["name"], &c.Name) != nil || !ValidName(c.Name) {
		return c, false
	}
	args, ok := m["arguments"]
	if !ok {
		args, ok = m["parameters"]
	}
	if !ok {
		args = json.RawMessage("{}")
	}
	a := bytes.TrimSpace(args)
	if len(a) > 0 && a[0] == '"' {
		var s string
		json.Unmarshal(a, &s)
		a = []byte(strings.TrimSpace(s))
		if !json.Valid(a) {
			return c, false
		}
	}
	if len(a) == 0 || a[0] != '{' {
		return c, false
	}
	c.Args, c.Done = string(a), true
	if id, ok := m["id"]; ok {
		json.Unmarshal(id, &c.ID)
	}
	return c, true
}

// scanCallArray reads the call objects of a JSON array from i (just after
// its '['), streaming: the calls as far as written, up to the first that is
// not complete or not followed by a ','.
func scanCallArray(t string, i int) []PartialCall {
	var calls []PartialCall
	for {
		c, end, ok := scanCall(t, i)
		if !ok || skipSpace(t, i) >= len(t) {
			return calls
		}
		calls = append(calls, c)
		if !c.Done {
			return calls
		}
		i = skipSpace(t, end)
		if i >= len(t) || t[i] != ',' {
			return calls
		}
		i++
	}
}

// ---- formats ----

// parseGeneric: {"tool_calls": [...]}, {"tool_call": {...}} or
// {"response": "..."}; anything else is content.
func parseGeneric(s string, final bool) (string, []PartialCall, bool) {
	t := strings.TrimLeft(s, " \t\r\n")
	if t == "" || t[0] != '{' {
		return s, nil, false
	}
	if !final {
		// Streaming: calls as the forced layout writes them.
		k, j, done, ok := objKey(t, 1)
		if !ok || !done || k != "tool_calls" || j >= len(t) || t[j] != '[' {
			return "", nil, false
		}
		return "", scanCallArray(t, j+1), false
	}
	var m map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(t))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil || dec.More() {
		return s, nil, false // not one JSON object: content
	}
	if raw, ok := m["tool_calls"]; ok {
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) != nil || len(list) == 0 {
			return s, nil, true
		}
		var calls []PartialCall
		for _, o := range list {
			c, ok := decodeCall(string(o))
			if !ok {
				return s, nil, true
			}
			calls = append(calls, c)
		}
		return "", calls, false
	}
	if raw, ok := m["tool_call"]; ok {
		c, ok := decodeCall(string(raw))
		if !ok {
			return s, nil, true
		}
		return "", []PartialCall{c}, false
	}
	if raw, ok := m["response"]; ok && len(m) == 1 {
		var text string
		if json.Unmarshal(raw, &text) == nil {
			return text, nil, false
		}
	}
	return s, nil, false
}

// objKey reads `"key" :` at s[i] (after optional space).
func objKey(s string, i int) (string, int, bool, bool) {
	i = skipSpace(s, i)
	if i >= len(s) {
		return "", i, false, true
	}
	if s[i] != '"' {
		return "", i, false, false
	}
	e, ok := scanString(s, i)
	if !ok {
		return "", e, false, true
	}
	var k string
	json.Unmarshal([]byte(s[i:e]), &k)
	j := skipSpace(s, e)
	if j >= len(s) || s[j] != ':' {
		return k, j, false, j >= len(s)
	}
	return k, skipSpace(s, j+1), true, true
}

const pythonTag = "<|python_tag|>"

// parseCallList reads call objects separated by ';' or ',' or whitespace
// (Llama 3), streaming as far as written.
func parseCallList(t string, final bool) ([]PartialCall, bool) {
	var calls []PartialCall
	i := skipSpace(t, 0)
	for i < len(t) {
		if !final {
			c, end, ok := scanCall(t, i)
			if !ok {
				return calls, false
			}
			calls = append(calls, c)
			if !c.Done {
				return calls, true
			}
			i = end
		} else {
			end, complete := scanValue(t, i)
			if !complete || t[i] != '{' {
				return nil, false
			}
			c, ok := decodeCall(t[i:end])
			if !ok {
				return nil, false
			}
			calls = append(calls, c)
			i = end
		}
		i = skipSpace(t, i)
		if i < len(t) && (t[i] == ';' || t[i] == ',') {
			i = skipSpace(t, i+1)
		}
	}
	return calls, true
}

func parseLlama3(s string, final bool) (string, []PartialCall, bool) {
	var content, callText string
	if i := strings.Index(s, pythonTag); i >= 0 {
		content, callText = s[:i], s[i+len(pythonTag):]
	} else if t := strings.TrimLeft(s, " \t\r\n"); t != "" && t[0] == '{' {
		callText = t
	} else {
		if !final {
			return holdPartial(s, pythonTag), nil, false
		}
		return s, nil, false
	}
	if !final {
		calls, _ := parseCallList(callText, false)
		return content, calls, false
	}
	calls, ok := parseCallList(callText, true)
	if !ok || len(calls) == 0 {
		if !strings.Contains(s, pythonTag) {
			// A JSON answer, not a call.
			if t := strings.TrimSpace(callText); json.Valid([]byte(t)) && !strings.Contains(t, `"name"`) {
				return s, nil, false
			}
		}
		return s, nil, true
	}
	return content, calls, false
}

const (
	hermesOpen  = "<tool_call>"
	hermesClose = "</tool_call>"
)

func parseHermes(s string, final bool) (string, []PartialCall, bool) {
	i := strings.Index(s, hermesOpen)
	if i < 0 {
		if !final {
			return holdPartial(s, hermesOpen), nil, false
		}
		return s, nil, false
	}
	content := s[:i]
	var calls []PartialCall
	var after []string
	rest := s[i:]
	for {
		rest = strings.TrimPrefix(rest, hermesOpen)
		body := rest
		closed := false
		if j := strings.Index(rest, hermesClose); j >= 0 {
			body, rest, closed = rest[:j], rest[j+len(hermesClose):], true
		} else {
			rest = ""
		}
		if final {
			c, ok := decodeCall(strings.TrimSpace(body))
			if !ok {
				return s, nil, true
			}
			calls = append(calls, c)
		} else {
			c, _, ok := scanCall(body, 0)
			if ok && skipSpace(body, 0) < len(body) {
				calls = append(calls, c)
			}
		}
		if !closed {
			break
		}
		k := strings.Index(rest, hermesOpen)
		if k < 0 {
			after = append(after, rest)
			break
		}
		after = append(after, rest[:k])
		rest = rest[k:]
	}
	if final {
		content = strings.TrimSpace(content)
		for _, a := range after {
			if a = strings.TrimSpace(a); a != "" {
				content += "\n" + a
			}
		}
	}
	return content, calls, false
}

const (
	mistralCalls = "[TOOL_CALLS]"
	mistralArgs  = "[ARGS]"
	mistralID    = "[CALL_ID]"
)

func parseMistral(s string, final bool) (string, []PartialCall, bool) {
	i := strings.Index(s, mistralCalls)
	if i < 0 {
		if !final {
			return holdPartial(s, mistralCalls), nil, false
		}
		return s, nil, false
	}
	content := s[:i]
	t := strings.TrimLeft(s[i+len(mistralCalls):], " \t\r\n")
	if t == "" {
		if final {
			return s, nil, true
		}
		return content, nil, false
	}
	if t[0] == '[' { // [{"name":..., "arguments":..., "id":...}, ...]
		if !final {
			return content, scanCallArray(t, 1), false
		}
		end, complete := scanValue(t, 0)
		var list []json.RawMessage
		if !complete || json.Unmarshal([]byte(t[:end]), &list) != nil || len(list) == 0 {
			return s, nil, true
		}
		var calls []PartialCall
		for _, o := range list {
			c, ok := decodeCall(string(o))
			if !ok {
				return s, nil, true
			}
			calls = append(calls, c)
		}
		return content, calls, false
	}
	// name[ARGS]{...} (or name[CALL_ID]id[ARGS]{...}), repeated.
	var calls []PartialCall
	for t != "" {
		a := strings.Index(t, mistralArgs)
		if a < 0 {
			if final {
				return s, nil, true
			}
			break
		}
		var c PartialCall
		c.Name = t[:a]
		if k := strings.Index(c.Name, mistralID); k >= 0 {
			c.Name, c.ID = c.Name[:k], c.Name[k+len(mistralID):]
		}
		c.Name = strings.TrimSpace(c.Name)
		if !ValidName(c.Name) {
			return s, nil, final
		}
		j := skipSpace(t, a+len(mistralArgs))
		end, complete := scanValue(t, j)
		c.Args = t[j:end]
		if complete && json.Valid([]byte(c.Args)) && strings.HasPrefix(c.Args, "{") {
			c.Done = true
		} else if final {
			return s, nil, true
		}
		calls = append(calls, c)
		if !c.Done {
			break
		}
		t = strings.TrimLeft(t[end:], " \t\r\n")
		t = strings.TrimLeft(strings.TrimPrefix(t, mistralCalls), " \t\r\n")
	}
	return content, calls, false
}

// ---- harmony (gpt-oss) ----

var harmonyMarkers = []string{"<|start|>", "<|channel|>", "<|message|>", "<|end|>", "<|call|>", "<|return|>", "<|constrain|>"}

func (p Parser) harmony(text string, final bool) Result {
	var r Result
	if !strings.Contains(text, "<|channel|>") && !strings.Contains(text, "<|message|>") {
		if final {
			r.Content = text
		} else if strings.TrimSpace(text) == "" || strings.HasPrefix("<|channel|>", strings.TrimSpace(text)) {
			// nothing safe yet
		} else {
			r.Content = holdPartial(text, harmonyMarkers...)
		}
		return r
	}
	var reasoning, content []string
	for _, seg := range strings.Split(text, "<|start|>") {
		h := strings.Index(seg, "<|message|>")
		if h < 0 {
			if final && strings.TrimSpace(stripRole(seg)) != "" && strings.Contains(seg, "to=functions.") {
				r.Content, r.Failed = text, true
				return r
			}
			continue
		}
		header, body := seg[:h], seg[h+len("<|message|>"):]
		closed := false
		for _, m := range []string{"<|end|>", "<|call|>", "<|return|>"} {
			if k := strings.Index(body, m); k >= 0 {
				body, closed = body[:k], true
			}
		}
		if !closed && !final {
			body = holdPartial(body, "<|end|>", "<|call|>", "<|return|>")
		}
		channel := ""
		if k := strings.Index(header, "<|channel|>"); k >= 0 {
			channel = header[k+len("<|channel|>"):]
			if e := strings.IndexAny(channel, " <"); e >= 0 {
				channel = channel[:e]
			}
		}
		recipient := ""
		if k := strings.Index(header, "to=functions."); k >= 0 {
			recipient = header[k+len("to=functions."):]
			if e := strings.IndexAny(recipient, " <"); e >= 0 {
				recipient = recipient[:e]
			}
		}
		switch {
		case recipient != "" && p.Tools:
			c := PartialCall{Name: recipient}
			if !ValidName(recipient) {
				if final {
					r.Content, r.Failed = text, true
					return r
				}
				continue
			}
			j := skipSpace(body, 0)
			end, complete := scanValue(body, j)
			c.Args = body[j:end]
			c.Done = complete && json.Valid([]byte(c.Args)) && strings.HasPrefix(c.Args, "{")
			if final && !c.Done {
				r.Content, r.Failed = text, true
				return r
			}
			r.Calls = append(r.Calls, c)
		case channel == "analysis" && p.Reasoning:
			reasoning = append(reasoning, body)
		default:
			content = append(content, body)
		}
	}
	r.Reasoning = strings.TrimSpace(strings.Join(reasoning, "\n"))
	r.Content = strings.TrimSpace(strings.Join(content, "\n"))
	if !final {
		// Only the last message may still grow.
		r.Reasoning = safe(r.Reasoning)
		r.Content = safe(r.Content)
	}
	return r
}

func stripRole(seg string) string { return strings.TrimPrefix(strings.TrimSpace(seg), "assistant") }
