package main

import (
	"fmt"
	"sort"
	"strings"
)

// llama-server's command line: the flags of llama-server that kvserve
// serve accepts beyond its own. Each is one of
//   - implemented (registered in serve.go with the same names);
//   - noted: meaningless for a CPU-only server, or a performance knob of
//     llama.cpp's that changes no result (-ngl, -fa, --mlock, -ub, ...):
//     accepted, and the log says once that it is ignored;
//   - refused: it would change results and kvserve does not implement it
//     (--rope-scaling, -hf, --mmproj, ...): the command exits with an
//     error naming the flag and why.

// shortNames are llama.cpp's single-dash names longer than three letters
// (the help writes them with one dash, as llama-server's does).
var shortNames = map[string]bool{
	"nkvo": true, "ncmoe": true, "cmoe": true, "ngld": true, "cram": true, "nocb": true, "devd": true,
	"ctkd": true, "ctvd": true, "ndio": true, "fitt": true, "fitc": true, "kvu": true, "lv": true,
}

// optionalValue are llama.cpp flags whose value may be left out (-fa
// alone means on; -fa on|off|auto is the newer form).
var optionalValue = map[string]bool{"fa": true, "flash-attn": true, "log-colors": true}

var optionalWords = map[string]bool{"on": true, "off": true, "auto": true, "true": true, "false": true,
	"1": true, "0": true, "enabled": true, "disabled": true}

// expandOptional rewrites "-fa" not followed by a value word into
// "-fa=on", so that Go's flag package (which needs a value for a non-bool
// flag) reads both forms.
func expandOptional(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		name := strings.TrimLeft(a, "-")
		if strings.HasPrefix(a, "-") && optionalValue[name] {
			if i+1 < len(args) && optionalWords[strings.ToLower(args[i+1])] {
				out = append(out, a+"="+args[i+1])
				i++
			} else {
				out = append(out, a+"=on")
			}
			continue
		}
		out = append(out, a)
	}
	return out
}

// compatFlag is a noted or refused flag's value: it records that the flag
// was given (and with what).
type compatFlag struct {
	names  []string
	why    string
	isBool bool
	given  bool
	value  string
	used   string // the name given
}

// compatName is one name of a compatFlag.
type compatName struct {
	*compatFlag
	name string
}

func (c compatName) Set(s string) error {
	c.used = c.name
	return c.compatFlag.Set(s)
}

func (c *compatFlag) String() string { return c.value }
func (c *compatFlag) Set(s string) error {
	c.given, c.value = true, s
	return nil
}
func (c *compatFlag) IsBoolFlag() bool { return c.isBool }

func (c *compatFlag) flagName() string {
	if c.used != "" {
		return dash(c.used)
	}
	return dash(c.names[len(c.names)-1])
}

// llamaCompat holds the noted and refused flags of a flag set.
type llamaCompat struct {
	noted, refused []*compatFlag
}

func (lc *llamaCompat) add(f *flags, list *[]*compatFlag, isBool bool, why string, names ...string) {
	c := &compatFlag{names: names, why: why, isBool: isBool}
	help := why
	for _, n := range names {
		f.fs.Var(compatName{c, n}, n, help)
	}
	f.names(names)
	*list = append(*list, c)
}

func (lc *llamaCompat) note(f *flags, isBool bool, why string, names ...string) {
	lc.add(f, &lc.noted, isBool, why, names...)
}

func (lc *llamaCompat) refuse(f *flags, isBool bool, why string, names ...string) {
	lc.add(f, &lc.refused, isBool, why, names...)
}

// check returns an error naming the first refused flag given.
func (lc *llamaCompat) check() error {
	for _, c := range lc.refused {
		if c.given {
			return fmt.Errorf("%s: %s", c.flagName(), c.why)
		}
	}
	return nil
}

// notes returns one line per noted flag given.
func (lc *llamaCompat) notes() []string {
	var out []string
	for _, c := range lc.noted {
		if c.given {
			v := ""
			if !c.isBool {
				v = " " + c.value
			}
			out = append(out, fmt.Sprintf("%s%s ignored: %s", c.flagName(), v, c.why))
		}
	}
	sort.Strings(out)
	return out
}

const (
	whyGPU     = "kvserve runs on the CPU only (no GPU offload)"
	whyThreads = "kvserve schedules its own worker threads (-t sets how many)"
	whyMem     = "kvserve manages its own memory (the cache is paged; the model file is memory-mapped)"
)

// registerLlamaCompat registers llama-server's flags that kvserve notes
// or refuses.
func registerLlamaCompat(f *flags, lc *llamaCompat) {
	f.section("llama-server flags that mean nothing here (accepted; the log notes each one given):")
	// GPU and offload.
	lc.note(f, false, whyGPU, "ngl", "gpu-layers", "n-gpu-layers")
	lc.note(f, false, whyGPU, "ngld", "gpu-layers-draft", "n-gpu-layers-draft")
	lc.note(f, false, whyGPU, "sm", "split-mode")
	lc.note(f, false, whyGPU, "ts", "tensor-split")
	lc.note(f, false, whyGPU, "mg", "main-gpu")
	lc.note(f, false, whyGPU, "dev", "device")
	lc.note(f, false, whyGPU, "devd", "device-draft")
	lc.note(f, false, whyGPU, "ot", "override-tensor")
	lc.note(f, true, whyGPU, "cmoe", "cpu-moe")
	lc.note(f, false, whyGPU, "ncmoe", "n-cpu-moe")
	lc.note(f, true, whyGPU, "nkvo", "no-kv-offload")
	lc.note(f, true, whyGPU, "kvo", "kv-offload")
	lc.note(f, true, whyGPU, "no-op-offload")
	lc.note(f, true, whyGPU, "op-offload")
	lc.note(f, false, whyGPU+": nothing to fit", "fit")
	lc.note(f, false, whyGPU+": nothing to fit", "fitt", "fit-target")
	lc.note(f, false, whyGPU+": nothing to fit", "fitc", "fit-ctx")
	lc.note(f, false, "kvserve's attention is its own fused CPU kernel (there is no other path to choose)", "fa", "flash-attn")
	lc.note(f, true, "kvserve always batches continuously", "cb", "cont-batching")
	lc.note(f, true, "kvserve always batches continuously", "nocb", "no-cont-batching")
	lc.note(f, true, "each slot has its own paged cache", "kvu", "kv-unified")
	lc.note(f, true, "each slot has its own paged cache", "no-kvu", "no-kv-unified")
	lc.note(f, true, "kvserve repacks weights by default (--no-repack, -nr: keep the file's layout)", "repack")
	lc.note(f, true, whyMem, "mlock")
	lc.note(f, true, whyMem, "no-mmap")
	lc.note(f, true, whyMem, "mmap")
	lc.note(f, true, whyMem, "dio", "direct-io")
	lc.note(f, true, whyMem, "ndio", "no-direct-io")
	lc.note(f, false, whyMem, "numa")
	lc.note(f, true, "weights are checked as they load", "check-tensors")
	lc.note(f, true, "llama-server's host-memory prompt cache; kvserve keeps each slot's cache in its pages", "no-cache-idle-slots")
	lc.note(f, true, "llama-server's host-memory prompt cache; kvserve keeps each slot's cache in its pages", "cache-idle-slots")
	lc.note(f, false, "no checkpoints are needed: sliding-window layers keep their pages (see --swa-full; --ctx-checkpoints is for hybrid recurrent models)", "swa-checkpoints")
	lc.note(f, false, "deprecated in llama.cpp; kvserve's cache is paged and never fragments", "dt", "defrag-thold")
	// Threads and scheduling.
	lc.note(f, false, whyThreads, "tb", "threads-batch")
	lc.note(f, false, whyThreads, "threads-http")
	lc.note(f, false, "kvserve evaluates prompts in -b micro-batches", "ub", "ubatch-size")
	for _, n := range [][]string{{"C", "cpu-mask"}, {"Cr", "cpu-range"}, {"Cb", "cpu-mask-batch"}, {"Crb", "cpu-range-batch"},
		{"cpu-strict"}, {"cpu-strict-batch"}, {"prio"}, {"prio-batch"}, {"poll"}, {"poll-batch"}} {
		lc.note(f, false, whyThreads, n...)
	}
	lc.note(f, false, "kvserve chooses a slot by the longest cached prefix", "sps", "slot-prompt-similarity")
	lc.note(f, false, "kvserve's connections are bounded by the queue (--queue-timeout) and the client", "to", "timeout")
	lc.note(f, false, "kvserve does not sleep", "sleep-idle-seconds")
	lc.note(f, true, "kvserve needs no warm-up run", "no-warmup")
	lc.note(f, true, "kvserve needs no warm-up run", "warmup")
	lc.note(f, true, "kvserve never downloads (give -m FILE)", "offline")
	lc.note(f, true, "kvserve always renders chat templates with its Jinja engine", "jinja")
	lc.note(f, true, "kvserve always renders chat templates with its Jinja engine (the built-in names of --chat-template are Jinja sources too)", "no-jinja")
	lc.note(f, true, "kvserve serves no multimodal projector", "no-mmproj")
	lc.note(f, true, "kvserve serves no multimodal projector", "no-mmproj-offload")
	lc.note(f, true, "kvserve serves no multimodal projector", "mmproj-offload")
	lc.note(f, true, "prompts are not escaped by a server", "e", "escape")
	lc.note(f, true, "prompts are not escaped by a server", "no-escape")
	lc.note(f, true, "timings are in every response", "no-perf")
	lc.note(f, true, "timings are in every response", "perf")
	lc.note(f, true, "--log-level debug shows requests", "verbose-prompt")
	lc.note(f, false, "kvserve's log is plain text", "log-colors")
	lc.note(f, true, "kvserve's log lines carry their time", "log-timestamps")
	lc.note(f, true, "kvserve's log lines carry their level", "log-prefix")
	lc.note(f, true, "POST /props is not served; GET /props is", "props")
	// Speculative decoding is implemented (specFlags: -md, --draft-max,
	// --draft-min, --draft-p-min, -ctkd/-ctvd, --spec-type); the draft
	// model's own context and thread settings follow the main model's.
	why := "the draft model shares the main model's context size and threads"
	for _, n := range [][]string{{"cd", "ctx-size-draft"}, {"td", "threads-draft"}, {"tbd", "threads-batch-draft"}} {
		lc.note(f, false, why, n...)
	}
	lc.note(f, false, "the draft model must share the main model's vocabulary (no token translation)", "spec-replace")

	// Refused: they would change what the model computes or what the
	// server serves.
	f.section("llama-server flags kvserve refuses (not implemented; they would change results):")
	dl := "kvserve does not download models: give -m FILE (a local GGUF)"
	for _, n := range [][]string{{"hf", "hfr", "hf-repo"}, {"hff", "hf-file"}, {"hfv", "hfrv", "hf-repo-v"}, {"hffv", "hf-file-v"},
		{"hft", "hf-token"}, {"mu", "model-url"}, {"hfd", "hfrd", "hf-repo-draft"}, {"docker-repo", "dr"}} {
		lc.refuse(f, false, dl, n...)
	}
	rope := "kvserve does not implement overriding the model's RoPE/YaRN settings (it would change results); the model's own are used"
	for _, n := range [][]string{{"rope-scaling"}, {"rope-scale"}, {"rope-freq-base"}, {"rope-freq-scale"}, {"yarn-orig-ctx"},
		{"yarn-ext-factor"}, {"yarn-attn-factor"}, {"yarn-beta-slow"}, {"yarn-beta-fast"}} {
		lc.refuse(f, false, rope, n...)
	}
	lc.refuse(f, false, "self-extend is not implemented (it would change results)", "gan", "grp-attn-n")
	lc.refuse(f, false, "self-extend is not implemented (it would change results)", "gaw", "grp-attn-w")
	lc.refuse(f, false, "overriding model metadata is not implemented (it would change results)", "override-kv")
	lc.refuse(f, false, "control vectors are not implemented (they would change results)", "control-vector")
	lc.refuse(f, false, "control vectors are not implemented (they would change results)", "control-vector-scaled")
	lc.refuse(f, false, "control vectors are not implemented (they would change results)", "control-vector-layer-range")
	mm := "kvserve serves text models only (no multimodal projector)"
	lc.refuse(f, false, mm, "mm", "mmproj")
	lc.refuse(f, false, mm, "mmu", "mmproj-url")
	lc.refuse(f, false, mm, "media-path")
	lc.refuse(f, false, "router mode (several models) is not implemented: run one kvserve per model", "models-dir")
	lc.refuse(f, false, "router mode (several models) is not implemented: run one kvserve per model", "models-preset")
	lc.refuse(f, false, "router mode (several models) is not implemented: run one kvserve per model", "models-max")
	lc.refuse(f, true, "router mode (several models) is not implemented: run one kvserve per model", "no-models-autoload")
	lc.refuse(f, false, "serving other static files is not implemented (kvserve serves its own web page; --no-webui turns it off)", "path")
	lc.refuse(f, false, "a route prefix is not implemented: put a reverse proxy in front", "api-prefix")
}
