package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kvserve/kvserve/internal/bench"
	"github.com/kvserve/kvserve/internal/engine"
)

func cmdBench(args []string) error {
	f := newFlags("bench", "kvserve bench [-m MODEL] [-p 512] [-n 128] [-d 0,1024,4096] [-ctk T -ctv T] [-t THREADS] [-r REPS] [-np N] [-o table|json]")
	var model, depths, output string
	var threads, prompt, gen, reps, batch, parallel int
	var cache engine.CacheOptions
	f.String(&model, "", "model file (GGUF); default: the embedded kvtest-27m Q8_0", "m", "model")
	f.Int(&prompt, 512, "prompt tokens for the pp test (0: skip)", "p", "n-prompt")
	f.Int(&gen, 128, "generated tokens for the tg test (0: skip)", "n", "n-gen")
	f.String(&depths, "0", "comma-separated cache depths to run the tests at", "d", "n-depth")
	f.Int(&threads, 0, "threads (0: one per CPU)", "t", "threads")
	f.Int(&reps, 3, "repetitions of each test (median reported)", "r", "repetitions")
	f.Int(&batch, engine.DefaultBatch, "prompt micro-batch size", "b", "batch-size")
	f.Int(&parallel, 1, "sequences the tg test decodes at once (one token each per step, as busy server slots; aggregate t/s)", "np", "parallel")
	f.String(&output, "table", "output format: table or json", "o", "output")
	var allLogits bool
	f.Bool(&allLogits, false, "the prompt test computes logits at every token, as a speculative verification pass of -p tokens does (test named pvN)", "verify")
	var noRepack bool
	f.Bool(&noRepack, false, "keep weights in the file's layout (no repacking at load; for comparisons)", "no-repack")
	var cpuprofile string
	f.String(&cpuprofile, "", "write a CPU profile (pprof) of the run to FILE", "cpuprofile")
	registerCache(f, &cache)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	if parallel < 1 {
		return fmt.Errorf("-np must be at least 1, not %d", parallel)
	}
	if output != "table" && output != "json" {
		return fmt.Errorf("-o must be table or json, not %q", output)
	}
	var ds []int
	for _, d := range strings.Split(depths, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(d))
		if err != nil || v < 0 {
			return fmt.Errorf("bad depth %q in -d", d)
		}
		ds = append(ds, v)
	}
	t0 := time.Now()
	e, err := engine.LoadWith(model, threads, engine.LoadOptions{NoRepack: noRepack})
	if err != nil {
		return err
	}
	defer e.Close()
	if kb := procStatusKB("VmRSS", "RssFile", "RssAnon"); kb[0] > 0 {
		// Before any cache or benchmark buffer: the weights' footprint.
		fmt.Fprintf(os.Stderr, "bench: loaded in %.2f s; resident %.0f MB (file mapping %.0f MB, anonymous %.0f MB)\n",
			time.Since(t0).Seconds(), float64(kb[0])/1024, float64(kb[1])/1024, float64(kb[2])/1024)
	}
	if p := e.Packed; p.Matrices > 0 {
		fmt.Fprintf(os.Stderr, "bench: repacked %d weight matrices (%.0f MB) at load in %.2f s; %.0f MB of the file mapping released\n",
			p.Matrices, float64(p.Bytes)/1e6, p.Duration.Seconds(), float64(p.Released)/1e6)
	}
	stop, err := startCPUProfile(cpuprofile)
	if err != nil {
		return err
	}
	defer stop()
	res, err := bench.Run(e, bench.Options{Prompt: prompt, Gen: gen, Depths: ds, Reps: reps, Batch: batch, Cache: cache, Parallel: parallel, AllLogits: allLogits},
		func(s string) { fmt.Fprintln(os.Stderr, "bench:", s) })
	if err != nil {
		return err
	}
	if output == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Printf("| %-28s | %7s | %5s | %5s | %-13s | %16s | %9s | %9s | %5s |\n", "model", "threads", "ctk", "ctv", "test", "t/s (min-max)", "MB/token", "GB/s mem", "eff")
	fmt.Printf("|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", dashes(30), dashes(9), dashes(7), dashes(7), dashes(15), dashes(18), dashes(11), dashes(11), dashes(7))
	for _, r := range res {
		mb, gbs, eff := "", "", ""
		if r.BytesPerTok > 0 {
			mb = fmt.Sprintf("%.2f", r.BytesPerTok/1e6)
			gbs = fmt.Sprintf("%.1f", r.Bandwidth/1e9)
			eff = fmt.Sprintf("%.2f", r.Efficiency)
		}
		fmt.Printf("| %-28s | %7d | %5s | %5s | %-13s | %7.1f (%.0f-%.0f) | %9s | %9s | %5s |\n",
			short(r.Model, 28), r.Threads, r.TypeK, r.TypeV, r.Test, r.TPS, r.TPSMin, r.TPSMax, mb, gbs, eff)
	}
	return nil
}

func dashes(n int) string { return strings.Repeat("-", n) }

func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n+1:]
}
