package kernels

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGenerated checks that the committed assembly is what the generators
// write now (gen): each
// runs with -o into a temporary directory and every file it writes must
// equal the committed one byte for byte. After editing a generator run
// `go generate ./internal/kernels`.
func TestGenerated(t *testing.T) {
	checkGenerated(t, "gen")
}

// checkGenerated runs `go run ./dir -o tmp` for each generator directory
// (with the measuring knobs GEN_PREFETCH and GENLANES_PREFETCH unset, so
// the defaults are what is checked) and compares every file written with
// the one of the same name in the package directory.
func checkGenerated(t *testing.T, dirs ...string) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found: cannot run the generators to compare their output")
	}
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "GEN_PREFETCH=") && !strings.HasPrefix(e, "GENLANES_PREFETCH=") {
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
