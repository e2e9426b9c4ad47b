package server

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
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"
)

var loadPrompts = []string{
	"Once upon a time", "The quick brown fox", "def main():\n    ", "In the beginning",
	"It was a dark and stormy night", "Hello", "1, 2, 3, 4,", "The Linux kernel",
	"import numpy as np\n", "Dear Sir,", "The history of Rome", "package main\n\nimport",
	"Q: What is the capital of France?\nA:", "Chapter 1\n\n", "My favourite food is", "The weather today",
}

// streamResult runs a streaming /completion and returns the text and
// token ids it streamed.
func streamResult(ctx context.Context, client *http.Client, url string, body map[string]any) (string, []int, error) {
	j, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/completion", bytes.NewReader(j))
	resp, err := client.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return "", nil, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	var text strings.Builder
	var toks []int
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	done := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		var ev struct {
			Content string `json:"content"`
			Tokens  []int  `json:"tokens"`
			Stop    bool   `json:"stop"`
			Error   any    `json:"error"`
		}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev); err != nil {
			return "", nil, fmt.Errorf("bad event %q: %v", line, err)
		}
		if ev.Error != nil {
			return "", nil, fmt.Errorf("error event: %s", line)
		}
		text.WriteString(ev.Content)
		toks = append(toks, ev.Tokens...)
		done = done || ev.Stop
	}
	if err := sc.Err(); err != nil {
		return "", nil, err
	}
	if !done {
		return "", nil, errors.New("stream ended without stop")
	}
	return text.String(), toks, nil
}

// Bounded loopback load: 16 concurrent streaming clients × 64 tokens on
// 4 slots all complete, with greedy outputs identical to the same
// requests sent one at a time, and no goroutine outlives the server.
// (The model is the shared f16 kvtest-27m, which decodes about six times
// faster than the embedded Q8_0 one.)
func TestLoadConcurrentStreams(t *testing.T) {
	clients, nTok := 16, 64
	eng := f16Engine(t)
	http.DefaultClient.CloseIdleConnections()
	runtime.GC()
	before := runtime.NumGoroutine()

	func() {
		s := New(Options{Engine: eng, Slots: 4, Ctx: 4 * 512, Logger: quietLog, QueueTimeout: 10 * time.Minute})
		if err := s.Load(); err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(s)
		defer s.Close()
		defer ts.Close()
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
		defer client.CloseIdleConnections()
		body := func(i int) map[string]any {
			return map[string]any{"prompt": loadPrompts[i%len(loadPrompts)], "n_predict": nTok, "temperature": 0, "ignore_eos": true, "stream": true}
		}
		type out struct {
			text string
			toks []int
		}
		alone := make([]out, clients)
		t0 := time.Now()
		for i := range clients {
			text, toks, err := streamResult(context.Background(), client, ts.URL, body(i))
			if err != nil {
				t.Fatalf("client %d alone: %v", i, err)
			}
			if len(toks) != nTok {
				t.Fatalf("client %d alone: %d tokens", i, len(toks))
			}
			alone[i] = out{text, toks}
		}
		seq := time.Since(t0)

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		together := make([]out, clients)
		errs := make([]error, clients)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				text, toks, err := streamResult(ctx, client, ts.URL, body(i))
				together[i], errs[i] = out{text, toks}, err
			}()
		}
		t1 := time.Now()
		close(start)
		wg.Wait()
		conc := time.Since(t1)
		for i := range clients {
			if errs[i] != nil {
				t.Errorf("client %d: %v", i, errs[i])
				continue
			}
			if fmt.Sprint(together[i].toks) != fmt.Sprint(alone[i].toks) || together[i].text != alone[i].text {
				t.Errorf("client %d (%q): concurrent output differs:\n%q\nalone:\n%q", i, loadPrompts[i%len(loadPrompts)], together[i].text, alone[i].text)
			}
		}
		st := s.sched.Stats()
		t.Logf("%d clients × %d tokens: one at a time %.2fs (%.1f tokens/s), 4 slots %.2fs (%.1f tokens/s); %d forward passes",
			clients, nTok, seq.Seconds(), float64(clients*nTok)/seq.Seconds(), conc.Seconds(), float64(clients*nTok)/conc.Seconds(), st.DecodeCalls)
	}()

	// Every goroutine the server, its scheduler, the handlers and the
	// connections started has ended.
	deadline := time.Now().Add(10 * time.Second)
	n := runtime.NumGoroutine()
	for n > before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n > before {
		pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		t.Errorf("goroutine leak: %d before, %d after", before, n)
	}
}

// A client that goes away cancels its request, streaming or not: the
// slot frees long before the request's n_predict.
func TestClientDisconnect(t *testing.T) {
	s, ts := newTestServer(t, Options{Slots: 1})
	long := map[string]any{"prompt": "Once upon a time", "n_predict": 5000, "ignore_eos": true, "temperature": 0}

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	j, _ := json.Marshal(long)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/completion", bytes.NewReader(j))
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("request did not time out")
	}
	waitIdle(t, s)
	if n := s.sched.Stats().PredictedTokens; n >= 5000 {
		t.Errorf("non-streaming request ran to the end (%d tokens) after its client left", n)
	}

	long["stream"] = true
	_, stop, _ := startStream(t, ts.URL+"/completion", long)
	stop()
	waitIdle(t, s)
	if n := s.sched.Stats().PredictedTokens; n >= 5000 {
		t.Errorf("streaming request ran to the end (%d tokens) after its client left", n)
	}
	// OpenAI streams too.
	_, stop, _ = startStream(t, ts.URL+"/v1/chat/completions", map[string]any{
		"messages": []map[string]any{{"role": "user", "content": "Hi"}}, "max_tokens": 5000, "ignore_eos": true, "stream": true})
	stop()
	waitIdle(t, s)
	if n := s.sched.Stats().PredictedTokens; n >= 5000 {
		t.Errorf("chat stream ran to the end (%d tokens) after its client left", n)
	}
}

// Serve: SIGTERM-style shutdown (the context ends) lets an in-flight
// stream finish, refuses new connections, and returns nil; with a short
// ShutdownTimeout, in-flight requests are cancelled instead.
func TestServeGracefulShutdown(t *testing.T) {
	eng := testEngine(t)
	drain := 40
	for _, c := range []struct {
		name    string
		timeout time.Duration
		nTok    int
	}{{"drain", 60 * time.Second, drain}, {"cancel", 300 * time.Millisecond, 100000}} {
		t.Run(c.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := New(Options{Engine: eng, Slots: 1, Ctx: 4096, Logger: quietLog, ShutdownTimeout: c.timeout})
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() { served <- s.Serve(ctx, ln) }()
			url := "http://" + ln.Addr().String()
			for i := 0; ; i++ {
				resp, err := http.Get(url + "/health")
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == 200 {
						break
					}
				}
				if i > 500 {
					t.Fatal("server not ready")
				}
				time.Sleep(10 * time.Millisecond)
			}
			_, stop, rest := startStream(t, url+"/completion", map[string]any{"prompt": "Once upon a time", "n_predict": c.nTok, "ignore_eos": true, "temperature": 0, "stream": true})
			defer stop()
			cancel()
			tail, _ := io.ReadAll(rest)
			finished := strings.Contains(string(tail), `"stop":true`) && strings.Contains(string(tail), `"stop_type":"limit"`)
			if c.name == "drain" && !finished {
				t.Errorf("in-flight stream did not finish: ...%s", last(tail, 300))
			}
			if c.name == "cancel" && finished {
				t.Errorf("in-flight stream was not cancelled")
			}
			select {
			case err := <-served:
				if err != nil {
					t.Errorf("Serve returned %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Serve did not return")
			}
			if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
				t.Error("the listener still accepts connections")
			}
			if s.Ready() {
				t.Error("server still ready after shutdown")
			}
		})
	}
}

func last(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
