// Package gencheck checks that committed generated files (the kernels'
// assembly) are what their generators write now. Tests of the kernel
// packages call Check; it runs each generator with `go run ./DIR -o TMP`
// and compares every file written with the committed one byte for byte.
package gencheck

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// knobs are the generators' environment variables for measuring other
// settings (prefetch distances and switches): unset when checking, so the
// defaults are what is compared.
var knobs = []string{"GEN_PREFETCH=", "GENLANES_PREFETCH=", "GENLANES_Q8PREFETCH="}

// Check runs `go run ./dir -o tmp` for each generator directory (relative
// to the test's package directory) and reports every written file that
// differs from the file of the same name in the package directory. It
// skips the test where the go command or a generator cannot run.
func Check(t *testing.T, dirs ...string) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found: cannot run the generators to compare their output")
	}
	var env []string
	for _, e := range os.Environ() {
		if !isKnob(e) {
			env = append(env, e)
		}
	}
	for _, dir := range dirs {
		tmp := t.TempDir()
		cmd := exec.Command(goBin, "run", "./"+dir, "-o", tmp)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Skipf("go run ./%s is not runnable here (%v): %s", dir, err, out)
		}
		files, err := os.ReadDir(tmp)
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("%s wrote no files", dir)
		}
		for _, f := range files {
			want, err := os.ReadFile(filepath.Join(tmp, f.Name()))
			if err != nil {
				t.Fatal(err)
			}
			have, err := os.ReadFile(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(have, want) {
				t.Errorf("%s is not what %s/main.go writes: run go generate", f.Name(), dir)
			}
		}
	}
}

func isKnob(e string) bool {
	for _, k := range knobs {
		if strings.HasPrefix(e, k) {
			return true
		}
	}
	return false
}
