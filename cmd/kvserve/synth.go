package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kvserve/kvserve/internal/synth"
	"github.com/kvserve/kvserve/internal/testassets"
)

func cmdSynth(args []string) error {
	f := newFlags("synth", "kvserve synth --preset NAME [--type T] [--seed N] [--layers N] -o FILE.gguf   |   kvserve synth --list")
	var preset, typ, out, shared string
	var seed uint64
	var layers, threads int
	var list bool
	f.String(&preset, "", "preset to write (see --list)", "preset")
	f.String(&typ, "f16", "weight type: "+strings.ToLower(typeNames()), "type")
	f.Uint64(&seed, 1, "random seed (same preset, seed and type: same bytes)", "seed")
	f.Int(&layers, 0, "number of layers (0: the model's real count; gemma3 needs 6 or more for a global layer)", "layers")
	f.String(&out, "", "output GGUF file", "o", "output")
	f.String(&shared, "", "shared assets directory holding the Llama-3 and SentencePiece vocabularies (default: $KVSERVE_SHARED or ../shared beside the checkout)", "shared")
	f.Int(&threads, 0, "threads (0: one per CPU)", "t", "threads")
	f.Bool(&list, false, "list the presets with their parameter counts and file sizes", "list")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q (see --help)", pos[0])
	}
	if shared == "" {
		shared, _ = testassets.Find()
	}
	src := synth.VocabSource{Shared: shared}
	ft, err := synth.ParseFileType(typ)
	if err != nil {
		return err
	}
	if list {
		return listPresets(ft, src)
	}
	if preset == "" || out == "" {
		f.usage(os.Stderr)
		return fmt.Errorf("give --preset and -o (or --list)")
	}
	p, err := synth.Lookup(preset)
	if err != nil {
		return err
	}
	if layers < 0 {
		return fmt.Errorf("--layers %d: must be positive", layers)
	}
	if p, err = p.WithLayers(layers); err != nil {
		return err
	}
	start := time.Now()
	o := &synth.Options{Preset: p, Type: ft, Seed: seed, Threads: threads, Vocab: src}
	if err := synth.WriteFile(out, o); err != nil {
		return err
	}
	st, err := os.Stat(out)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s: %s, %d layers, %.3fB parameters, %s, %.1f MiB in %.1fs\n", out, p.Name, p.NLayer,
		float64(p.ParamCount())/1e9, ft.Name, float64(st.Size())/(1<<20), time.Since(start).Seconds())
	return nil
}

func typeNames() string {
	var s []string
	for _, ft := range synth.FileTypes() {
		s = append(s, ft.Name)
	}
	return strings.Join(s, ", ")
}

func listPresets(ft synth.FileType, src synth.VocabSource) error {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "preset\tarch\tlayers\tn_embd\theads\tkv\thead_dim\tn_ff\tvocab\tparams\t%s MiB\tcopies\t\n", strings.ToLower(ft.Name))
	for _, p := range synth.Presets() {
		params, size, err := synth.Info(p, ft, src)
		sz := fmt.Sprintf("%.1f", float64(size)/(1<<20))
		if err != nil {
			sz = "(" + err.Error() + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.3fB\t%s\t%s\t\n", p.Name, p.Arch, p.NLayer, p.NEmbd, p.NHead, p.NHeadKV,
			p.HeadDim, p.NFF, p.NVocab, float64(params)/1e9, sz, p.Model)
	}
	return tw.Flush()
}
