package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvserve/kvserve/internal/cachepolicy"
)

// Regression tests for issue 16 (hardening): each test names its item.

// Item 1: a prompt that cannot fit the context is refused before it is
// tokenized — a 4 MiB single word costs about what reading it costs, not
// the tens of times its size that BPE over it would.
func TestHugePromptRefusedBeforeTokenizing(t *testing.T) {
	s := newTinyServer(t, Options{Slots: 1})
	ts := newHTTPTest(t, s)
	word := strings.Repeat("a", 4<<20)
	body := []byte(`{"prompt":"` + word + `","n_predict":1}`)
	for _, path := range []string{"/completion", "/v1/completions"} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		st, b := post(t, ts.URL+path, body)
		runtime.ReadMemStats(&after)
		wantError(t, path+" huge prompt", st, b, 400, TypeExceedContext)
		// Reading the body, the JSON copy of the prompt and the client's
		// side: a few times the body; BPE over it took over 40 times.
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 12*uint64(len(body)) {
			t.Errorf("%s: refusing a %d-byte prompt allocated %d bytes", path, len(body), alloc)
		}
	}
	chat := []byte(`{"messages":[{"role":"user","content":"` + word + `"}]}`)
	st, b := post(t, ts.URL+"/v1/chat/completions", chat)
	wantError(t, "chat huge prompt", st, b, 400, TypeExceedContext)
	// Token ids beyond the context are refused without decoding them all.
	ids := "[" + strings.Repeat("1,", 1<<20) + "1]"
	st, b = post(t, ts.URL+"/completion", `{"prompt":`+ids+`}`)
	wantError(t, "huge id array", st, b, 400, TypeExceedContext)
	// A prompt that fits by its bytes but not by its tokens is refused too.
	st, b = post(t, ts.URL+"/completion", map[string]any{"prompt": strings.Repeat("x ", 600)})
	wantError(t, "prompt of 600 tokens", st, b, 400, TypeExceedContext)
	if st, b := post(t, ts.URL+"/completion", map[string]any{"prompt": "fits", "n_predict": 1}); st != 200 {
		t.Errorf("after: %d %s", st, b)
	}
}

// Item 2: under a tight cache budget, concurrent requests wait for room
// instead of dying mid-way: every one completes (or is refused with 503
// and Retry-After before it starts); no 500, no error event in a stream.
func TestBudgetPressureNoServerErrors(t *testing.T) {
	pol := &cachepolicy.Policy{}
	pol.LadderK, pol.LadderV = cachepolicy.DefaultLadders()
	// The tiny model's page of 256 tokens is 32 KiB at f16 (the write
	// type), 10 KiB at the bottom of the ladders: one request of up to 256
	// tokens fits at a time, one of 257 to 512 never does.
	pol.Budget = 40 << 10
	s := newTinyServer(t, Options{Slots: 4, Ctx: 4 * 512, Policy: pol, QueueTimeout: 5 * time.Minute})
	ts := newHTTPTest(t, s)
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for i := range 8 {
		wg.Go(func() {
			body := map[string]any{"prompt": fmt.Sprintf("Request %d says", i), "n_predict": 200, "ignore_eos": true, "stream": i%2 == 0}
			st, b, h := do(t, http.MethodPost, ts.URL+"/completion", body)
			switch {
			case st == 503 && h.Get("Retry-After") != "":
			case st != 200:
				errs <- fmt.Sprintf("request %d: %d %s", i, st, b)
			case i%2 == 0:
				evs := sseEvents(t, b)
				last := obj(t, []byte(evs[len(evs)-1]))
				if strings.Contains(string(b), `"error"`) || last["stop"] != true || num(last["tokens_predicted"]) != 200 {
					errs <- fmt.Sprintf("stream %d: ...%s", i, last)
				}
			default:
				if m := obj(t, b); num(m["tokens_predicted"]) != 200 {
					errs <- fmt.Sprintf("request %d: %s", i, b)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if st := s.sched.Stats(); st.Requests != 8 {
		t.Errorf("%d requests ran, want 8", st.Requests)
	}

	// A request longer than the budget can ever hold: 503 with
	// Retry-After, before anything runs.
	st, b, h := do(t, http.MethodPost, ts.URL+"/completion", map[string]any{"prompt": "x", "n_predict": 400})
	if wantError(t, "over budget", st, b, 503, TypeUnavailable); h.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}

	// The budget lowered at run time below what a running stream needs:
	// the stream ends with a 503 error event, not a 500.
	_, stop, rest := startStream(t, ts.URL+"/completion", map[string]any{"prompt": "Keep going", "n_predict": 240, "ignore_eos": true, "stream": true})
	defer stop()
	postOK(t, ts.URL+"/cache/policy", map[string]any{"budget": 1024})
	tail, err := io.ReadAll(rest)
	if err != nil {
		t.Fatalf("stream after the budget change: %v", err)
	}
	if strings.Contains(string(tail), `"code":500`) {
		t.Errorf("a 500 in the stream: ...%s", last(tail, 300))
	}
}

// Item 3: a request pinned to a busy slot does not hold back an unpinned
// one while another slot is idle.
func TestPinnedRequestNoHeadOfLineBlocking(t *testing.T) {
	s := newTinyServer(t, Options{Slots: 2, Ctx: 2 * 512, QueueTimeout: time.Minute})
	ts := newHTTPTest(t, s)
	_, stop, _ := startStream(t, ts.URL+"/completion", map[string]any{"prompt": "Busy", "n_predict": 100000, "ignore_eos": true, "stream": true, "id_slot": 0})
	defer stop()
	// A second request for slot 0 waits in the queue.
	pinned := make(chan int, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		j, _ := json.Marshal(map[string]any{"prompt": "Me too", "n_predict": 1, "id_slot": 0})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/completion", bytes.NewReader(j))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			pinned <- 0
			return
		}
		resp.Body.Close()
		pinned <- resp.StatusCode
	}()
	for deadline := time.Now().Add(30 * time.Second); s.sched.Stats().Deferred == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the pinned request never queued")
		}
	}
	// An unpinned request runs at once on slot 1.
	client := &http.Client{Timeout: 30 * time.Second}
	j, _ := json.Marshal(map[string]any{"prompt": "Free slot", "n_predict": 4})
	resp, err := client.Post(ts.URL+"/completion", "application/json", bytes.NewReader(j))
	if err != nil {
		t.Fatalf("unpinned request blocked behind the pinned one: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || num(obj(t, b)["id_slot"]) != 1 {
		t.Errorf("unpinned: %d %s", resp.StatusCode, b)
	}
	select {
	case st := <-pinned:
		t.Errorf("the pinned request ended (%d) while its slot was busy", st)
	default:
	}
	stop()
	if st := <-pinned; st != 200 {
		t.Errorf("pinned request after its slot freed: %d", st)
	}
}

// Item 4: a small request cannot make a huge response: a non-streaming
// completion stops before its body passes MaxResponseBytes; /tokenize and
// /detokenize refuse with 413 what would pass it.
func TestResponseCap(t *testing.T) {
	const limit = 1 << 20
	s := newTinyServer(t, Options{Slots: 1, MaxResponseBytes: limit})
	ts := newHTTPTest(t, s)
	for _, c := range []struct{ path, body string }{
		{"/completion", `{"prompt":"x","n_probs":1000,"n_predict":-1,"ignore_eos":true}`},
		{"/v1/completions", `{"prompt":"x","logprobs":20,"max_tokens":100000,"ignore_eos":true}`},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":20,"ignore_eos":true}`},
	} {
		st, b := post(t, ts.URL+c.path, c.body)
		if st != 200 {
			t.Fatalf("%s: %d %s", c.path, st, last(b, 300))
		}
		if len(b) > limit {
			t.Errorf("%s: a %d-byte response, over the %d-byte cap", c.path, len(b), limit)
		}
		m := obj(t, b)
		if c.path == "/completion" {
			if m["stop_type"] != "limit" || num(m["tokens_predicted"]) < 2 {
				t.Errorf("%s: stop_type %v after %v tokens", c.path, m["stop_type"], m["tokens_predicted"])
			}
			if n := len(m["completion_probabilities"].([]any)); n != int(num(m["tokens_predicted"])) {
				t.Errorf("%d probability entries for %v tokens", n, m["tokens_predicted"])
			}
		} else if ch := m["choices"].([]any)[0].(map[string]any); ch["finish_reason"] != "length" {
			t.Errorf("%s: finish_reason %v", c.path, ch["finish_reason"])
		}
	}
	// Streams are not capped: each event carries its own token.
	evs := stream(t, ts.URL+"/completion", map[string]any{"prompt": "x", "n_probs": 1000, "n_predict": 40, "ignore_eos": true, "stream": true})
	if fin := obj(t, []byte(evs[len(evs)-1])); num(fin["tokens_predicted"]) != 40 {
		t.Errorf("stream: %v tokens", fin["tokens_predicted"])
	}
	st, b := post(t, ts.URL+"/tokenize", map[string]any{"content": strings.Repeat("é ", 200000), "with_pieces": true})
	wantError(t, "tokenize over the cap", st, b, 413, TypeInvalidRequest)
	ids := make([]int, 400000)
	for i := range ids {
		ids[i] = 5000 + i%1000
	}
	st, b = post(t, ts.URL+"/detokenize", map[string]any{"tokens": ids})
	wantError(t, "detokenize over the cap", st, b, 413, TypeInvalidRequest)
	if st, b := post(t, ts.URL+"/tokenize", map[string]any{"content": "small", "with_pieces": true}); st != 200 {
		t.Errorf("small tokenize: %d %s", st, b)
	}
}

// Item 5: every invalid /cache/policy field is a 400 naming it, and the
// live policy stays as it was; schedules and ladders that step up are
// refused alike.
func TestPolicyValidation(t *testing.T) {
	s := newTinyServer(t, Options{Slots: 1})
	ts := newHTTPTest(t, s)
	// Without a policy, a ladder (or warm, sink, enabled) alone is no rule.
	for _, body := range []string{`{"ladder_k":["f16","q8_0"]}`, `{"enabled":true}`, `{"sink":16,"warm":64}`} {
		st, b := post(t, ts.URL+"/cache/policy", body)
		if msg := wantError(t, body, st, b, 400, TypeInvalidRequest); !strings.Contains(msg, "no rule") {
			t.Errorf("%s: %q", body, msg)
		}
	}
	live := postOK(t, ts.URL+"/cache/policy", map[string]any{"hot": 128, "sink": 16})
	for _, c := range []struct{ body, want string }{
		{`{"hot":-5}`, "hot"},
		{`{"warm":-1}`, "warm"},
		{`{"sink":-16}`, "sink"},
		{`{"hot":1.5}`, "hot"},
		{`{"budget":-1}`, "budget"},
		{`{"budget":"a lot"}`, "budget"},
		{`{"ladder_k":[]}`, "ladder_k"},
		{`{"ladder_v":["q4_0","f16"]}`, "go down in precision"},
		{`{"dynamic":"0:q4_0,100:f16"}`, "go down in precision"},
		{`{"dynamic_k":"100:q8_0,0:f16"}`, "lengths must increase"},
		{`{"dynamic_v":"0:f16,0:q8_0"}`, "lengths must increase"},
		{`{"dynamic":"x:q8_0"}`, "dynamic"},
		{`{"enabled":false,"hot":3}`, "enabled"},
		{`{"hot":5,"bogus":1}`, "bogus"},
	} {
		st, b := post(t, ts.URL+"/cache/policy", c.body)
		if msg := wantError(t, c.body, st, b, 400, TypeInvalidRequest); !strings.Contains(msg, c.want) {
			t.Errorf("%s: %q lacks %q", c.body, msg, c.want)
		}
		now := obj(t, must(get(t, ts.URL+"/cache/policy")))
		delete(now, "stats")
		want := map[string]any{}
		for k, v := range live {
			if k != "stats" {
				want[k] = v
			}
		}
		if fmt.Sprint(now) != fmt.Sprint(want) {
			t.Errorf("%s changed the live policy: %v, was %v", c.body, now, want)
		}
	}
	// A ladder sent alone to a live policy changes it.
	p := postOK(t, ts.URL+"/cache/policy", map[string]any{"ladder_v": []string{"f16", "q4_0"}})
	if fmt.Sprint(p["ladder_v"]) != "[f16 q4_0]" || num(p["hot"]) != 128 {
		t.Errorf("ladder alone: %v", p)
	}
	// Turning the last rule off removes the policy, explicitly.
	if p := postOK(t, ts.URL+"/cache/policy", map[string]any{"hot": 0}); p["enabled"] != false {
		t.Errorf("hot 0 on a hot-only policy: %v", p)
	}
}

// Item 6: past the shutdown timeout, a running stream ends with an error
// event and a properly terminated body.
func TestShutdownEndsStreamsProperly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Engine: tinyEngine(t), Slots: 1, Ctx: 1 << 16, Logger: quietLog, ShutdownTimeout: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String()
	waitReady(t, url)
	_, stop, rest := startStream(t, url+"/v1/chat/completions", map[string]any{
		"messages": []map[string]any{{"role": "user", "content": "Go on"}}, "max_tokens": 1000000, "ignore_eos": true, "stream": true})
	defer stop()
	cancel()
	tail, err := io.ReadAll(rest)
	if err != nil {
		t.Errorf("the stream was cut without its final chunk: %v", err)
	}
	evs := sseEvents(t, tail[bytes.Index(tail, []byte("data: ")):])
	if e := obj(t, []byte(evs[len(evs)-1])); e["error"] == nil || !strings.Contains(fmt.Sprint(e["error"]), "shutting down") {
		t.Errorf("last event %s, want a shutdown error", evs[len(evs)-1])
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	for i := 0; ; i++ {
		resp, err := http.Get(url + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if i > 1000 {
			t.Fatal("server not ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Item 7: temporary files of interrupted saves are removed at start; a
// name taken by a directory is a 409, not a 500; error messages name the
// file, never the slot directory.
func TestSlotFileHygiene(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, ".slot-12345.tmp")
	os.WriteFile(stale, []byte("half a save"), 0o600)
	os.Mkdir(filepath.Join(dir, "adir"), 0o700)
	s := newTinyServer(t, Options{Slots: 1, SlotSavePath: dir})
	ts := newHTTPTest(t, s)
	if _, err := os.Stat(stale); err == nil {
		t.Error("a stale .slot-*.tmp survived the start")
	}
	postOK(t, ts.URL+"/completion", map[string]any{"prompt": "Remember me", "n_predict": 2})
	st, _, b := slotAction(t, ts.URL, 0, "save", "adir")
	if msg := wantError(t, "save onto a directory", st, b, 409, TypeInvalidRequest); strings.Contains(msg, dir) {
		t.Errorf("message reveals the directory: %q", msg)
	}
	st, _, b = slotAction(t, ts.URL, 0, "restore", "adir")
	if msg := wantError(t, "restore a directory", st, b, 400, TypeInvalidRequest); strings.Contains(msg, dir) {
		t.Errorf("message reveals the directory: %q", msg)
	}
	// The directory vanishes: the 500 names the file only.
	os.RemoveAll(dir)
	st, _, b = slotAction(t, ts.URL, 0, "save", "gone")
	if msg := wantError(t, "save into a missing directory", st, b, 500, TypeServer); strings.Contains(msg, dir) || !strings.Contains(msg, `"gone"`) {
		t.Errorf("message %q", msg)
	}
	if strings.Contains(string(b), ".slot-") {
		t.Errorf("message names the temporary file: %s", b)
	}
}

// Item 8: no cross-origin access by default (the request and its
// preflight are refused), a listed origin (or *) is allowed, same-origin
// and non-browser requests pass; /v1/models without a key names the
// model, not its path; listening beyond loopback without a key warns.
func TestCrossOriginDefaults(t *testing.T) {
	s := newTinyServer(t, Options{Slots: 1, APIKeys: []string{"k"}})
	ts := newHTTPTest(t, s)
	auth := []string{"Authorization", "Bearer k"}
	evil := "http://evil.example"
	st, b, h := do(t, http.MethodPost, ts.URL+"/cache/requantize", `{"type_k":"q4_0"}`, append(auth, "Origin", evil)...)
	wantError(t, "cross-origin POST", st, b, 403, TypePermission)
	if h.Get("Access-Control-Allow-Origin") != "" || h.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("CORS headers on a refused request: %v", h)
	}
	st, b, _ = do(t, http.MethodOptions, ts.URL+"/completion", nil, "Origin", evil, "Access-Control-Request-Method", "POST")
	wantError(t, "cross-origin preflight", st, b, 403, TypePermission)
	// Same origin (a page this server serves) and no origin (curl) pass.
	if st, b, _ := do(t, http.MethodGet, ts.URL+"/props", nil, append(auth, "Origin", ts.URL)...); st != 200 {
		t.Errorf("same-origin: %d %s", st, b)
	}
	if st, b, _ := do(t, http.MethodGet, ts.URL+"/props", nil, auth...); st != 200 {
		t.Errorf("no origin: %d %s", st, b)
	}
	// /v1/models is public: it names the model, not where it lives.
	st, b = get(t, ts.URL+"/v1/models")
	if st != 200 || strings.Contains(string(b), "/") || !strings.Contains(string(b), `"id":"tiny.gguf"`) {
		t.Errorf("/v1/models without a key: %d %s", st, b)
	}

	for _, allow := range []string{"https://app.example", "*"} {
		s := newTinyServer(t, Options{Slots: 1, CORSOrigins: []string{allow}})
		ts := newHTTPTest(t, s)
		origin := "https://app.example"
		st, _, h := do(t, http.MethodOptions, ts.URL+"/v1/chat/completions", nil, "Origin", origin,
			"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type")
		want := origin
		if allow == "*" {
			want = "*"
		}
		if st != 200 || h.Get("Access-Control-Allow-Origin") != want || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") ||
			h.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%s: preflight %d %v", allow, st, h)
		}
		st, b, h = do(t, http.MethodPost, ts.URL+"/tokenize", `{"content":"hi"}`, "Origin", origin)
		if st != 200 || h.Get("Access-Control-Allow-Origin") != want {
			t.Errorf("%s: request %d %v %s", allow, st, h, b)
		}
		st, _, _ = do(t, http.MethodPost, ts.URL+"/tokenize", `{"content":"hi"}`, "Origin", "https://other.example")
		if (allow == "*") != (st == 200) {
			t.Errorf("%s: another origin answered %d", allow, st)
		}
	}

	// Beyond loopback without a key: a warning at start.
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Skip("cannot listen on 0.0.0.0:", err)
	}
	var logs syncBuffer
	ws := New(Options{Engine: tinyEngine(t), Slots: 1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ws.Serve(ctx, ln) }()
	waitReady(t, "http://127.0.0.1:"+fmt.Sprint(ln.Addr().(*net.TCPAddr).Port))
	cancel()
	<-served
	if !strings.Contains(logs.String(), "beyond loopback without an API key") {
		t.Errorf("no warning for a keyless non-loopback listener:\n%s", logs.String())
	}
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

// Every error answer goes through the one writer: the OpenAI shape, JSON
// content type, Retry-After on the 503s a retry may pass.
func TestOneErrorShape(t *testing.T) {
	s := newTinyServer(t, Options{Slots: 1, QueueTimeout: -1})
	ts := newHTTPTest(t, s)
	_, stop, _ := startStream(t, ts.URL+"/completion", map[string]any{"prompt": "Busy", "n_predict": 100000, "ignore_eos": true, "stream": true})
	defer stop()
	st, b, h := do(t, http.MethodPost, ts.URL+"/completion", `{"prompt":"x"}`)
	wantError(t, "busy", st, b, 503, TypeUnavailable)
	if h.Get("Retry-After") == "" || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		t.Errorf("busy 503 headers: %v", h)
	}
	for _, c := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/nope", "", 404}, {"PUT", "/completion", "", 405}, {"POST", "/cache/requantize", "{", 400},
		{"POST", "/tokenize", `{"content":1}`, 400}, {"POST", "/slots/0?action=save", `{"filename":"a"}`, 501},
	} {
		st, b, h := do(t, c.method, ts.URL+c.path, c.body)
		wantError(t, c.method+" "+c.path, st, b, c.status, "")
		if !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: Content-Type %q", c.method, c.path, h.Get("Content-Type"))
		}
	}
}

// DNS rebinding: a keyless server listening on loopback answers only to
// localhost, IP addresses and --allowed-hosts; with an API key, or
// through a listener beyond loopback, any Host passes.
func TestHostCheckOnLoopback(t *testing.T) {
	hostStatus := func(base, host string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, base+"/health", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	serve := func(o Options) (string, string) {
		t.Helper()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		o.Engine, o.Slots = tinyEngine(t), 1
		s := New(o)
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- s.Serve(ctx, ln) }()
		t.Cleanup(func() { cancel(); <-served })
		port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
		base := "http://127.0.0.1:" + port
		waitReady(t, base)
		return base, port
	}
	base, port := serve(Options{AllowedHosts: []string{"mybox.lan"}})
	for _, h := range []string{"127.0.0.1:" + port, "localhost:" + port, "app.localhost:" + port, "[::1]:" + port, "mybox.lan:" + port, "MyBox.LAN."} {
		if st, b := hostStatus(base, h); st != 200 {
			t.Errorf("Host %s: %d %s", h, st, b)
		}
	}
	st, b := hostStatus(base, "rebind.attacker.example:"+port)
	if msg := wantError(t, "a rebinding host name", st, []byte(b), 403, TypePermission); !strings.Contains(msg, "--allowed-hosts rebind.attacker.example") {
		t.Errorf("message does not say how to allow the name: %q", msg)
	}
	// With an API key the page cannot authenticate anyway: no Host check.
	base, port = serve(Options{APIKeys: []string{"k"}})
	if st, b := hostStatus(base, "rebind.attacker.example:"+port); st != 200 {
		t.Errorf("with a key: %d %s", st, b)
	}
}
