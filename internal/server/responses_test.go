package server

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestResponses(t *testing.T) {
	_, ts := newTestServer(t, Options{Slots: 1})
	url := ts.URL + "/v1/responses"
	body := func() map[string]any {
		return map[string]any{"model": "m", "instructions": "You are a helpful assistant.", "input": "Tell me a story about a fox.", "max_output_tokens": 12, "temperature": 0}
	}
	r := postOK(t, url, body())
	if r["object"] != "response" || r["status"] != "incomplete" || r["model"] != "m" ||
		r["incomplete_details"].(map[string]any)["reason"] != "max_output_tokens" {
		t.Fatalf("response %v", r)
	}
	out := r["output"].([]any)
	msg := out[0].(map[string]any)
	part := msg["content"].([]any)[0].(map[string]any)
	text := part["text"].(string)
	if len(out) != 1 || msg["type"] != "message" || part["type"] != "output_text" || text == "" {
		t.Fatalf("output %v", out)
	}
	if u := r["usage"].(map[string]any); num(u["output_tokens"]) != 12 || num(u["total_tokens"]) != num(u["input_tokens"])+12 {
		t.Errorf("usage %v", u)
	}
	cm, _ := message(t, postOK(t, ts.URL+chatURL, map[string]any{"messages": []any{
		map[string]any{"role": "system", "content": "You are a helpful assistant."},
		map[string]any{"role": "user", "content": "Tell me a story about a fox."}}, "max_tokens": 12, "temperature": 0}))
	if cm["content"] != text {
		t.Errorf("responses %q, chat %q", text, cm["content"])
	}

	// Streamed: the event sequence and the same text.
	b := body()
	b["stream"] = true
	var names []string
	var deltas strings.Builder
	var final map[string]any
	for i, e := range streamNamed(t, url, b) {
		names = append(names, e.name)
		if num(e.data["sequence_number"]) != float64(i) {
			t.Errorf("event %d has sequence_number %v", i, e.data["sequence_number"])
		}
		switch e.name {
		case "response.output_text.delta":
			deltas.WriteString(e.data["delta"].(string))
		case "response.incomplete", "response.completed":
			final = e.data["response"].(map[string]any)
		}
	}
	want := []string{"response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"}
	tail := names[max(0, len(names)-4):]
	if len(names) < 9 || strings.Join(names[:4], ",") != strings.Join(want, ",") || strings.Join(tail, ",") != "response.output_text.done,response.content_part.done,response.output_item.done,response.incomplete" {
		t.Errorf("events %v", names)
	}
	if deltas.String() != text || final == nil || final["status"] != "incomplete" {
		t.Errorf("streamed %q (want %q), final %v", deltas.String(), text, final)
	}

	// Items as input, a forced function call, its output back.
	tools := []any{map[string]any{"type": "function", "name": "get_weather", "description": "Get the current weather in a city",
		"parameters": weatherTool["function"].(map[string]any)["parameters"]}}
	input := []any{map[string]any{"role": "user", "content": []any{map[string]any{"type": "input_text", "text": "What is the weather in Oslo?"}}}}
	r = postOK(t, url, map[string]any{"input": input, "tools": tools, "tool_choice": "required", "max_output_tokens": 120, "temperature": 0})
	var call map[string]any
	for _, it := range r["output"].([]any) {
		if it.(map[string]any)["type"] == "function_call" {
			call = it.(map[string]any)
		}
	}
	if call == nil || call["name"] != "get_weather" || r["status"] != "completed" {
		t.Fatalf("forced call: %v", r)
	}
	checkWeatherArgs(t, call["arguments"].(string))
	b = map[string]any{"input": input, "tools": tools, "tool_choice": "required", "max_output_tokens": 120, "temperature": 0, "stream": true}
	var args strings.Builder
	for _, e := range streamNamed(t, url, b) {
		if e.name == "response.function_call_arguments.delta" {
			args.WriteString(e.data["delta"].(string))
		}
	}
	if args.String() != call["arguments"] {
		t.Errorf("streamed arguments %q, want %q", args.String(), call["arguments"])
	}
	input = append(input, map[string]any{"type": "function_call", "call_id": call["call_id"], "name": "get_weather", "arguments": call["arguments"]},
		map[string]any{"type": "function_call_output", "call_id": call["call_id"], "output": "12 degrees and raining"})
	r = postOK(t, url, map[string]any{"input": input, "tools": tools, "max_output_tokens": 8, "temperature": 0, "tool_choice": "none"})
	if r["output"].([]any)[0].(map[string]any)["type"] != "message" {
		t.Errorf("after the call's output: %v", r)
	}

	// Structured output.
	r = postOK(t, url, map[string]any{"input": "A person", "max_output_tokens": 80, "temperature": 0,
		"text": map[string]any{"format": map[string]any{"type": "json_schema", "name": "p", "schema": map[string]any{
			"type": "object", "properties": map[string]any{"age": map[string]any{"type": "integer"}}, "required": []any{"age"}, "additionalProperties": false}}}})
	jt := r["output"].([]any)[0].(map[string]any)["content"].([]any)[0].(map[string]any)["text"].(string)
	var v map[string]any
	if err := json.Unmarshal([]byte(jt), &v); err != nil || len(v) != 1 {
		t.Errorf("json_schema output %q: %v", jt, err)
	}

	for _, bad := range []map[string]any{{"input": 3}, {"input": "x", "previous_response_id": "resp_1"}, {"input": "x", "store": true},
		{"input": []any{map[string]any{"type": "input_image"}}}, {"input": "x", "tools": []any{map[string]any{"type": "web_search"}}}} {
		st, b := post(t, url, bad)
		wantError(t, "bad responses request", st, b, 400, TypeInvalidRequest)
	}
}

// streamNamed reads a stream of named SSE events.
func streamNamed(t *testing.T, url string, body map[string]any) []anthropicEvent {
	t.Helper()
	return streamMessages(t, url, body)
}
