package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/kvserve/kvserve/internal/cachepolicy"
)

// Fuzz targets for every request body decoder and for the handlers end to
// end. Their seed corpora are in testdata/fuzz/<target>; .ci/run runs each
// for a few seconds. Every body must decode to a request within its
// limits or to a 4xx error in the OpenAI shape — never a panic or a 5xx.

// fuzzServer is a loaded server over the tiny model, shared by a fuzz
// worker's runs.
var (
	fuzzOnce sync.Once
	fuzzSrv  *Server
)

func fuzzServer(f *testing.F) *Server {
	fuzzOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kvserve-fuzz-slots-")
		if err != nil {
			f.Fatal(err)
		}
		fuzzSrv = New(Options{Engine: tinyEngine(f), Slots: 2, Ctx: 2 * 128, Logger: quietLog,
			QueueTimeout: -1, SlotSavePath: dir, MaxResponseBytes: 1 << 20})
		if err := fuzzSrv.Load(); err != nil {
			f.Fatal(err)
		}
	})
	return fuzzSrv
}

// checkErr checks a decoder's error: a 4xx (or 413) with a message and a
// type.
func checkErr(t *testing.T, e *apiError) {
	t.Helper()
	if e.Status < 400 || e.Status >= 500 || e.Message == "" || e.Type == "" {
		t.Fatalf("bad error %+v", e)
	}
}

func fuzzCompletion(f *testing.F, a api) {
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		req, g, aerr := s.decodeCompletion(body, a)
		if aerr != nil {
			checkErr(t, aerr)
			return
		}
		if len(req.Prompt) == 0 || len(req.Prompt) >= s.slotCtx {
			t.Fatalf("prompt of %d tokens accepted (slot context %d)", len(req.Prompt), s.slotCtx)
		}
		for _, id := range req.Prompt {
			if id < 0 || id >= s.eng.Model.NVocab {
				t.Fatalf("token id %d accepted", id)
			}
		}
		if req.NPredict < -1 || req.NProbs < 0 || req.NProbs > maxNProbs || req.SlotID < -1 || req.SlotID >= s.o.Slots {
			t.Fatalf("out-of-range request %+v", req)
		}
		if len(req.Stop) > maxStops {
			t.Fatalf("%d stop strings", len(req.Stop))
		}
		for _, st := range req.Stop {
			if len(st) > maxStopBytes {
				t.Fatalf("a stop string of %d bytes", len(st))
			}
		}
		if !g.stream && (req.OutputCost == nil || req.OutputBudget != s.o.MaxResponseBytes) {
			t.Fatal("a non-streaming request without the response cap")
		}
		if err := req.Sample.Validate(); err != nil {
			t.Fatalf("invalid sampling accepted: %v", err)
		}
		if req.Grammar != g.grammar {
			t.Fatal("the request lost its grammar")
		}
		if (g.plan != nil) != (a == apiOAIChat) || g.plan != nil && g.plan.forced() && req.Grammar == nil {
			t.Fatalf("chat plan %+v with grammar %v on api %d", g.plan, req.Grammar != nil, a)
		}
	})
}

func FuzzDecodeCompletion(f *testing.F)    { fuzzCompletion(f, apiNative) }
func FuzzDecodeOAICompletion(f *testing.F) { fuzzCompletion(f, apiOAIText) }
func FuzzDecodeChat(f *testing.F)          { fuzzCompletion(f, apiOAIChat) }

func FuzzDecodeTokenize(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		tr, aerr := decodeTokenize(body)
		if aerr != nil {
			checkErr(t, aerr)
			return
		}
		if !bytes.Contains(body, []byte(`"content"`)) && !bytes.Contains(body, []byte(`\u`)) {
			t.Fatalf("accepted without content: %+v", tr)
		}
	})
}

func FuzzDecodeSlotAction(f *testing.F) {
	f.Fuzz(func(t *testing.T, id, action string, body []byte) {
		a, aerr := decodeSlotAction(id, action, body, 4)
		if aerr != nil {
			checkErr(t, aerr)
			return
		}
		if a.id < 0 || a.id >= 4 {
			t.Fatalf("slot %d accepted", a.id)
		}
		switch a.action {
		case "erase":
		case "save", "restore":
			if checkSlotFilename(a.filename) != nil || strings.ContainsAny(a.filename, `/\`) {
				t.Fatalf("file name %q accepted", a.filename)
			}
		default:
			t.Fatalf("action %q accepted", a.action)
		}
	})
}

func FuzzDecodeRequantize(f *testing.F) {
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		tg, _, aerr := s.decodeRequantize(body)
		if aerr != nil {
			checkErr(t, aerr)
			return
		}
		if tg.K == nil && tg.V == nil {
			t.Fatal("no type accepted")
		}
		for _, l := range tg.Layers {
			if l < 0 || l >= s.eng.Model.NLayer {
				t.Fatalf("layer %d accepted", l)
			}
		}
		for _, q := range tg.Seqs {
			if q < 0 || q >= s.o.Slots {
				t.Fatalf("slot %d accepted", q)
			}
		}
	})
}

func FuzzDecodePolicy(f *testing.F) {
	s := fuzzServer(f)
	live := &cachepolicy.Policy{Hot: 64, Sink: 16, Budget: 1 << 20}
	live.LadderK, live.LadderV = cachepolicy.DefaultLadders()
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, cur := range []*cachepolicy.Policy{nil, live} {
			before := *live
			p, aerr := s.decodePolicy(body, cur)
			if aerr != nil {
				checkErr(t, aerr)
			} else if p != nil {
				if err := p.Validate(s.eng.Model.NLayer, s.eng.Model.HeadDim, s.eng.Model.HeadDimV); err != nil || !p.Enabled() {
					t.Fatalf("accepted a policy that is invalid (%v) or does nothing: %+v", err, p)
				}
			} else if cur == nil && !bytes.Contains(bytes.ToLower(body), []byte("enabled")) && !bytes.Contains(body, []byte(`\u`)) {
				t.Fatal("removed a policy that did not exist without being asked")
			}
			if live.Hot != before.Hot || live.Budget != before.Budget || len(live.LadderK) != len(before.LadderK) {
				t.Fatal("decoding changed the live policy")
			}
		}
	})
}

// fuzzRoutes are the routes FuzzHandlers drives.
var fuzzRoutes = []string{
	"/completion", "/v1/completions", "/v1/chat/completions", "/tokenize", "/detokenize", "/apply-template",
	"/slots/0?action=save", "/slots/1?action=restore", "/slots/0?action=erase", "/cache/requantize", "/cache/policy",
}

// FuzzHandlers drives the handlers end to end (middleware, decoding,
// admission, generation on the tiny model, answers) with random bodies:
// every answer is JSON (or a well-formed SSE stream of JSON events), and
// no body gets a 5xx other than a 503 that says why.
func FuzzHandlers(f *testing.F) {
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		path := fuzzRoutes[int(route)%len(fuzzRoutes)]
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		res := w.Result()
		b := w.Body.Bytes()
		if res.StatusCode >= 500 && res.StatusCode != 503 {
			t.Fatalf("%s %q: %d %s", path, body, res.StatusCode, b)
		}
		if strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
			for _, ev := range bytes.Split(bytes.TrimSpace(b), []byte("\n\n")) {
				ev = bytes.TrimPrefix(ev, []byte("data: "))
				if string(ev) != "[DONE]" && !json.Valid(ev) {
					t.Fatalf("%s %q: bad event %q", path, body, ev)
				}
				if bytes.Contains(ev, []byte(`"code":500`)) {
					t.Fatalf("%s %q: a 500 in the stream: %s", path, body, ev)
				}
			}
			return
		}
		if !json.Valid(b) {
			t.Fatalf("%s %q: %d, not JSON: %q", path, body, res.StatusCode, b)
		}
		if res.StatusCode != 200 {
			var e struct {
				Error *struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if json.Unmarshal(b, &e) != nil || e.Error == nil || e.Error.Code != res.StatusCode || e.Error.Message == "" {
				t.Fatalf("%s %q: error body %s", path, body, b)
			}
		}
	})
}
