package cpu

import (
	"os"
	"runtime"
	"strings"
	"testing"
)

func TestLevels(t *testing.T) {
	ls := Levels()
	if len(ls) == 0 || ls[0] != Generic {
		t.Fatalf("Levels() = %v", ls)
	}
	t.Logf("features %+v; paths: %v; float %v, block %v", Has(), ls, Float.Level(), Block.Level())
	defer SetLevel(ls[len(ls)-1])() // undo a KVSERVE_CPU cap
	for f := range numFamilies {
		fl := f.Levels()
		if fl[0] != Generic || fl[len(fl)-1] != f.Level() || f.Level() != f.Best() {
			t.Fatalf("%v: Levels() = %v, Level() = %v, Best() = %v", f, fl, f.Level(), f.Best())
		}
		if len(fl) > len(ls) {
			t.Fatalf("%v: Levels() = %v, more than the CPU's %v", f, fl, ls)
		}
	}
	for _, l := range ls {
		restore := SetLevel(l)
		for f := range numFamilies {
			if want := min(l, f.Best()); f.Level() != want {
				t.Fatalf("SetLevel(%v) left %v at %v, want %v", l, f, f.Level(), want)
			}
		}
		restore()
	}
	for f := range numFamilies {
		if f.Level() != f.Best() {
			t.Fatalf("restore did not restore %v: %v, best %v", f, f.Level(), f.Best())
		}
	}
}

func TestSetLevel(t *testing.T) {
	ls := Levels()
	defer SetLevel(ls[len(ls)-1])()
	restore := SetLevel(Generic)
	if Float.Level() != Generic || Block.Level() != Generic {
		t.Fatal("SetLevel(Generic) did not take")
	}
	restore()
	if Float.Level() != Float.Best() || Block.Level() != Block.Best() {
		t.Fatal("restore did not restore")
	}
	for _, l := range []Level{-1, ls[len(ls)-1] + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("SetLevel(%v), unsupported, did not panic", l)
				}
			}()
			SetLevel(l)
		}()
	}
}

// TestRequirements checks each family's feature requirements per level:
// every instruction-set extension the family's kernels use at a level is
// required for it, and a CPU lacking any of them gets a lower level.
func TestRequirements(t *testing.T) {
	all := Features{true, true, true, true, true, true, true, true, true, true, true, true, true, true}
	need := map[Family]map[Level][]string{
		Float: {
			AVX2:   {"AVX", "AVX2", "FMA", "F16C"},
			AVX512: {"AVX", "AVX2", "FMA", "F16C", "AVX512F", "AVX512BW", "AVX512VL"},
		},
		Block: {
			AVX2: {"AVX", "AVX2", "FMA", "F16C", "BMI1"},
			AVX512: {"AVX", "AVX2", "FMA", "F16C", "BMI1", "BMI2", "AVX512F", "AVX512BW", "AVX512VL",
				"AVX512DQ", "AVX512VNNI", "AVX512VBMI", "AVX512BITALG"},
		},
	}
	without := func(name string) Features {
		x := all
		p := map[string]*bool{"AVX": &x.AVX, "AVX2": &x.AVX2, "FMA": &x.FMA, "F16C": &x.F16C, "BMI1": &x.BMI1,
			"BMI2": &x.BMI2, "AVX512F": &x.AVX512F, "AVX512BW": &x.AVX512BW, "AVX512VL": &x.AVX512VL,
			"AVX512DQ": &x.AVX512DQ, "AVX512VNNI": &x.AVX512VNNI, "AVX512VBMI": &x.AVX512VBMI,
			"AVX512BITALG": &x.AVX512BITALG}[name]
		if p == nil {
			t.Fatalf("no feature %s", name)
		}
		*p = false
		return x
	}
	for f, levels := range need {
		if bestLevel(f, all) != AVX512 || bestLevel(f, Features{}) != Generic {
			t.Errorf("%v: best with every feature %v, with none %v", f, bestLevel(f, all), bestLevel(f, Features{}))
		}
		for l, names := range levels {
			for _, n := range names {
				if got := bestLevel(f, without(n)); got >= l {
					t.Errorf("%v without %s: level %v, want below %v", f, n, got, l)
				}
			}
		}
	}
	// AVX-512 without VNNI (Skylake-SP): float kernels keep AVX-512,
	// block kernels drop to AVX2.
	if x := without("AVX512VNNI"); bestLevel(Float, x) != AVX512 || bestLevel(Block, x) != AVX2 {
		t.Errorf("no VNNI: float %v, block %v", bestLevel(Float, x), bestLevel(Block, x))
	}
}

func TestParseLevel(t *testing.T) {
	for _, l := range []Level{Generic, AVX2, AVX512} {
		if got, err := ParseLevel(l.String()); got != l || err != nil {
			t.Errorf("ParseLevel(%q) = %v, %v", l.String(), got, err)
		}
	}
	if got, err := ParseLevel("AVX2"); got != AVX2 || err != nil {
		t.Errorf("ParseLevel(AVX2) = %v, %v", got, err)
	}
	for _, s := range []string{"", "sse4", "avx-512"} {
		if _, err := ParseLevel(s); err == nil {
			t.Errorf("ParseLevel(%q): no error", s)
		}
	}
}

// TestVendor checks the CPUID vendor string against /proc/cpuinfo's
// vendor_id where Linux reports one.
func TestVendor(t *testing.T) {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil || runtime.GOARCH != "amd64" {
		t.Skip("no /proc/cpuinfo or not amd64: nothing to compare with")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "vendor_id" {
			if got, want := Vendor(), strings.TrimSpace(v); got != want {
				t.Fatalf("Vendor() = %q, /proc/cpuinfo says %q", got, want)
			}
			if AMD() != (Vendor() == "AuthenticAMD") {
				t.Fatalf("AMD() = %v for vendor %q", AMD(), Vendor())
			}
			return
		}
	}
	t.Skip("/proc/cpuinfo has no vendor_id")
}
