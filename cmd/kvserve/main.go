// Command kvserve runs GGUF language models on the CPU: text generation,
// perplexity and KL-divergence measurement, model quantization, benchmarks,
// and an HTTP server compatible with llama-server and the OpenAI API.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/server"
)

type command struct {
	name    string
	summary string
	run     func(args []string) error
}

var commands []command

func init() {
	commands = []command{
		{"run", "generate text from a prompt", cmdRun},
		{"perplexity", "measure perplexity (and KL divergence against a base run) on a text file", cmdPerplexity},
		{"tune-cache", "choose per-layer K/V cache types under a bits budget from a per-layer KL-divergence screen", cmdTuneCache},
		{"quantize", "quantize a GGUF model: kvserve quantize IN.gguf OUT.gguf TYPE", cmdQuantize},
		{"serve", "serve the llama-server and OpenAI HTTP APIs", cmdServe},
		{"bench", "measure prompt and generation speed and decode efficiency", cmdBench},
		{"synth", "write a random-weight GGUF model in the shape of a real one (--list: the presets)", cmdSynth},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `kvserve: LLM inference on the CPU with a live, typed KV cache.

Usage: kvserve <command> [flags]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, `
Run "kvserve help <command>" (or "kvserve <command> --help") for a
command's flags, "kvserve --version" for the version. Without -m, commands
use the embedded default model (kvtest-27m, Q8_0: a small test model).
`)
}

func main() {
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	if err := cpu.EnvError(); err != nil {
		fmt.Fprintf(os.Stderr, "kvserve: %v\n", err)
		os.Exit(2)
	}
	name := os.Args[1]
	switch name {
	case "-h", "--help":
		usage(os.Stdout)
		return
	case "help":
		// "kvserve help CMD" is "kvserve CMD --help".
		if len(os.Args) > 2 {
			name = os.Args[2]
			for _, c := range commands {
				if c.name == name {
					c.run([]string{"--help"})
					return
				}
			}
			fmt.Fprintf(os.Stderr, "kvserve: unknown command %q\n\n", name)
			usage(os.Stderr)
			os.Exit(2)
		}
		usage(os.Stdout)
		return
	case "--version", "-version", "version":
		fmt.Printf("kvserve %s (%s, %s/%s)\n", server.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return
	}
	for _, c := range commands {
		if c.name == name {
			err := c.run(os.Args[2:])
			if errors.Is(err, flag.ErrHelp) {
				return
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "kvserve %s: %v\n", name, err)
				os.Exit(1)
			}
			return
		}
	}
	fmt.Fprintf(os.Stderr, "kvserve: unknown command %q\n\n", name)
	usage(os.Stderr)
	os.Exit(2)
}

// flags wraps a FlagSet so options can have llama.cpp's short and long
// names (e.g. -c and --ctx-size), listed together in the help.
type flags struct {
	fs       *flag.FlagSet
	aliases  map[string][]string // primary name -> other names
	order    []string
	synopsis string
}

func newFlags(name, synopsis string) *flags {
	f := &flags{fs: flag.NewFlagSet(name, flag.ContinueOnError), aliases: map[string][]string{}, synopsis: synopsis}
	f.fs.SetOutput(io.Discard)
	return f
}

// given reports whether any of the names was on the command line.
func (f *flags) given(names ...string) bool {
	found := false
	f.fs.Visit(func(fl *flag.Flag) {
		for _, n := range names {
			if fl.Name == n {
				found = true
			}
		}
	})
	return found
}

// section starts a titled group of flags in the help.
func (f *flags) section(title string) { f.order = append(f.order, "#"+title) }

func (f *flags) names(n []string) {
	f.order = append(f.order, n[0])
	f.aliases[n[0]] = n[1:]
}

func (f *flags) String(p *string, def, help string, names ...string) {
	for _, n := range names {
		f.fs.StringVar(p, n, def, help)
	}
	f.names(names)
}

func (f *flags) Int(p *int, def int, help string, names ...string) {
	for _, n := range names {
		f.fs.IntVar(p, n, def, help)
	}
	f.names(names)
}

func (f *flags) Uint64(p *uint64, def uint64, help string, names ...string) {
	for _, n := range names {
		f.fs.Uint64Var(p, n, def, help)
	}
	f.names(names)
}

func (f *flags) Float(p *float64, def float64, help string, names ...string) {
	for _, n := range names {
		f.fs.Float64Var(p, n, def, help)
	}
	f.names(names)
}

func (f *flags) Float32(p *float32, def float32, help string, names ...string) {
	*p = def
	for _, n := range names {
		f.fs.Var((*float32Value)(p), n, help)
	}
	f.names(names)
}

type float32Value float32

func (v *float32Value) String() string { return fmt.Sprint(float32(*v)) }
func (v *float32Value) Set(s string) error {
	var x float64
	if _, err := fmt.Sscan(s, &x); err != nil {
		return fmt.Errorf("not a number: %q", s)
	}
	*v = float32Value(x)
	return nil
}

// Var registers a flag.Value under names.
func (f *flags) Var(v flag.Value, help string, names ...string) {
	for _, n := range names {
		f.fs.Var(v, n, help)
	}
	f.names(names)
}

func (f *flags) Bool(p *bool, def bool, help string, names ...string) {
	for _, n := range names {
		f.fs.BoolVar(p, n, def, help)
	}
	f.names(names)
}

// Switch registers names that set *p to `to` when given (a pair such as
// --cache-prompt / --no-cache-prompt: the last one given wins).
func (f *flags) Switch(p *bool, to bool, help string, names ...string) {
	for _, n := range names {
		f.fs.Var(&switchValue{p, to}, n, help)
	}
	f.names(names)
}

type switchValue struct {
	p  *bool
	to bool
}

func (v *switchValue) String() string   { return "" }
func (v *switchValue) IsBoolFlag() bool { return true }
func (v *switchValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*v.p = b == v.to
	return nil
}

func dash(n string) string {
	if (len(n) <= 3 && n != "fit") || shortNames[n] {
		return "-" + n
	}
	return "--" + n
}

func (f *flags) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s\n\nFlags:\n", f.synopsis)
	for _, n := range f.order {
		if h, ok := strings.CutPrefix(n, "#"); ok {
			fmt.Fprintf(w, "\n%s\n", h)
			continue
		}
		fl := f.fs.Lookup(n)
		all := append([]string{n}, f.aliases[n]...)
		sort.SliceStable(all, func(i, j int) bool { return len(all[i]) < len(all[j]) })
		var parts []string
		for _, a := range all {
			parts = append(parts, dash(a))
		}
		arg := ""
		if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
			arg = " " + argName(fl)
		}
		def := ""
		if fl.DefValue != "" && fl.DefValue != "false" && fl.DefValue != "0" {
			def = fmt.Sprintf(" (default %s)", fl.DefValue)
		}
		fmt.Fprintf(w, "  %s%s\n        %s%s\n", strings.Join(parts, ", "), arg, fl.Usage, def)
	}
}

func argName(fl *flag.Flag) string {
	name, _ := flag.UnquoteUsage(fl)
	if name == "" || name == "value" {
		return "X"
	}
	return strings.ToUpper(name)
}

// parse parses args, allowing flags before, between and after positional
// arguments, which it returns; --help prints the usage to stdout and
// returns flag.ErrHelp; other errors name the problem and point at --help.
func (f *flags) parse(args []string) ([]string, error) {
	args = expandOptional(args)
	var pos []string
	for {
		err := f.fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			f.usage(os.Stdout)
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("%v (see --help)", err)
		}
		rest := f.fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
