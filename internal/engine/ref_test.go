package engine_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/kvserve/kvserve/internal/testassets"
)

func loadGreedy(t *testing.T) []int {
	b, err := os.ReadFile(testassets.Path(t, "reference/kvtest-27m.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Greedy struct {
			Tokens []int `json:"tokens"`
		} `json:"greedy"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r.Greedy.Tokens
}
