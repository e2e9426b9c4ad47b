// Command kvsoak is kvserve's soak test (run by scripts/soak.sh, not by go
// test): it serves a model in-process on a loopback port with -np slots
// and a cache budget, and drives it for a while with clients of mixed
// kinds — streaming and not, native and OpenAI chat, long prompts,
// cancellations, pinned slots, live requantization, policy changes, slot
// save/restore/erase and malformed bodies. It reports the answers by
// status, the streams that did not end properly, latency percentiles,
// resident memory over time, and goroutines before and after. It exits
// non-zero on any 5xx answer, any stream without a proper end, or a
// goroutine leak.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/server"
)

func main() {
	clients := flag.Int("clients", 8, "concurrent clients")
	dur := flag.Duration("duration", 3*time.Minute, "how long to run")
	slots := flag.Int("np", 4, "server slots")
	ctxSize := flag.Int("c", 4*2048, "total context")
	budget := flag.String("budget", "8MiB", "cache budget")
	model := flag.String("m", "", "model (default: the embedded one)")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()

	b, err := cachepolicy.ParseBytes(*budget)
	if err != nil {
		fail(err)
	}
	pol := &cachepolicy.Policy{Budget: b, Hot: 64, Sink: 64, Warm: cachepolicy.DefaultWarm}
	pol.LadderK, pol.LadderV = cachepolicy.DefaultLadders()
	slotDir, err := os.MkdirTemp("", "kvsoak-slots-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(slotDir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	srv := server.New(server.Options{ModelPath: *model, Slots: *slots, Ctx: *ctxSize, Policy: pol, SlotSavePath: slotDir,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	sctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	base := "http://" + ln.Addr().String()
	for i := 0; ; i++ {
		if resp, err := http.Get(base + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if i > 3000 {
			fail(fmt.Errorf("server not ready"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	http.DefaultClient.CloseIdleConnections()
	runtime.GC()
	gBefore := runtime.NumGoroutine()
	fmt.Printf("kvsoak: %d clients for %v against -np %d -c %d --cache-budget %s (model %s), %d CPUs\n",
		*clients, *dur, *slots, *ctxSize, *budget, orDefault(*model, "embedded"), runtime.NumCPU())

	st := &stats{status: map[string]int{}, kinds: map[string]int{}}
	deadline := time.Now().Add(*dur)
	var wg sync.WaitGroup
	tr := &http.Transport{MaxIdleConnsPerHost: *clients}
	client := &http.Client{Transport: tr, Timeout: 5 * time.Minute}
	for c := range *clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(*seed, uint64(c)))
			for time.Now().Before(deadline) {
				runOne(client, base, rng, *slots, st)
			}
		})
	}
	// Resident memory over the run.
	var rss []string
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(*dur / 6)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				rss = append(rss, fmt.Sprintf("%.0f", float64(procStatus("VmRSS"))/1024))
			}
		}
	}()
	wg.Wait()
	close(done)
	tr.CloseIdleConnections()
	time.Sleep(500 * time.Millisecond)
	runtime.GC()
	gAfter := runtime.NumGoroutine()
	peak := procStatus("VmHWM")
	stop()
	<-served

	st.report(gBefore, gAfter, peak, rss)
	if st.bad > 0 || st.unterminated > 0 || gAfter > gBefore+2 {
		os.Exit(1)
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kvsoak:", err)
	os.Exit(2)
}

// procStatus reads a kB field of /proc/self/status (0 elsewhere).
func procStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			var n int64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &n)
			return n
		}
	}
	return 0
}

type stats struct {
	mu           sync.Mutex
	status       map[string]int // "200", "503", ... and "cancelled"
	kinds        map[string]int
	lat          []time.Duration // 2xx requests, whole answer
	ttft         []time.Duration // streams, first event
	unterminated int
	bad          int // 5xx
	examples     []string
}

func (s *stats) add(kind string, code int, d, first time.Duration, streamOK bool, detail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kinds[kind]++
	key := fmt.Sprint(code)
	if code == 0 {
		key = "cancelled"
	}
	s.status[key]++
	if code >= 500 {
		s.bad++
	}
	if code == 200 {
		s.lat = append(s.lat, d)
		if first > 0 {
			s.ttft = append(s.ttft, first)
		}
		if !streamOK {
			s.unterminated++
		}
	}
	if (code >= 500 || (code == 200 && !streamOK)) && len(s.examples) < 10 {
		s.examples = append(s.examples, kind+": "+detail)
	}
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[min(len(ds)-1, int(p*float64(len(ds))))]
}

func (s *stats) report(gBefore, gAfter int, peakKB int64, rss []string) {
	total := 0
	var codes []string
	for k, n := range s.status {
		total += n
		codes = append(codes, fmt.Sprintf("%s: %d", k, n))
	}
	sort.Strings(codes)
	var kinds []string
	for k, n := range s.kinds {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(kinds)
	fmt.Printf("requests: %d (%s)\n", total, strings.Join(kinds, ", "))
	fmt.Printf("by status: %s\n", strings.Join(codes, ", "))
	fmt.Printf("5xx: %d; 200 streams without a proper end: %d\n", s.bad, s.unterminated)
	fmt.Printf("latency of 2xx answers: p50 %v, p99 %v; streams' first event: p50 %v, p99 %v\n",
		pct(s.lat, 0.5).Round(time.Millisecond), pct(s.lat, 0.99).Round(time.Millisecond),
		pct(s.ttft, 0.5).Round(time.Millisecond), pct(s.ttft, 0.99).Round(time.Millisecond))
	fmt.Printf("RSS MiB during the run: %s; peak %.0f MiB\n", strings.Join(rss, ", "), float64(peakKB)/1024)
	fmt.Printf("goroutines: %d before, %d after\n", gBefore, gAfter)
	for _, e := range s.examples {
		fmt.Println("  example:", e)
	}
}

var words = strings.Fields(`the a of and to in is was for on with as by at from that it this which be are
an or have had not but were they one all their has been its more when will who would there so some
time into than other only then out up these over new also after about can most made them many first`)

func text(rng *rand.Rand, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[rng.IntN(len(words))])
	}
	return b.String()
}

// runOne sends one request of a random kind and records its outcome.
func runOne(c *http.Client, base string, rng *rand.Rand, slots int, st *stats) {
	nPredict := 16 + rng.IntN(112)
	switch k := rng.IntN(100); {
	case k < 25:
		body := map[string]any{"prompt": text(rng, 5+rng.IntN(30)), "n_predict": nPredict, "stream": true, "temperature": rng.Float64()}
		doStream(c, base+"/completion", "stream", body, false, 0, st)
	case k < 40:
		body := map[string]any{"prompt": text(rng, 5+rng.IntN(30)), "n_predict": nPredict, "n_probs": rng.IntN(4)}
		doPlain(c, base+"/completion", "completion", body, st)
	case k < 52:
		body := map[string]any{"messages": []map[string]any{{"role": "user", "content": text(rng, 5+rng.IntN(20))}},
			"max_tokens": nPredict, "stream": true, "stream_options": map[string]any{"include_usage": true}}
		doStream(c, base+"/v1/chat/completions", "chat-stream", body, true, 0, st)
	case k < 60:
		body := map[string]any{"messages": []map[string]any{{"role": "user", "content": text(rng, 5+rng.IntN(20))}},
			"max_tokens": nPredict, "logprobs": true, "top_logprobs": 2}
		doPlain(c, base+"/v1/chat/completions", "chat", body, st)
	case k < 68:
		body := map[string]any{"prompt": text(rng, 800+rng.IntN(600)), "n_predict": 32, "stream": rng.IntN(2) == 0}
		if body["stream"] == true {
			doStream(c, base+"/completion", "long-prompt", body, false, 0, st)
		} else {
			doPlain(c, base+"/completion", "long-prompt", body, st)
		}
	case k < 76:
		body := map[string]any{"prompt": text(rng, 10), "n_predict": 500, "stream": true}
		doStream(c, base+"/completion", "cancel", body, false, 1+rng.IntN(10), st)
	case k < 84:
		body := map[string]any{"prompt": text(rng, 10), "n_predict": nPredict, "id_slot": rng.IntN(slots)}
		doPlain(c, base+"/completion", "pinned", body, st)
	case k < 88:
		types := []string{"f16", "q8_0", "q5_0", "q4_0"}
		body := map[string]any{"type_k": types[rng.IntN(len(types))], "type_v": types[rng.IntN(len(types))]}
		doPlain(c, base+"/cache/requantize", "requantize", body, st)
	case k < 91:
		var body map[string]any
		switch rng.IntN(3) {
		case 0:
			body = map[string]any{"hot": 32 * (1 + rng.IntN(8)), "sink": 32 * rng.IntN(3)}
		case 1:
			body = map[string]any{"dynamic": "0:f16,512:q8_0,1024:q4_0"}
		default:
			body = map[string]any{"dynamic": ""}
		}
		doPlain(c, base+"/cache/policy", "policy", body, st)
	case k < 96:
		id := rng.IntN(slots)
		actions := []string{"save", "restore", "erase"}
		a := actions[rng.IntN(3)]
		body := map[string]any{"filename": fmt.Sprintf("soak-%d.bin", rng.IntN(3))}
		doPlain(c, fmt.Sprintf("%s/slots/%d?action=%s", base, id, a), "slots-"+a, body, st)
	default:
		bad := []string{`{`, `{"prompt":5}`, `{"prompt":"x","n_predict":"many"}`, `[]`, `{"messages":[]}`}
		path := []string{"/completion", "/v1/chat/completions", "/tokenize", "/cache/policy"}[rng.IntN(4)]
		doPlain(c, base+path, "malformed", bad[rng.IntN(len(bad))], st)
	}
}

func post(c *http.Client, ctx context.Context, url string, body any) (*http.Response, error) {
	var b []byte
	if s, ok := body.(string); ok {
		b = []byte(s)
	} else {
		b, _ = json.Marshal(body)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	return c.Do(req)
}

func doPlain(c *http.Client, url, kind string, body any, st *stats) {
	t0 := time.Now()
	resp, err := post(c, context.Background(), url, body)
	if err != nil {
		st.add(kind, 599, 0, 0, false, err.Error())
		return
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	ok := err == nil && json.Valid(b)
	st.add(kind, resp.StatusCode, time.Since(t0), 0, ok, fmt.Sprintf("%d %.200s", resp.StatusCode, b))
}

// doStream reads an SSE answer; cancelAfter > 0 hangs up after that many
// events. A proper end is the final event (stop: true) for /completion,
// "data: [DONE]" for OpenAI routes, and a terminated body.
func doStream(c *http.Client, url, kind string, body any, oai bool, cancelAfter int, st *stats) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t0 := time.Now()
	resp, err := post(c, ctx, url, body)
	if err != nil {
		st.add(kind, 599, 0, 0, false, err.Error())
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		st.add(kind, resp.StatusCode, time.Since(t0), 0, true, fmt.Sprintf("%d %.200s", resp.StatusCode, b))
		return
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var first time.Duration
	events, ended, lastEv := 0, false, ""
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if first == 0 {
			first = time.Since(t0)
		}
		events++
		lastEv = line
		data := strings.TrimPrefix(line, "data: ")
		if strings.Contains(data, `"error"`) {
			break
		}
		if oai && data == "[DONE]" || !oai && strings.Contains(data, `"stop":true`) {
			ended = true
		}
		if cancelAfter > 0 && events >= cancelAfter {
			cancel()
			st.add(kind, 0, 0, 0, true, "")
			return
		}
	}
	if ended {
		// The body must end cleanly after the last event.
		_, err := io.Copy(io.Discard, resp.Body)
		ended = err == nil && sc.Err() == nil
	}
	st.add(kind, 200, time.Since(t0), first, ended, fmt.Sprintf("%d events, last %.200s, err %v", events, lastEv, sc.Err()))
}
