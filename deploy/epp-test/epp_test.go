package epptest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	backendmetrics "sigs.k8s.io/gateway-api-inference-extension/pkg/epp/backend/metrics"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/config/loader"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/datalayer"
	fwkdl "sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/interface/datalayer"
	extractormetrics "sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/plugins/datalayer/extractor/metrics"
	sourcemetrics "sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/plugins/datalayer/source/metrics"
)

// The flag values docs/scale-out.md gives for EPPs configured by flags
// (v1.0 to v1.3, and v1.4+ with the enableLegacyMetrics feature gate).
var legacyFlags = backendmetrics.Config{
	ModelServerMetricsScheme:     "http",
	ModelServerMetricsPath:       "/metrics",
	TotalQueuedRequestsMetric:    "kvserve:num_requests_waiting",
	TotalRunningRequestsMetric:   "kvserve:num_requests_running",
	KVCacheUsagePercentageMetric: "kvserve:kv_cache_utilization",
	LoRAInfoMetric:               "",
	CacheInfoMetric:              "kvserve:cache_config_info",
}

// TestEndpointPicker runs kvserve as deploy/kubernetes deploys it and
// checks what the endpoint picker reads from it: idle, with every slot
// streaming and two requests queued, through a live requantization, and
// at rest, where its readings equal kvserve's own figures exactly.
func TestEndpointPicker(t *testing.T) {
	root := repoRoot(t)
	dep := readDeployment(t, filepath.Join(root, "deploy/kubernetes/deployment.yaml"))
	ctr := dep.Spec.Template.Spec.Containers[0]
	args := flagValues(ctr.Args)
	slots := atoi(t, args["--parallel"])
	slotPages := (atoi(t, args["--ctx-size"])/slots + 255) / 256
	budget := parseBytes(t, args["--cache-budget"])

	ks := startKvserve(t, root, ctr)
	picker := newPicker(t, filepath.Join(root, "deploy/kubernetes/epp-config.yaml"), ks.addr, dep.Spec.Template.Labels)

	// Idle.
	m := picker.poll(t)
	if m.WaitingQueueSize != 0 || m.RunningRequestsSize != 0 || m.KVCacheUsagePercent != 0 {
		t.Errorf("idle: the picker reads %+v", m)
	}
	if m.CacheBlockSize != 256 || m.CacheNumBlocks != slots*slotPages {
		t.Errorf("idle: block size %d, blocks %d; want 256 and %d slots x %d pages", m.CacheBlockSize, m.CacheNumBlocks, slots, slotPages)
	}
	picker.extractClean(t)

	// Every slot streams and two more requests wait for one. Wait until
	// the prompts are in the cache (the slots generate).
	ctx, cancelLoad := context.WithCancel(context.Background())
	defer cancelLoad()
	prompt := func(i int) string {
		return fmt.Sprintf("Request %d. %s", i, strings.Repeat("The quick brown fox jumps over the lazy dog. ", 60))
	}
	promptTokens := ks.tokens(t, prompt(0))
	var wg sync.WaitGroup
	for i := range slots + 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			streamCompletion(ctx, ks.addr, prompt(i))
		}()
	}
	deadline := time.Now().Add(2 * time.Minute)
	for m = picker.poll(t); m.RunningRequestsSize != slots || m.WaitingQueueSize != 2 ||
		ks.metrics(t)["kvserve:kv_cache_tokens"] < float64(slots*(promptTokens+1)); m = picker.poll(t) {
		if time.Now().After(deadline) {
			t.Fatalf("under load the picker reads %d running, %d waiting; want %d and 2\n%s", m.RunningRequestsSize, m.WaitingQueueSize, slots, ks.metricsText(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m.KVCacheUsagePercent <= 0 || m.KVCacheUsagePercent > 1 {
		t.Errorf("under load: utilization %v, want in (0, 1]", m.KVCacheUsagePercent)
	}
	t.Logf("under load, kvserve's /metrics:\n%s", ks.metricsText(t))

	// A live requantization to q4_0 (from f16, q8_0 and q5_0 pages) lowers
	// the utilization the picker reads while the requests go on.
	before := picker.poll(t).KVCacheUsagePercent
	ks.requantize(t, "q4_0")
	after := picker.poll(t)
	if after.KVCacheUsagePercent >= 0.8*before || after.RunningRequestsSize != slots {
		t.Errorf("requantize to q4_0 under load: utilization %v -> %v, %d running", before, after.KVCacheUsagePercent, after.RunningRequestsSize)
	}
	t.Logf("under load: utilization %.6g, after requantize to q4_0 %.6g", before, after.KVCacheUsagePercent)

	// The requests end; their slots keep their cached prompts.
	cancelLoad()
	wg.Wait()
	deadline = time.Now().Add(time.Minute)
	for m = picker.poll(t); m.RunningRequestsSize != 0 || m.WaitingQueueSize != 0; m = picker.poll(t) {
		if time.Now().After(deadline) {
			t.Fatalf("after the requests the picker reads %+v", m)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// At rest the picker's reading is kvserve's figure exactly: cache bytes
	// over the budget. Requantizing up (to f16) raises it.
	for _, typ := range []string{"", "f16"} {
		if typ != "" {
			ks.requantize(t, typ)
		}
		m = picker.poll(t)
		own := ks.metrics(t)
		bytes := 0.0
		for k, v := range own {
			if strings.HasPrefix(k, "kvserve:kv_cache_bytes{") {
				bytes += v
			}
		}
		if bytes == 0 || m.KVCacheUsagePercent != own["kvserve:kv_cache_utilization"] || m.KVCacheUsagePercent != bytes/float64(budget) {
			t.Errorf("at rest (requantize %q): the picker reads utilization %v; kvserve reports %v, %v bytes / %d budget = %v",
				typ, m.KVCacheUsagePercent, own["kvserve:kv_cache_utilization"], bytes, budget, bytes/float64(budget))
		}
		if typ == "f16" && m.KVCacheUsagePercent <= after.KVCacheUsagePercent {
			t.Errorf("requantize up to f16: utilization %v, not above %v at q4_0", m.KVCacheUsagePercent, after.KVCacheUsagePercent)
		}
		picker.extractClean(t)
		// The flag-configured scraper of older pickers reads the same.
		legacy := picker.legacy(t)
		if legacy.WaitingQueueSize != m.WaitingQueueSize || legacy.RunningRequestsSize != m.RunningRequestsSize ||
			legacy.KVCacheUsagePercent != m.KVCacheUsagePercent || legacy.CacheBlockSize != m.CacheBlockSize || legacy.CacheNumBlocks != m.CacheNumBlocks {
			t.Errorf("flag-configured scraper reads %+v, the configured one %+v", legacy, m)
		}
	}
	ks.stop(t)
}

// repoRoot is the kvserve checkout this module sits in (deploy/epp-test).
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Clean(filepath.Join(wd, "..", ".."))
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !bytes.HasPrefix(b, []byte("module github.com/kvserve/kvserve\n")) {
		t.Fatalf("%s is not the kvserve checkout (run the test from deploy/epp-test): %v", root, err)
	}
	return root
}

func readDeployment(t *testing.T, path string) *appsv1.Deployment {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%s: want one container", path)
	}
	return &d
}

// flagValues maps "--name=value" arguments to their values ("" for a bare
// flag).
func flagValues(args []string) map[string]string {
	out := map[string]string{}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		out[k] = v
	}
	return out
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// parseBytes reads a size as --cache-budget takes it ("1536MiB").
func parseBytes(t *testing.T, s string) int64 {
	t.Helper()
	for _, u := range []struct {
		suffix string
		mul    int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v * u.mul
		}
	}
	t.Fatalf("cannot read the size %q", s)
	return 0
}

type kvserve struct {
	cmd  *exec.Cmd
	addr string
	log  *syncBuffer
	done chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startKvserve runs `kvserve serve` with the container's arguments and
// environment, on loopback, with the test model: the shared kvtest-27m
// f16 when present (KVSERVE_SHARED, or ../shared beside the checkout),
// else the embedded model. The binary is $KVSERVE_BIN, or built from the
// checkout.
func startKvserve(t *testing.T, root string, ctr corev1.Container) *kvserve {
	t.Helper()
	bin := os.Getenv("KVSERVE_BIN")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "kvserve")
		build := exec.Command("go", "build", "-o", bin, "./cmd/kvserve")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build ./cmd/kvserve: %v\n%s", err, out)
		}
	}
	shared := os.Getenv("KVSERVE_SHARED")
	if shared == "" {
		shared = filepath.Join(root, "..", "shared")
	}
	model := filepath.Join(shared, "models", "kvtest-27m-f16.gguf")
	if _, err := os.Stat(model); err != nil {
		if os.Getenv("KVSERVE_REQUIRE_SHARED") == "1" {
			t.Fatalf("test model: %v", err)
		}
		t.Logf("test model %s absent: using the embedded model", model)
		model = ""
	}

	env := map[string]string{"KVSERVE_THREADS": "2"} // the manifest takes it from the CPU limit
	for _, e := range ctr.Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		}
	}
	ref := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	var args []string
	for _, a := range ctr.Args {
		a = ref.ReplaceAllStringFunc(a, func(m string) string { return env[m[2:len(m)-1]] })
		switch k, _, _ := strings.Cut(a, "="); k {
		case "--host":
			a = "--host=127.0.0.1"
		case "--port":
			a = "--port=0"
		case "--model":
			if model == "" {
				continue
			}
			a = "--model=" + model
		}
		args = append(args, a)
	}
	t.Logf("kvserve %s", strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	ks := &kvserve{cmd: cmd, log: &syncBuffer{}, done: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		re := regexp.MustCompile(`addr=(127\.0\.0\.1:[0-9]+)`)
		for sc.Scan() {
			fmt.Fprintln(ks.log, sc.Text())
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		err := cmd.Wait()
		pw.Close()
		ks.done <- err
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-ks.done
		}
	})
	select {
	case ks.addr = <-addrc:
	case err := <-ks.done:
		t.Fatalf("kvserve exited: %v\n%s", err, ks.log)
	case <-time.After(time.Minute):
		t.Fatalf("kvserve did not listen\n%s", ks.log)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get("http://" + ks.addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return ks
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kvserve not healthy: %v\n%s", err, ks.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM, as the kubelet does, and expects a graceful exit.
func (ks *kvserve) stop(t *testing.T) {
	t.Helper()
	ks.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-ks.done:
		if err != nil {
			t.Errorf("kvserve after SIGTERM: %v\n%s", err, ks.log)
		}
	case <-time.After(90 * time.Second):
		t.Errorf("kvserve did not stop after SIGTERM\n%s", ks.log)
	}
}

func (ks *kvserve) metricsText(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + ks.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %v: %s", resp.StatusCode, err, b)
	}
	return string(b)
}

// metrics reads kvserve's /metrics as series -> value.
func (ks *kvserve) metrics(t *testing.T) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range strings.Split(ks.metricsText(t), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func (ks *kvserve) requantize(t *testing.T, typ string) {
	t.Helper()
	body := fmt.Sprintf(`{"type_k":%q,"type_v":%q}`, typ, typ)
	resp, err := http.Post("http://"+ks.addr+"/cache/requantize", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("requantize to %s: %d %s", typ, resp.StatusCode, b)
	}
}

// tokens is the prompt's length in tokens as kvserve counts it.
func (ks *kvserve) tokens(t *testing.T, prompt string) int {
	t.Helper()
	body := fmt.Sprintf(`{"content":%q,"add_special":true}`, prompt)
	resp, err := http.Post("http://"+ks.addr+"/tokenize", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct{ Tokens []int }
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || len(r.Tokens) == 0 {
		t.Fatalf("tokenize: %d %v", resp.StatusCode, err)
	}
	return len(r.Tokens)
}

// streamCompletion streams a long completion until ctx ends.
func streamCompletion(ctx context.Context, addr, prompt string) {
	body := fmt.Sprintf(`{"prompt":%q,"n_predict":4000,"ignore_eos":true,"stream":true}`, prompt)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/completion", strings.NewReader(body))
	if err != nil {
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
}

// picker is the endpoint picker's metric collection for one kvserve pod,
// built from the EPP configuration file as the EPP builds it.
type picker struct {
	src    fwkdl.PollingDataSource
	ext    fwkdl.Extractor
	ep     *fwkdl.ModelServer
	ticks  chan time.Time
	meta   *fwkdl.EndpointMetadata
	legacy func(t *testing.T) *fwkdl.Metrics
}

type manualTicker struct{ c chan time.Time }

func (m *manualTicker) Channel() <-chan time.Time { return m.c }
func (m *manualTicker) Stop()                     {}

func newPicker(t *testing.T, configPath, addr string, podLabels map[string]string) *picker {
	t.Helper()
	b, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := loader.LoadRawConfig(b, logr.Discard())
	if err != nil {
		t.Fatalf("the EPP's loader rejects %s: %v", configPath, err)
	}
	p := &picker{ticks: make(chan time.Time)}
	for _, spec := range cfg.Plugins {
		switch spec.Type {
		case sourcemetrics.MetricsDataSourceType:
			pl, err := sourcemetrics.MetricsDataSourceFactory(spec.Name, spec.Parameters, nil)
			if err != nil {
				t.Fatalf("%s: %v", spec.Type, err)
			}
			p.src = pl.(fwkdl.PollingDataSource)
		case extractormetrics.MetricsExtractorType:
			pl, err := extractormetrics.CoreMetricsExtractorFactory(spec.Name, spec.Parameters, nil)
			if err != nil {
				t.Fatalf("%s: %v", spec.Type, err)
			}
			p.ext = pl.(fwkdl.Extractor)
		}
	}
	if p.src == nil || p.ext == nil {
		t.Fatalf("%s configures no %s or no %s", configPath, sourcemetrics.MetricsDataSourceType, extractormetrics.MetricsExtractorType)
	}
	host, port, _ := net.SplitHostPort(addr)
	p.meta = &fwkdl.EndpointMetadata{
		NamespacedName: types.NamespacedName{Namespace: "default", Name: "kvserve-0"},
		PodName:        "kvserve-0", Address: host, Port: port, MetricsHost: addr, Labels: podLabels,
	}
	p.ep = fwkdl.NewEndpoint(p.meta, nil)
	col := datalayer.NewCollector()
	ctx, cancel := context.WithCancel(context.Background())
	if err := col.Start(ctx, &manualTicker{p.ticks}, p.ep, []fwkdl.PollingDataSource{p.src},
		map[string][]fwkdl.Extractor{p.src.TypedName().Name: {p.ext}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { col.Stop(); cancel() })

	pmc, err := backendmetrics.NewPodMetricsClientImpl(logr.Discard(), legacyFlags)
	if err != nil {
		t.Fatal(err)
	}
	p.legacy = func(t *testing.T) *fwkdl.Metrics {
		t.Helper()
		m, err := pmc.FetchMetrics(context.Background(), p.meta, fwkdl.NewMetrics())
		if err != nil {
			t.Fatalf("flag-configured scraper: %v", err)
		}
		return m
	}
	return p
}

// poll makes the collector run one collection (a tick) and returns the
// metrics it stored on the endpoint.
func (p *picker) poll(t *testing.T) *fwkdl.Metrics {
	t.Helper()
	prev := p.ep.GetMetrics()
	p.ticks <- time.Now()
	deadline := time.Now().Add(10 * time.Second)
	for p.ep.GetMetrics() == prev {
		if time.Now().After(deadline) {
			t.Fatalf("the collector stored no metrics (extraction: %v)", p.extract())
		}
		time.Sleep(time.Millisecond)
	}
	return p.ep.GetMetrics()
}

// extract polls and extracts once, outside the collector (which only logs
// errors), on a scratch endpoint.
func (p *picker) extract() error {
	ep := fwkdl.NewEndpoint(p.meta, nil)
	ctx := context.Background()
	data, err := p.src.Poll(ctx, ep)
	if err != nil {
		return err
	}
	if data == nil {
		return errors.New("no data")
	}
	return p.ext.Extract(ctx, data, ep)
}

// extractClean checks that every metric the configuration names is found.
func (p *picker) extractClean(t *testing.T) {
	t.Helper()
	if err := p.extract(); err != nil {
		t.Errorf("the extractor reports: %v", err)
	}
}
