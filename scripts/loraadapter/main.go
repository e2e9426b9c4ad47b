// Command loraadapter writes the LoRA parity test's adapter for a GGUF
// model (synth.TestLoraAdapter: random, rank 8, alpha 16, seed 1), for the
// fixture scripts/embed-llamacpp.sh writes.
//
//	go run ./scripts/loraadapter BASE.gguf ADAPTER.gguf
package main

import (
	"fmt"
	"os"

	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/synth"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: loraadapter BASE.gguf ADAPTER.gguf")
		os.Exit(2)
	}
	f, err := gguf.Open(os.Args[1])
	if err == nil {
		defer f.Close()
		var out *os.File
		if out, err = os.Create(os.Args[2]); err == nil {
			if err = synth.TestLoraAdapter(f, out); err == nil {
				err = out.Close()
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loraadapter:", err)
		os.Exit(1)
	}
}
