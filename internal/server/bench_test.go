package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/testassets"
	"net/http"
	"sync"
	"testing"
	"time"
)

// BenchmarkDecodeSlots measures aggregate decode throughput through the
// HTTP API: each iteration runs one 64-token greedy completion per slot,
// all slots at once, and reports generated tokens per second of wall
// time (decode_tokens/s) with 1 and with 4 busy slots, for the embedded
// Q8_0 model and the shared f16 kvtest-27m. Prompts are short and cached,
// so the figure is decode speed.
//
//	go test -run XXX -bench DecodeSlots -benchtime 5x ./internal/server/
func BenchmarkDecodeSlots(b *testing.B) {
	for _, model := range []string{"q8_0", "f16"} {
		for _, slots := range []int{1, 4} {
			b.Run(fmt.Sprintf("model=%s/slots=%d", model, slots), func(b *testing.B) { benchDecode(b, model, slots) })
		}
	}
}

// benchF16 holds the f16 model between sub-benchmarks.
var benchF16 *engine.Engine

func benchDecode(b *testing.B, model string, slots int) {
	o := Options{Slots: slots, Ctx: slots * 1024, Logger: quietLog}
	if model == "f16" {
		if benchF16 == nil {
			e, err := engine.Load(testassets.Path(b, "models/kvtest-27m-f16.gguf"), 0)
			if err != nil {
				b.Fatal(err)
			}
			benchF16 = e
		}
		o.Engine = benchF16
	} else {
		e, err := engine.Load("", 0)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(e.Close) // after the server's cleanup (LIFO)
		o.Engine = e
	}
	s := New(o)
	if err := s.Load(); err != nil {
		b.Fatal(err)
	}
	ts := newHTTPTest(b, s)
	body := func(i int) map[string]any {
		return map[string]any{"prompt": loadPrompts[i], "n_predict": 64, "ignore_eos": true, "temperature": 0, "id_slot": i}
	}
	// Warm up: fill each slot's cache with its prompt.
	for i := 0; i < slots; i++ {
		postOK(b, ts.URL+"/completion", map[string]any{"prompt": loadPrompts[i], "n_predict": 1, "id_slot": i})
	}
	tokens := 0
	var decode time.Duration
	b.ResetTimer()
	for range b.N {
		var wg sync.WaitGroup
		got := make([]int, slots)
		errs := make([]error, slots)
		t0 := time.Now()
		for i := 0; i < slots; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				j, _ := json.Marshal(body(i))
				resp, err := http.Post(ts.URL+"/completion", "application/json", bytes.NewReader(j))
				if err != nil {
					errs[i] = err
					return
				}
				defer resp.Body.Close()
				var r struct {
					N int `json:"tokens_predicted"`
				}
				if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != 200 {
					errs[i] = fmt.Errorf("status %d, %v", resp.StatusCode, err)
				}
				got[i] = r.N
			}()
		}
		wg.Wait()
		for i := range slots {
			if errs[i] != nil {
				b.Fatal(errs[i])
			}
			tokens += got[i]
		}
		decode += time.Since(t0)
	}
	b.ReportMetric(float64(tokens)/decode.Seconds(), "decode_tokens/s")
	b.ReportMetric(decode.Seconds()*1e3/float64(b.N*64), "ms/step")
}
