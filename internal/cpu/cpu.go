// Package cpu owns what the kernel packages know about the processor: the
// instruction-set extensions they use (read once from golang.org/x/sys/cpu),
// the level (generic, AVX2, AVX-512) each kernel family runs at, and the
// override tests and benchmarks use to force a level (SetLevel, Levels),
// and the KVSERVE_CPU environment variable that caps it for a process.
//
// The two kernel families need different extensions for the same level, so
// each has its own requirements and its own best level on a given CPU:
//
//	Float (internal/kernels):  AVX2   = AVX, AVX2, FMA, F16C
//	                           AVX512 = AVX2's set + AVX-512 F, BW, VL
//	Block (internal/qkernels): AVX2   = AVX, AVX2, FMA, F16C, BMI1
//	                           AVX512 = AVX2's set + BMI2 + AVX-512 F, BW,
//	                                    VL, DQ, VNNI, VBMI, BITALG
//
// The level is one setting: a family runs at the lower of the requested
// level and the best its requirements allow, so no kernel is ever
// dispatched on a CPU lacking an instruction it uses (on a CPU with AVX-512
// but no VNNI, Float runs AVX-512 and Block AVX2). Off amd64 every family
// is generic.
package cpu

import (
	"fmt"
	"os"
	"strings"
)

// Level identifies a kernel implementation path.
type Level int

const (
	// Generic is the portable pure-Go path.
	Generic Level = iota
	// AVX2 is the 256-bit VEX path.
	AVX2
	// AVX512 is the 512-bit EVEX path.
	AVX512
)

func (l Level) String() string {
	switch l {
	case Generic:
		return "generic"
	case AVX2:
		return "avx2"
	case AVX512:
		return "avx512"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// Features are the instruction-set extensions the kernels use, as
// golang.org/x/sys/cpu reports them (AVX and AVX-512 only when the OS
// saves their register state).
type Features struct {
	AVX, AVX2, FMA, F16C, BMI1, BMI2      bool
	AVX512F, AVX512BW, AVX512VL, AVX512DQ bool
	AVX512VNNI, AVX512VBMI, AVX512BITALG  bool
	// AVXVNNI (VEX VPDPBUSD on 256-bit registers) is not part of any
	// level: the block family's AVX2 kernels that have a variant using it
	// check it themselves.
	AVXVNNI bool
}

// Family is a set of kernels sharing one requirement per level.
type Family int

const (
	// Float is internal/kernels (f32/f16/bf16 kernels).
	Float Family = iota
	// Block is internal/qkernels (block-quantized kernels).
	Block
	numFamilies
)

func (f Family) String() string {
	switch f {
	case Float:
		return "float"
	case Block:
		return "block"
	}
	return fmt.Sprintf("Family(%d)", int(f))
}

// supports reports whether a CPU with features x can run family f's
// kernels of level l.
func (f Family) supports(l Level, x Features) bool {
	avx2 := x.AVX && x.AVX2 && x.FMA && x.F16C
	avx512 := x.AVX512F && x.AVX512BW && x.AVX512VL
	switch f {
	case Float:
	case Block:
		avx2 = avx2 && x.BMI1
		avx512 = avx512 && x.BMI2 && x.AVX512DQ && x.AVX512VNNI && x.AVX512VBMI && x.AVX512BITALG
	default:
		return false
	}
	switch l {
	case Generic:
		return true
	case AVX2:
		return avx2
	case AVX512:
		return avx2 && avx512
	}
	return false
}

func bestLevel(f Family, x Features) Level {
	for l := AVX512; l > Generic; l-- {
		if f.supports(l, x) {
			return l
		}
	}
	return Generic
}

var (
	features = detect()
	best     [numFamilies]Level
	top      Level              // the highest level any family supports
	current  [numFamilies]Level // min(requested, best[f])
)

func init() {
	for f := range numFamilies {
		best[f] = bestLevel(f, features)
		top = max(top, best[f])
	}
	current = best
	if s := os.Getenv(EnvVar); s != "" {
		name, vnni := strings.CutSuffix(strings.ToLower(s), "+vnni")
		l, err := ParseLevel(name)
		if err == nil && vnni && l != AVX2 {
			err = fmt.Errorf("+vnni applies to avx2 only")
		}
		if err == nil && l > top {
			err = fmt.Errorf("level %v not supported on this CPU (best is %v)", l, top)
		}
		if err != nil {
			envErr = fmt.Errorf("%s=%q: %w", EnvVar, s, err)
			return
		}
		SetLevel(l)
		if l < AVX512 && !vnni {
			features.AVXVNNI = false
		}
	}
}

// EnvVar is the environment variable that caps every family's level for
// the whole process (generic, avx2 or avx512), as SetLevel does: to run
// the AVX2 path on an AVX-512 machine, e.g. KVSERVE_CPU=avx2. Below
// avx512 it also hides AVX-VNNI (an AVX2-only machine such as an AMD EPYC
// before Zen 4 lacks it) unless the value is avx2+vnni (as on Intel's
// AVX2 client cores). Unset or empty: each family runs its best level.
const EnvVar = "KVSERVE_CPU"

var envErr error

// EnvError is the error of a bad EnvVar value (unknown, or a level this
// CPU lacks), which was then ignored; nil if it was unset or applied.
// Commands report it and exit.
func EnvError() error { return envErr }

// ParseLevel parses a level's name as Level.String writes it.
func ParseLevel(s string) (Level, error) {
	for l := Generic; l <= AVX512; l++ {
		if strings.EqualFold(s, l.String()) {
			return l, nil
		}
	}
	return Generic, fmt.Errorf("unknown CPU level %q (want generic, avx2 or avx512)", s)
}

// Has returns the CPU's features.
func Has() Features { return features }

// Level is the path family f's kernels currently use.
func (f Family) Level() Level { return current[f] }

// Best is the highest level family f can run on this CPU.
func (f Family) Best() Level { return best[f] }

// Levels lists the levels family f can run on this CPU, generic first,
// best last.
func (f Family) Levels() []Level { return levelsUpTo(best[f]) }

// Levels lists the levels SetLevel accepts on this CPU (those of the family
// that supports the most), generic first.
func Levels() []Level { return levelsUpTo(top) }

func levelsUpTo(b Level) []Level {
	out := make([]Level, 0, b+1)
	for l := Generic; l <= b; l++ {
		out = append(out, l)
	}
	return out
}

// SetLevel makes every family run at level l or, where a family's
// requirements stop below l, at its best (for tests and benchmarks), and
// returns a function restoring the previous levels. It panics if no family
// can run l on this CPU. It must not be called concurrently with kernel
// calls.
func SetLevel(l Level) (restore func()) {
	if l < Generic || l > top {
		panic(fmt.Sprintf("cpu: level %v not supported on this CPU (best is %v)", l, top))
	}
	prev := current
	for f := range numFamilies {
		current[f] = min(l, best[f])
	}
	return func() { current = prev }
}

// Vendor is the CPU's vendor string from CPUID ("GenuineIntel",
// "AuthenticAMD", ...; empty off amd64). Kernels use it only where a
// measured choice differs between vendors (software prefetch).
func Vendor() string { return cpuVendor }

// AMD reports whether the CPU is an AMD one.
func AMD() bool { return cpuVendor == "AuthenticAMD" }

var cpuVendor = vendor()
