package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestMain lets the tests run the command itself: with KVSERVE_RUN_MAIN
// set, the test binary is kvserve (arguments after "--").
func TestMain(m *testing.M) {
	if os.Getenv("KVSERVE_RUN_MAIN") == "1" {
		i := slices.Index(os.Args, "--")
		os.Args = append([]string{"kvserve"}, os.Args[i+1:]...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func kvserve(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "KVSERVE_RUN_MAIN=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// "kvserve help serve" shows serve's flags; --version prints the version.
func TestHelpAndVersion(t *testing.T) {
	out, err := kvserve(t, "help", "serve")
	if err != nil || !strings.Contains(out, "--cors-origins") || !strings.Contains(out, "--api-key-file") || !strings.Contains(out, "--max-response-mib") {
		t.Errorf("help serve: %v\n%s", err, out)
	}
	out, err = kvserve(t, "--version")
	if err != nil || !strings.HasPrefix(out, "kvserve ") || !strings.Contains(out, "go1") {
		t.Errorf("--version: %v %q", err, out)
	}
	if out, err := kvserve(t, "help", "nonsense"); err == nil || !strings.Contains(out, "unknown command") {
		t.Errorf("help nonsense: %v %q", err, out)
	}
}

// Keys come from --api-key, $KVSERVE_API_KEY and --api-key-file (one per
// line, comments and blank lines skipped).
func TestAPIKeys(t *testing.T) {
	f := filepath.Join(t.TempDir(), "keys")
	os.WriteFile(f, []byte("# keys\nalpha\n\n  beta  \n"), 0o600)
	keys, err := apiKeys("", f, "gamma")
	if err != nil || !slices.Equal(keys, []string{"gamma", "alpha", "beta"}) {
		t.Errorf("keys %v, %v", keys, err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, []byte("# nothing\n"), 0o600)
	if _, err := apiKeys("", empty, ""); err == nil {
		t.Error("a key file without keys was accepted")
	}
	if _, err := apiKeys("", filepath.Join(t.TempDir(), "missing"), ""); err == nil {
		t.Error("a missing key file was accepted")
	}
	if keys, _ := apiKeys("", "", ""); len(keys) != 0 {
		t.Errorf("keys without any source: %v", keys)
	}
	// Bad origins are refused before anything starts.
	if out, err := kvserve(t, "serve", "--cors-origins", "evil.example", "--port", "0"); err == nil || !strings.Contains(out, "not an origin") {
		t.Errorf("bad --cors-origins: %v %q", err, out)
	}
}
