package main

import (
	"fmt"
	"github.com/kvserve/kvserve/internal/gguf"
	"os"
)

func main() {
	f, err := gguf.Open(os.Args[1])
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("version", f.Version, "tensors", len(f.Tensors), "align", f.Alignment, "data", f.DataStart)
	for _, kv := range f.KVs {
		fmt.Printf("  %s = %s\n", kv.Key, kv.Value.Describe())
	}
	for i, t := range f.Tensors {
		if i < 14 || len(os.Args) > 2 {
			fmt.Printf("  %s %v %s off=%d size=%d\n", t.Name, t.Dims, t.Type, t.Offset, t.Size)
		}
	}
}
