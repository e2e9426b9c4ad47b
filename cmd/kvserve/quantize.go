package main

import (
	"fmt"
	"os"

	"github.com/kvserve/kvserve/internal/quantize"
)

func cmdQuantize(args []string) error {
	f := newFlags("quantize", "kvserve quantize [-t THREADS] IN.gguf OUT.gguf TYPE   (TYPE: Q8_0, Q4_0, Q6_K, Q5_K_M, Q4_K_M, Q3_K_L, Q3_K_M, Q3_K_S, Q2_K, IQ4_XS, F16)")
	var threads int
	f.Int(&threads, 0, "threads (0: one per CPU)", "t", "threads")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 3 {
		f.usage(os.Stderr)
		return fmt.Errorf("want IN.gguf OUT.gguf TYPE, got %d arguments", len(pos))
	}
	return quantize.Run(pos[0], pos[1], pos[2], threads, os.Stderr)
}
