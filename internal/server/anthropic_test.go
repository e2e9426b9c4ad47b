package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

const messagesURL = "/v1/messages"

var anthropicWeather = map[string]any{
	"name": "get_weather", "description": "Get the current weather in a city",
	"input_schema": weatherTool["function"].(map[string]any)["parameters"],
}

// anthropicEvent is one named SSE event of a Messages stream.
type anthropicEvent struct {
	name string
	data map[string]any
}

func streamMessages(t *testing.T, url string, body map[string]any) []anthropicEvent {
	t.Helper()
	body["stream"] = true
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var out []anthropicEvent
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	name := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = line[7:]
		case strings.HasPrefix(line, "data: "):
			var d map[string]any
			if err := json.Unmarshal([]byte(line[6:]), &d); err != nil {
				t.Fatalf("event %s: %v", name, err)
			}
			if d["type"] != name {
				t.Errorf("event %q carries type %v", name, d["type"])
			}
			out = append(out, anthropicEvent{name, d})
		}
	}
	return out
}

// folded is a streamed message put back together.
type folded struct {
	blocks []map[string]any // content blocks, text / thinking / partial_json accumulated
	reason any
	usage  map[string]any
}

func foldMessages(t *testing.T, evs []anthropicEvent) folded {
	t.Helper()
	var f folded
	if len(evs) < 3 || evs[0].name != "message_start" || evs[len(evs)-1].name != "message_stop" || evs[len(evs)-2].name != "message_delta" {
		t.Fatalf("event sequence %v", evs)
	}
	open := -1
	for _, e := range evs[1 : len(evs)-2] {
		switch e.name {
		case "ping":
		case "content_block_start":
			if open >= 0 {
				t.Fatalf("block %d started while %d is open", len(f.blocks), open)
			}
			open = int(num(e.data["index"]))
			if open != len(f.blocks) {
				t.Fatalf("block index %d, want %d", open, len(f.blocks))
			}
			f.blocks = append(f.blocks, e.data["content_block"].(map[string]any))
		case "content_block_delta":
			if int(num(e.data["index"])) != open {
				t.Fatalf("delta for block %v while %d is open", e.data["index"], open)
			}
			d := e.data["delta"].(map[string]any)
			blk := f.blocks[open]
			switch d["type"] {
			case "text_delta":
				blk["text"] = blk["text"].(string) + d["text"].(string)
			case "thinking_delta":
				blk["thinking"] = blk["thinking"].(string) + d["thinking"].(string)
			case "input_json_delta":
				s, _ := blk["partial_json"].(string)
				blk["partial_json"] = s + d["partial_json"].(string)
			case "signature_delta":
			default:
				t.Fatalf("delta type %v", d["type"])
			}
		case "content_block_stop":
			if int(num(e.data["index"])) != open {
				t.Fatalf("stop for block %v while %d is open", e.data["index"], open)
			}
			open = -1
		default:
			t.Fatalf("unexpected event %s: %v", e.name, e.data)
		}
	}
	if open >= 0 {
		t.Fatalf("block %d never stopped", open)
	}
	md := evs[len(evs)-2].data
	f.reason = md["delta"].(map[string]any)["stop_reason"]
	f.usage = md["usage"].(map[string]any)
	return f
}

func TestMessagesText(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 1})
	msgs := []any{map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": "Tell me a story about a fox."}}}}
	body := map[string]any{"model": "claude-test", "system": "You are a helpful assistant.", "messages": msgs, "max_tokens": 12, "temperature": 0}
	r := postOK(t, ts.URL+messagesURL, body)
	if r["type"] != "message" || r["role"] != "assistant" || r["model"] != "claude-test" || r["stop_reason"] != "max_tokens" || r["stop_sequence"] != nil {
		t.Fatalf("message %v", r)
	}
	content := r["content"].([]any)
	if len(content) != 1 || content[0].(map[string]any)["type"] != "text" {
		t.Fatalf("content %v", content)
	}
	text := content[0].(map[string]any)["text"].(string)
	u := r["usage"].(map[string]any)
	if num(u["output_tokens"]) != 12 {
		t.Errorf("usage %v", u)
	}

	// The same conversation through the chat route gives the same text.
	cm, _ := message(t, postOK(t, ts.URL+chatURL, map[string]any{"messages": []any{
		map[string]any{"role": "system", "content": "You are a helpful assistant."},
		map[string]any{"role": "user", "content": "Tell me a story about a fox."}}, "max_tokens": 12, "temperature": 0}))
	if cm["content"] != text {
		t.Errorf("messages %q, chat %q", text, cm["content"])
	}

	// count_tokens: the prompt's tokens (the slot now caches them).
	ct := postOK(t, ts.URL+messagesURL+"/count_tokens", body)
	r2 := postOK(t, ts.URL+messagesURL, body)
	u2 := r2["usage"].(map[string]any)
	if n := num(ct["input_tokens"]); n < 10 || n != num(u2["input_tokens"])+num(u2["cache_read_input_tokens"]) || num(u2["cache_read_input_tokens"]) == 0 {
		t.Errorf("count_tokens %v, usage %v", ct, u2)
	}

	// Streamed: the same text in Anthropic's events.
	f := foldMessages(t, streamMessages(t, ts.URL+messagesURL, body))
	if len(f.blocks) != 1 || f.blocks[0]["type"] != "text" || f.blocks[0]["text"] != text || f.reason != "max_tokens" || num(f.usage["output_tokens"]) != 12 {
		t.Errorf("streamed %+v, want %q", f, text)
	}

	// Stop sequences.
	words := strings.Fields(text)
	if len(words) > 2 {
		body["stop_sequences"], body["stream"] = []any{words[2]}, false
		r := postOK(t, ts.URL+messagesURL, body)
		if r["stop_reason"] != "stop_sequence" || r["stop_sequence"] != words[2] {
			t.Errorf("stop sequence %q: %v", words[2], r)
		}
	}
}

func TestMessagesTools(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 1})
	msgs := []any{map[string]any{"role": "user", "content": "What is the weather in Oslo?"}}
	body := func() map[string]any {
		return map[string]any{"messages": msgs, "tools": []any{anthropicWeather}, "tool_choice": map[string]any{"type": "any"}, "max_tokens": 120, "temperature": 0}
	}
	r := postOK(t, ts.URL+messagesURL, body())
	if r["stop_reason"] != "tool_use" {
		t.Fatalf("stop_reason %v: %v", r["stop_reason"], r)
	}
	var use map[string]any
	for _, c := range r["content"].([]any) {
		if c.(map[string]any)["type"] == "tool_use" {
			use = c.(map[string]any)
		}
	}
	if use == nil || use["name"] != "get_weather" || use["id"] == "" {
		t.Fatalf("content %v", r["content"])
	}
	args, _ := json.Marshal(use["input"])
	checkWeatherArgs(t, string(args))

	// Streamed: a tool_use block whose input_json_delta parts make the same input.
	f := foldMessages(t, streamMessages(t, ts.URL+messagesURL, body()))
	last := f.blocks[len(f.blocks)-1]
	if f.reason != "tool_use" || last["type"] != "tool_use" || last["name"] != "get_weather" {
		t.Fatalf("streamed %+v", f)
	}
	var in map[string]any
	if err := json.Unmarshal([]byte(last["partial_json"].(string)), &in); err != nil || !jsonEqual(in, use["input"]) {
		t.Errorf("streamed input %v (%v), want %v", last["partial_json"], err, use["input"])
	}

	// A named tool.
	b := body()
	b["tool_choice"] = map[string]any{"type": "tool", "name": "get_weather"}
	if r := postOK(t, ts.URL+messagesURL, b); r["stop_reason"] != "tool_use" {
		t.Errorf("named tool: %v", r)
	}

	// The round trip: the call and its result go back; the reply is text.
	convo := append(msgs,
		map[string]any{"role": "assistant", "content": []any{map[string]any{"type": "tool_use", "id": use["id"], "name": "get_weather", "input": use["input"]}}},
		map[string]any{"role": "user", "content": []any{
			map[string]any{"type": "tool_result", "tool_use_id": use["id"], "content": "12 degrees and raining"},
			map[string]any{"type": "text", "text": "Thanks!"}}})
	r = postOK(t, ts.URL+messagesURL, map[string]any{"messages": convo, "tools": []any{anthropicWeather}, "tool_choice": map[string]any{"type": "none"}, "max_tokens": 16, "temperature": 0})
	if c := r["content"].([]any); len(c) != 1 || c[0].(map[string]any)["type"] != "text" || r["stop_reason"] != "max_tokens" {
		t.Errorf("after the tool result: %v", r)
	}
	// The tool result is in the prompt.
	st, ab := post(t, ts.URL+"/apply-template", map[string]any{"messages": []any{map[string]any{"role": "tool", "tool_call_id": use["id"], "content": "12 degrees and raining"}}})
	if st != 200 || !strings.Contains(string(ab), "12 degrees and raining") {
		t.Errorf("apply-template with a tool message: %d %s", st, ab)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestMessagesThinking(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 1, ReasoningFormat: ReasoningDeepseek})
	body := func() map[string]any {
		return map[string]any{"messages": []any{map[string]any{"role": "user", "content": "2+2?"}}, "max_tokens": 60, "temperature": 0,
			"grammar": `root ::= "<think>Two and two.</think>\n\nFour."`}
	}
	r := postOK(t, ts.URL+messagesURL, body())
	c := r["content"].([]any)
	if len(c) != 2 || c[0].(map[string]any)["type"] != "thinking" || c[0].(map[string]any)["thinking"] != "Two and two." ||
		c[1].(map[string]any)["text"] != "Four." || r["stop_reason"] != "end_turn" {
		t.Fatalf("content %v, stop %v", c, r["stop_reason"])
	}
	f := foldMessages(t, streamMessages(t, ts.URL+messagesURL, body()))
	if len(f.blocks) != 2 || f.blocks[0]["thinking"] != "Two and two." || f.blocks[1]["text"] != "Four." || f.reason != "end_turn" {
		t.Errorf("streamed %+v", f.blocks)
	}
	// A thinking block in an earlier assistant turn is accepted.
	b := body()
	b["messages"] = []any{map[string]any{"role": "user", "content": "2+2?"},
		map[string]any{"role": "assistant", "content": []any{map[string]any{"type": "thinking", "thinking": "Two and two.", "signature": ""}, map[string]any{"type": "text", "text": "Four."}}},
		map[string]any{"role": "user", "content": "And 3+3?"}}
	postOK(t, ts.URL+messagesURL, b)
}

func TestMessagesErrors(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 1})
	for _, c := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"max_tokens": 4}, `"messages" is required`},
		{map[string]any{"messages": []any{map[string]any{"role": "robot", "content": "x"}}}, `must be "user" or "assistant"`},
		{map[string]any{"messages": []any{map[string]any{"role": "user", "content": []any{map[string]any{"type": "image", "source": map[string]any{}}}}}}, `"image" are not supported`},
		{map[string]any{"messages": []any{map[string]any{"role": "user", "content": "x"}}, "max_tokens": 0}, `"max_tokens" must be at least 1`},
		{map[string]any{"messages": []any{map[string]any{"role": "user", "content": "x"}}, "tool_choice": map[string]any{"type": "maybe"}}, `"tool_choice".type`},
		{map[string]any{"messages": []any{map[string]any{"role": "user", "content": "x"}}, "system": 5}, `"system" must be`},
	} {
		st, b := post(t, ts.URL+messagesURL, c.body)
		var e struct {
			Type  string
			Error struct{ Type, Message string }
		}
		json.Unmarshal(b, &e)
		if st != 400 || e.Type != "error" || e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, c.want) {
			t.Errorf("%v: %d %s, want 400 mentioning %q", c.body, st, b, c.want)
		}
	}
}
