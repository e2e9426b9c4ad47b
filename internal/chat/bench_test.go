package chat

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func benchTemplate(b *testing.B, name, bos, eos, caseName string) {
	src, err := os.ReadFile(filepath.Join("testdata", "templates", name+".jinja"))
	if err != nil {
		b.Fatal(err)
	}
	var cases map[string]testCase
	raw, err := os.ReadFile(filepath.Join("testdata", "cases.json"))
	if err != nil {
		b.Fatal(err)
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		b.Fatal(err)
	}
	tmpl, err := New(string(src), bos, eos)
	if err != nil {
		b.Fatal(err)
	}
	c := cases[caseName]
	extra := c.extra()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := tmpl.ApplyJSON(c.Messages, true, extra); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApplyQwen3MultiTurn(b *testing.B) {
	benchTemplate(b, "qwen3", "", "<|im_end|>", "multi_turn")
}

func BenchmarkApplyLlama31Tools(b *testing.B) {
	benchTemplate(b, "llama3.1", "<|begin_of_text|>", "<|eot_id|>", "tools_offered")
}

func BenchmarkCompileGptOss(b *testing.B) {
	src, err := os.ReadFile(filepath.Join("testdata", "templates", "extra-gpt-oss-20b.jinja"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(string(src), "", ""); err != nil {
			b.Fatal(err)
		}
	}
}
