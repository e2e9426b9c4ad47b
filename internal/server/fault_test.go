package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kvserve/kvserve/internal/engine"
)

// Fault tests of the disk tier against a real server process: killed with
// SIGKILL while it spills a slot's cache and while it loads one, its
// files with a flipped byte, and a disk that is full (the process's file
// size limit, RLIMIT_FSIZE, set tiny: writes past it fail with EFBIG as
// on a full filesystem). After each, a server on the same directory keeps
// serving and its answers equal a fresh evaluation: nothing wrong is
// served.

const faultChildEnv = "KVSERVE_FAULT_CHILD_DIR"

func faultCacheOptions() engine.CacheOptions {
	co := engine.DefaultCacheOptions()
	co.PageTokens = 16
	co.TypeK, co.TypeV = "f32", "f32" // bigger files: a spill or a load takes long enough to be caught
	return co
}

// TestFaultChildServer is the server process the fault test starts (it
// runs only with KVSERVE_FAULT_CHILD_DIR set): one slot, the disk tier in
// that directory, listening on a loopback port it prints. It exits by
// itself after two minutes.
func TestFaultChildServer(t *testing.T) {
	dir := os.Getenv(faultChildEnv)
	if dir == "" {
		t.Skip("the fault test's server process")
	}
	if n, _ := strconv.ParseUint(os.Getenv("KVSERVE_FAULT_FSIZE"), 10, 64); n > 0 {
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
			t.Fatal(err)
		}
	}
	s := New(Options{Engine: testEngine(t), Slots: 1, Ctx: 2048, Cache: faultCacheOptions(), CacheDisk: dir, Logger: quietLog})
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("LISTEN http://%s\n", l.Addr())
	time.AfterFunc(2*time.Minute, func() { os.Exit(3) })
	http.Serve(l, s)
}

type faultChild struct {
	cmd *exec.Cmd
	url string
}

// startChild starts a server process on dir (fsize > 0: its file size
// limit in bytes).
func startChild(t *testing.T, dir string, fsize int) *faultChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFaultChildServer$", "-test.v")
	cmd.Env = append(os.Environ(), faultChildEnv+"="+dir, "KVSERVE_FAULT_FSIZE="+strconv.Itoa(fsize))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &faultChild{cmd: cmd}
	t.Cleanup(c.kill)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "LISTEN "); ok {
			c.url = u
			break
		}
	}
	if c.url == "" {
		t.Fatal("the server process did not start")
	}
	go func() { // drain
		for sc.Scan() {
		}
	}()
	return c
}

func (c *faultChild) kill() {
	if c.cmd.ProcessState == nil {
		c.cmd.Process.Signal(syscall.SIGKILL)
		c.cmd.Wait()
	}
}

// postAsync posts without failing the test (the server may be killed
// meanwhile); done is closed when the answer (or the error) is in.
func postAsync(url string, body any) (done chan struct{}) {
	done = make(chan struct{})
	b, _ := json.Marshal(body)
	go func() {
		defer close(done)
		resp, err := http.Post(url, "application/json", bytes.NewReader(b))
		if err == nil {
			resp.Body.Close()
		}
	}()
	return done
}

// killWhen kills c as soon as cond holds while the request runs; it
// reports whether it did (false: the request finished first).
func killWhen(c *faultChild, done chan struct{}, cond func() bool) bool {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if cond() {
			c.kill()
			<-done
			return true
		}
		select {
		case <-done:
			return false
		default:
		}
	}
	c.kill()
	<-done
	return false
}

// spilling: a temporary file of a spill is in dir.
func spilling(dir string) func() bool {
	return func() bool {
		des, _ := os.ReadDir(dir)
		for _, de := range des {
			if strings.HasPrefix(de.Name(), ".tmp-") {
				return true
			}
		}
		return false
	}
}

// loading: the process has an entry file open (spills write temporary
// files; only a load opens an entry).
func loading(c *faultChild) func() bool {
	fds := fmt.Sprintf("/proc/%d/fd", c.cmd.Process.Pid)
	return func() bool {
		des, _ := os.ReadDir(fds)
		for _, de := range des {
			if l, err := os.Readlink(filepath.Join(fds, de.Name())); err == nil && strings.HasSuffix(l, ".kvd") {
				return true
			}
		}
		return false
	}
}

func TestDiskTierFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	if raceEnabled {
		// The server processes would run the race build (minutes more);
		// what this test checks is across processes, not data races.
		t.Skip("not under the race detector")
	}
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("needs /proc")
	}
	req := func(prompt string) map[string]any {
		return map[string]any{"prompt": prompt, "n_predict": 6, "temperature": 0, "ignore_eos": true}
	}
	conv := func(i int) string {
		return strings.Repeat(fmt.Sprintf("Conversation %d is about the sea and the boats. ", i), 50)
	}
	other := req(strings.Repeat("Another one, about mountains. ", 20))
	// The answers of a server without the tier (a fresh evaluation).
	_, ref := newTestServer(t, Options{Slots: 1, Ctx: 2048, Cache: faultCacheOptions()})
	fresh := map[int]string{}
	next := func(i int) map[string]any { return req(conv(i) + " And then?") }
	for i := range 12 {
		fresh[i] = postOK(t, ref.URL+"/completion", next(i))["content"].(string)
	}
	// check asks a new server on dir for every conversation's next turn:
	// the answers are the fresh ones, and the tier's counters are returned.
	check := func(what, dir string, convs int) map[string]any {
		t.Helper()
		c := startChild(t, dir, 0)
		defer c.kill()
		for i := range convs {
			if got := postOK(t, c.url+"/completion", next(i))["content"]; got != fresh[i] {
				t.Errorf("%s: conversation %d answered %q, fresh %q", what, i, got, fresh[i])
			}
		}
		if tmp, _ := filepath.Glob(filepath.Join(dir, ".tmp-*")); len(tmp) > 0 {
			t.Errorf("%s: temporary files left: %v", what, tmp)
		}
		return obj(t, must(get(t, c.url+"/cache/usage")))["disk"].(map[string]any)
	}

	// kill -9 during a spill: conversation i's cache is being written when
	// the next conversation takes the slot.
	dir := t.TempDir()
	caught := 0
	for i := 0; i < 6 && caught < 2; i++ {
		c := startChild(t, dir, 0)
		postOK(t, c.url+"/completion", req(conv(i)))
		if killWhen(c, postAsync(c.url+"/completion", other), spilling(dir)) {
			caught++
		}
		c.kill()
	}
	if caught == 0 {
		t.Fatal("no spill was caught in progress")
	}
	disk := check("after kill -9 during spills", dir, 6)
	t.Logf("kill -9 during %d spills; the next server's tier: %v", caught, disk)

	// kill -9 during a load: the conversation's entry is read when its
	// next turn comes.
	dir = t.TempDir()
	c := startChild(t, dir, 0)
	for i := range 4 {
		postOK(t, c.url+"/completion", req(conv(i)))
	}
	postOK(t, c.url+"/completion", other) // the last one spilled too
	c.kill()
	caught = 0
	for i := 0; i < 4 && caught < 2; i++ {
		c := startChild(t, dir, 0)
		if killWhen(c, postAsync(c.url+"/completion", next(i)), loading(c)) {
			caught++
		}
	}
	if caught == 0 {
		t.Fatal("no load was caught in progress")
	}
	disk = check("after kill -9 during loads", dir, 4)
	if num(disk["hits"]) == 0 {
		t.Errorf("after kill -9 during loads the entries were not loaded: %v", disk)
	}
	t.Logf("kill -9 during %d loads; the next server's tier: %v", caught, disk)

	// A flipped byte in every entry: all skipped, answers evaluated afresh.
	files, _ := filepath.Glob(filepath.Join(dir, "*.kvd"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		b[len(b)/3] ^= 0x10
		os.WriteFile(f, b, 0o644)
	}
	disk = check("after flipped bytes", dir, 4)
	if num(disk["hits"]) != 0 || num(disk["skipped"]) != float64(len(files)) {
		t.Errorf("flipped bytes in %d files: %v", len(files), disk)
	}

	// A full disk: every spill fails; the server keeps serving.
	dir = t.TempDir()
	c = startChild(t, dir, 64<<10)
	for i := range 3 {
		postOK(t, c.url+"/completion", req(conv(i)))
	}
	for i := range 3 {
		if got := postOK(t, c.url+"/completion", next(i))["content"]; got != fresh[i] {
			t.Errorf("full disk: conversation %d answered %q, fresh %q", i, got, fresh[i])
		}
	}
	disk = obj(t, must(get(t, c.url+"/cache/usage")))["disk"].(map[string]any)
	if num(disk["failed"]) == 0 || num(disk["entries"]) != 0 || num(disk["hits"]) != 0 {
		t.Errorf("full disk: %v", disk)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Errorf("full disk: files left: %v", left)
	}
	t.Logf("full disk: %v", disk)
}
