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

// A llama-server command line is accepted: implemented flags are used,
// flags meaningless on the CPU are noted in the log, and flags that would
// change results are refused by name. (The host cannot be listened on, so
// the command stops right after checking its flags.)
func TestLlamaServerCommandLine(t *testing.T) {
	bad := []string{"--host", "256.0.0.1", "--port", "0"}
	out, err := kvserve(t, append([]string{"serve", "-m", "model.gguf", "-c", "4096", "-np", "2", "-t", "2", "-n", "64",
		"--temp", "0.7", "--top-k", "20", "--top-p", "0.9", "--min-p", "0.1", "--seed", "42", "--repeat-penalty", "1.1",
		"--chat-template", "chatml", "--jinja", "-ngl", "99", "-fa", "--cont-batching", "--no-webui", "--api-key", "a,b",
		"-ctk", "q8_0", "-ctv", "q8_0", "--ctx-size", "4096", "--batch-size", "512", "-ub", "512", "--alias", "m",
		"-a", "m", "--cache-reuse", "0", "--no-cache-prompt", "--cache-prompt", "-nkvo", "--mlock", "-fa", "on",
		"--flash-attn", "auto", "--reasoning-budget", "0", "--keep", "-1", "--metrics", "--slots", "-lv", "3",
		"--samplers", "penalties;dry;top_k;temperature", "--dry-multiplier", "0.8", "--dry-sequence-breaker", "\n",
		"-l", "5-inf", "--logit-bias", "7+1.5e-1", "--mirostat", "2", "--mirostat-lr", "0.2", "--typical", "0.9",
		"--xtc-probability", "0.1", "--top-nsigma", "1.5", "--dynatemp-range", "0.2"}, bad...)...)
	if err == nil || !strings.Contains(out, "256.0.0.1") {
		t.Fatalf("want the listen error only: %v\n%s", err, out)
	}
	for _, note := range []string{"-ngl 99 ignored", "-nkvo ignored", "--mlock ignored", "--flash-attn auto ignored", "--cont-batching ignored", "-ub 512 ignored"} {
		if !strings.Contains(out, note) {
			t.Errorf("no note %q in\n%s", note, out)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--rope-scaling", "linear"}, "--rope-scaling: kvserve does not implement"},
		{[]string{"-hf", "org/model"}, "does not download"},
		{[]string{"--mmproj", "x.gguf"}, "--mmproj: kvserve serves text models only"},
		{[]string{"--chat-template", "vicuna"}, "does not build in"},
		{[]string{"--chat-template", "nonsense"}, "is not a chat template name"},
		{[]string{"--reasoning-budget", "100"}, "--reasoning-budget"},
		{[]string{"--top-p", "2"}, "top_p must be between 0 and 1"},
		{[]string{"--samplers", "top_k;bogus"}, "unknown sampler"},
		{[]string{"--sampling-seq", "kq"}, "unknown sampler letter"},
		{[]string{"-l", "abc"}, "want TOKEN_ID+BIAS"},
		{[]string{"--mirostat", "3"}, "mirostat must be 0"},
		{[]string{"--no-such-flag"}, "flag provided but not defined: -no-such-flag"},
		{[]string{"--grammar", `root ::= "a`}, "--grammar: "},
		{[]string{"-j", `{"type":"object","not":{}}`}, "--json-schema: "},
		{[]string{"-j", `{"type":`}, "--json-schema: not valid JSON"},
		{[]string{"--grammar", `root ::= "a"`, "-j", `{}`}, "give only one of --grammar"},
		{[]string{"--grammar-file", "/nonexistent/g.gbnf"}, "--grammar-file: "},
		{[]string{"-jf", "/nonexistent/s.json"}, "--json-schema-file: "},
	} {
		out, err := kvserve(t, append(append([]string{"serve"}, c.args...), bad...)...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("%v: want an error with %q, got %v\n%s", c.args, c.want, err, out)
		}
	}
	// A default grammar or JSON schema compiles and the server starts.
	dir := t.TempDir()
	gf, sf := dir+"/g.gbnf", dir+"/s.json"
	os.WriteFile(gf, []byte(`root ::= "yes" | "no"`), 0o644)
	os.WriteFile(sf, []byte(`{"type":"object","properties":{"a":{"type":"integer"}}}`), 0o644)
	for _, args := range [][]string{{"--grammar", `root ::= "yes" | "no"`}, {"--grammar-file", gf},
		{"-j", `{"type":"array","items":{"type":"string"}}`}, {"--json-schema", `{}`}, {"-jf", sf}, {"--json-schema-file", sf}} {
		out, err := kvserve(t, append(append([]string{"serve"}, args...), bad...)...)
		if err == nil || !strings.Contains(out, "256.0.0.1") {
			t.Errorf("%v: want the listen error only: %v\n%s", args, err, out)
		}
	}
	// --cache-prompt is llama-server's boolean; the role cache types are
	// --cache-type-prompt and the like.
	out, err = kvserve(t, append([]string{"serve", "--cache-type-prompt", "q8_0", "--cache-type-generated", "f16", "--cache-type-reasoning", "q4_0"}, bad...)...)
	if err == nil || !strings.Contains(out, "256.0.0.1") {
		t.Errorf("role cache types: %v\n%s", err, out)
	}
	if out, err := kvserve(t, "serve", "--help"); err != nil || !strings.Contains(out, "-ngl, --gpu-layers, --n-gpu-layers X") || !strings.Contains(out, "--cache-type-prompt") || !strings.Contains(out, "-cram, --cache-ram") || !strings.Contains(out, "--cache-evict") || !strings.Contains(out, "--cache-spill-type") {
		t.Errorf("help: %v\n%s", err, out)
	}
}

// A per-layer cold tier the model cannot take is refused when the model
// loads, naming the flag given, not the policy's JSON field.
func TestServeColdLayersError(t *testing.T) {
	out, err := kvserve(t, "serve", "--port", "0", "--cache-hot", "16", "--cache-cold-k-layers", "99:q4_0")
	if err == nil || !strings.Contains(out, "kvserve serve: --cache-cold-k-layers: layer 99 does not exist") || strings.Contains(out, "cold_k_layers") {
		t.Errorf("want the flag named: %v\n%s", err, out)
	}
	out, err = kvserve(t, "serve", "--port", "0", "--cache-hot", "16", "--cache-cold-v-layers", "0:f32")
	if err == nil || !strings.Contains(out, "--cache-cold-v-layers: layer 0: cold type f32 has more bits") || strings.Contains(out, "cold_v_layers") {
		t.Errorf("want the flag named: %v\n%s", err, out)
	}
}
