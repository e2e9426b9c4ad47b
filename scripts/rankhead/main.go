// Command rankhead writes a copy of a GGUF model with a random rank head
// (synth.WithRankHead: labels "yes" and "no", seed 1), for the rerank parity
// fixture (scripts/embed-llamacpp.sh).
//
//	go run ./scripts/rankhead SRC.gguf DST.gguf
package main

import (
	"fmt"
	"os"

	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/synth"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: rankhead SRC.gguf DST.gguf")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "rankhead:", err)
		os.Exit(1)
	}
}

func run(src, dst string) error {
	f, err := gguf.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if err := synth.WithRankHead(f, out, []string{"yes", "no"}, 1); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
