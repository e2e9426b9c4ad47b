package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kvserve/kvserve/internal/cachedisk"
	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/model"
)

// Defaults of the Options.
const (
	DefaultMaxBodyBytes     = 16 << 20
	DefaultMaxResponseBytes = 32 << 20
	DefaultQueueTimeout     = 60 * time.Second
	DefaultShutdownTimeout  = 30 * time.Second
)

// shutdownGrace is how long Serve waits, after cancelling the requests
// still running at the end of ShutdownTimeout, for them to send their
// final error event and end their responses properly.
const shutdownGrace = 5 * time.Second

// Version is the build's version, reported in /props' build_info (set
// with -ldflags "-X github.com/kvserve/kvserve/internal/server.Version=...").
var Version = "dev"

// Options configure a Server.
type Options struct {
	// ModelPath is the GGUF file to load ("" = the embedded default
	// model), with Threads worker threads (<= 0: one per CPU).
	ModelPath string
	Threads   int
	NoRepack  bool // keep the weights in the file's layout (engine.LoadOptions)
	// Engine, if set, is an already loaded model used instead of
	// ModelPath; the server does not close it.
	Engine *engine.Engine

	// Slots is the number of parallel sequences (llama-server's -np).
	Slots int
	// Ctx is the total context in tokens, split evenly across the slots
	// (each slot gets Ctx/Slots, as llama-server does). 0 gives every
	// slot the model's training context (total = that × Slots); cache
	// pages are allocated as tokens arrive, so unused context costs no
	// memory.
	Ctx          int
	Batch        int // tokens per forward pass (0: engine.DefaultBatch)
	PrefillChunk int // prompt tokens per step while others decode (0: engine default)
	// ContextShift lets generation continue past a full slot by dropping
	// older tokens, and truncates prompts that do not fit (--context-shift).
	ContextShift bool
	// CacheDisk is the directory of the cache's disk tier ("": none):
	// slots' caches that would be dropped are spilled there and loaded
	// back for prompts that start with them, across restarts too; files
	// are evicted least recently used past CacheDiskBudget bytes (0: no
	// limit). See internal/cachedisk.
	CacheDisk       string
	CacheDiskBudget int64
	// CacheSpillType, if set, converts pages down as they are spilled to
	// the disk tier: "TYPE" or "TYPE_K/TYPE_V" (--cache-spill-type).
	CacheSpillType string
	// CacheRAM, if positive, is a RAM tier of that many bytes in front of
	// the disk tier (or alone): spilled entries are held in RAM and written
	// to CacheDisk in the background; entries loaded or prefetched for
	// queued requests are kept there (--cache-ram).
	CacheRAM int64
	// NoSharePrefix turns off sharing prefix pages between slots
	// (--no-cache-share; see engine.SchedulerOptions).
	NoSharePrefix bool
	Cache         engine.CacheOptions
	// Policy is the automatic cache precision policy (nil: none), built
	// from the command line's flags (Load's errors name them).
	Policy *cachepolicy.Policy
	// Spec configures speculative decoding (nil: none); DraftPath is the
	// draft model's GGUF file (llama-server's -md), loaded after the
	// model into Spec.Draft (a Spec.Draft already set is used as is and
	// not closed).
	Spec      *engine.SpecOptions
	DraftPath string

	// Alias is the model name reported by /v1/models and in responses
	// (default: the model file's name, without its directory).
	Alias string
	// APIKeys, if any, are required as "Authorization: Bearer KEY" (or
	// "X-Api-Key: KEY") on every route but /health, /v1/health, /models
	// and /v1/models, as llama-server does.
	APIKeys []string
	// CORSOrigins lists the web origins ("https://app.example:8443")
	// whose pages may call the API from a browser; "*" allows every
	// origin. By default none may: a browser request carrying another
	// origin is refused with 403 (its preflight too), so a web page a
	// user visits cannot drive a local server. Same-origin requests
	// (pages this server serves) are always allowed.
	CORSOrigins []string
	// AllowedHosts are the host names (besides localhost and IP
	// addresses) a keyless server listening only on loopback answers to.
	// A request naming any other host in its Host header is refused with
	// 403: a web page on a name an attacker's DNS points at 127.0.0.1 (DNS
	// rebinding) is same-origin with itself, so the origin check alone
	// would let it drive the server. "*" turns the check off.
	AllowedHosts []string
	// ReasoningFormat is the default of the chat request's
	// "reasoning_format" (llama-server's --reasoning-format): "auto" (or
	// ""), separate <think> reasoning into reasoning_content when the
	// chat template has thinking markers; "deepseek", always; "none",
	// never.
	ReasoningFormat string
	// Embeddings enables the embedding routes (llama-server's
	// --embeddings): /embedding, /embeddings, /v1/embeddings. Completions
	// keep working beside them.
	Embeddings bool
	// Pooling is the embeddings' pooling (none, mean, cls, last, rank;
	// "": the model file's, else none, as llama.cpp).
	Pooling string
	// Lora lists LoRA adapters to load and apply (llama-server's --lora,
	// --lora-scaled); GET/POST /lora-adapters read and change their scales.
	Lora []LoraAdapter
	// Metrics enables GET /metrics.
	Metrics bool
	// NoWebUI turns off the web page served at / (llama-server's
	// --no-webui); the API routes are the same either way.
	NoWebUI bool
	// SlotSavePath is the directory for slot save/restore files; empty
	// disables those actions.
	SlotSavePath string
	// MaxBodyBytes bounds request bodies (0: DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// MaxResponseBytes bounds responses built whole in memory: a
	// non-streaming completion stops generating before its body would
	// pass it (finish_reason "length"); /tokenize and /detokenize refuse
	// with 413 an answer that would (0: DefaultMaxResponseBytes).
	MaxResponseBytes int64
	// QueueTimeout is how long a completion waits for a free slot before
	// it is answered 503 (0: DefaultQueueTimeout; < 0: answer 503 at once
	// when every slot is busy). QueueMax bounds how many may wait at once
	// (0: 64 per slot); more are answered 503 at once.
	QueueTimeout time.Duration
	QueueMax     int
	// ShutdownTimeout bounds how long Serve waits for in-flight requests
	// when its context ends before it cancels them (0: the default).
	ShutdownTimeout time.Duration

	Logger *slog.Logger

	// Command-line request defaults and llama-server options (see
	// defaults.go).
	Defaults *Defaults
	// ChatTemplate, if set, is the Jinja source used instead of the
	// model's chat template (--chat-template, --chat-template-file);
	// ChatTemplateKwargs are extra template variables for every chat
	// request (--chat-template-kwargs; a request's own win).
	ChatTemplate       string
	ChatTemplateKwargs map[string]any
	// NoSlots turns off GET /slots (--no-slots).
	NoSlots bool
	// NoPrefillAssistant renders a final assistant message as a whole
	// turn followed by a new generation prompt, instead of continuing it
	// (--no-prefill-assistant).
	NoPrefillAssistant bool

	// load replaces engine.Load (tests).
	load func() (*engine.Engine, error)
}

const (
	stateLoading int32 = iota
	stateReady
	stateFailed
	stateStopping
)

// Server serves the llama-server and OpenAI HTTP APIs over one model and
// its scheduler. It is an http.Handler; Serve runs it on a listener with
// background loading and graceful shutdown.
type Server struct {
	o   Options
	log *slog.Logger

	mux    *http.ServeMux
	rmu    sync.Mutex
	routes map[string]*route
	public map[string]bool

	state   atomic.Int32
	loadErr error // set before state becomes stateFailed

	mu        sync.Mutex // guards loading vs closing
	closed    bool
	eng       *engine.Engine
	ownEngine bool
	ownDraft  *engine.Engine // the draft model the server loaded (closed with it)
	sched     *engine.Scheduler
	slotCtx   int
	turnEnds  sync.Map        // chat template source → its end-of-turn stop string (Server.turnEnd)
	disk      *cachedisk.Tier // the cache's disk tier (nil: none)
	chat      chatTemplate
	chatErr   error
	modelName string

	waiting    atomic.Int64 // completions submitted and not yet started
	breakers   breakerCache // DRY's processed sequence breakers
	baseCtx    context.Context
	cancelBase context.CancelFunc

	reg        *prometheus.Registry
	nTokensMax atomic.Int64

	fpOnce sync.Once
	fp     string

	// loopbackOnly is set by Serve when its listener is on loopback: the
	// Host header check against DNS rebinding applies (see AllowedHosts).
	loopbackOnly atomic.Bool

	embedSem chan struct{} // running embeddings (Slots at a time)
	loras    []*model.Lora // loaded adapters, by id
}

type route struct {
	methods map[string]http.Handler
}

// New creates a server; its routes answer 503 until Load has loaded the
// model (Serve calls Load in the background).
func New(o Options) *Server {
	if o.Slots <= 0 {
		o.Slots = 1
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if o.QueueTimeout == 0 {
		o.QueueTimeout = DefaultQueueTimeout
	}
	if o.QueueMax <= 0 {
		o.QueueMax = 64 * o.Slots
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Server{
		o: o, log: o.Logger,
		mux:    http.NewServeMux(),
		routes: map[string]*route{},
		public: map[string]bool{},
		reg:    prometheus.NewRegistry(),
	}
	s.embedSem = make(chan struct{}, o.Slots)
	s.baseCtx, s.cancelBase = context.WithCancel(context.Background())
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, errorf(http.StatusNotFound, TypeNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	s.routesInit()
	s.metricsInit()
	return s
}

// Handle registers a handler for a pattern "METHOD /path" (or "/path"
// for every method); paths may hold {name} wildcards as in
// net/http.ServeMux. Registered routes get the server's middleware:
// panic recovery, the body limit, 503 while loading, API key and origin
// checks, JSON 404/405 answers. Use ReadJSON to read a body, WriteJSON
// and WriteError to answer, and
// Scheduler/Engine to reach the model (the lead's /cache/... routes plug
// in here).
func (s *Server) Handle(pattern string, h http.Handler) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "*", pattern
	}
	path = strings.TrimSpace(path)
	s.rmu.Lock()
	defer s.rmu.Unlock()
	rt := s.routes[path]
	if rt == nil {
		rt = &route{methods: map[string]http.Handler{}}
		s.routes[path] = rt
		s.mux.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.dispatch(rt, w, r) }))
	}
	rt.methods[strings.ToUpper(method)] = h
}

// HandleFunc is Handle for a function.
func (s *Server) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	s.Handle(pattern, http.HandlerFunc(h))
}

func (s *Server) dispatch(rt *route, w http.ResponseWriter, r *http.Request) {
	s.rmu.Lock()
	h := rt.methods[r.Method]
	if h == nil && r.Method == http.MethodHead {
		h = rt.methods[http.MethodGet]
	}
	if h == nil {
		h = rt.methods["*"]
	}
	var allow []string
	if h == nil {
		for m := range rt.methods {
			allow = append(allow, m)
		}
	}
	s.rmu.Unlock()
	if h == nil {
		sort.Strings(allow)
		w.Header().Set("Allow", strings.Join(allow, ", "))
		WriteError(w, errorf(http.StatusMethodNotAllowed, TypeInvalidRequest,
			"method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", ")))
		return
	}
	h.ServeHTTP(w, r)
}

// statusWriter records whether the header was written, for the recovery
// middleware and the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ServeHTTP runs the middleware chain and the routes.
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w := &statusWriter{ResponseWriter: rw}
	t0 := time.Now()
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			if w.status == 0 {
				WriteError(w, errorf(http.StatusInternalServerError, TypeServer, "internal error: %v", v))
			}
		}
		if r.URL.Path != "/health" && r.URL.Path != "/metrics" {
			s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", w.status, "duration", time.Since(t0))
		}
	}()
	if !s.hostAllowed(r) {
		WriteError(w, errorf(http.StatusForbidden, TypePermission,
			"the host name %q is not allowed: this server listens on loopback without an API key and answers only to localhost and IP addresses (DNS rebinding protection); start it with --allowed-hosts %s to allow that name, or give an API key",
			hostName(r.Host), hostName(r.Host)))
		return
	}
	if !s.cors(w, r) {
		return
	}
	if r.ContentLength > s.o.MaxBodyBytes {
		WriteError(w, errorf(http.StatusRequestEntityTooLarge, TypeInvalidRequest,
			"request body of %d bytes exceeds the limit of %d bytes", r.ContentLength, s.o.MaxBodyBytes))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.o.MaxBodyBytes)

	path := r.URL.Path
	health := path == "/health" || path == "/v1/health" || s.webuiPath(path)
	switch s.state.Load() {
	case stateLoading:
		if !health {
			WriteError(w, errorf(http.StatusServiceUnavailable, TypeUnavailable, "Loading model"))
			return
		}
	case stateFailed:
		if !health {
			WriteError(w, errorf(http.StatusInternalServerError, TypeServer, "the model failed to load: %v", s.loadErr))
			return
		}
	case stateStopping:
		w.Header().Set("Connection", "close")
		WriteError(w, errorf(http.StatusServiceUnavailable, TypeUnavailable, "the server is shutting down"))
		return
	}
	if !s.public[path] && !s.authorized(r) {
		WriteError(w, errorf(http.StatusUnauthorized, TypeAuthentication, "Invalid API Key"))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// cors applies the origin policy (Options.CORSOrigins) and answers CORS
// preflights. A request without an Origin header (curl, SDKs) or from the
// server's own origin passes; one from an allowed origin passes with the
// CORS headers that let its page read the answer (a preflight is answered
// 200 here, before the API key check, as browsers send none with it); one
// from any other origin is refused with 403. It reports whether the
// request goes on.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || sameOrigin(r, origin) {
		if r.Method == http.MethodOptions {
			w.Header().Set("Allow", "GET, POST, OPTIONS")
			w.WriteHeader(http.StatusOK) // as llama-server answers every OPTIONS
			return false
		}
		return true
	}
	all := false
	allowed := false
	for _, o := range s.o.CORSOrigins {
		if o == "*" {
			all, allowed = true, true
		} else if strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			allowed = true
		}
	}
	if !allowed {
		WriteError(w, errorf(http.StatusForbidden, TypePermission,
			"requests from the web origin %s are not allowed (start the server with --cors-origins %s to allow them)", origin, origin))
		return false
	}
	h := w.Header()
	if all {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
	}
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Api-Key")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusOK)
		return false
	}
	return true
}

// sameOrigin reports whether origin ("http://host:port") is the origin
// the request was sent to.
// hostAllowed applies the DNS rebinding check (Options.AllowedHosts): it
// holds only for a keyless server listening on loopback, where a request's
// Host must be localhost (or a name under .localhost), an IP address, or
// an allowed name.
func (s *Server) hostAllowed(r *http.Request) bool {
	if !s.loopbackOnly.Load() || len(s.o.APIKeys) > 0 {
		return true
	}
	h := strings.ToLower(strings.TrimSuffix(hostName(r.Host), "."))
	if h == "" || h == "localhost" || strings.HasSuffix(h, ".localhost") || net.ParseIP(h) != nil {
		return true
	}
	for _, a := range s.o.AllowedHosts {
		if a == "*" || strings.EqualFold(strings.TrimSuffix(a, "."), h) {
			return true
		}
	}
	return false
}

// hostName is a Host header without its port (and an IPv6 address
// without its brackets).
func hostName(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

func sameOrigin(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return strings.EqualFold(u.Scheme, scheme) && strings.EqualFold(u.Host, r.Host)
}

func (s *Server) authorized(r *http.Request) bool {
	if len(s.o.APIKeys) == 0 {
		return true
	}
	key := r.Header.Get("Authorization")
	if key == "" {
		key = r.Header.Get("X-Api-Key")
	}
	if len(key) >= 7 && strings.EqualFold(key[:7], "Bearer ") {
		key = strings.TrimSpace(key[7:])
	}
	ok := false
	for _, k := range s.o.APIKeys {
		if subtle.ConstantTimeCompare([]byte(k), []byte(key)) == 1 {
			ok = true
		}
	}
	return ok
}

// Load loads the model (unless Options.Engine is set), creates and starts
// the scheduler, and marks the server ready. Serve calls it in the
// background; tests may call it directly.
func (s *Server) Load() error {
	err := s.load()
	if err != nil {
		s.loadErr = err
		s.state.CompareAndSwap(stateLoading, stateFailed)
		s.log.Error("loading the model failed", "err", err)
	}
	return err
}

func (s *Server) load() error {
	t0 := time.Now()
	e, own := s.o.Engine, false
	if e == nil {
		var err error
		if s.o.load != nil {
			e, err = s.o.load()
		} else {
			e, err = engine.LoadWith(s.o.ModelPath, s.o.Threads, engine.LoadOptions{NoRepack: s.o.NoRepack})
		}
		if err != nil {
			return err
		}
		own = true
	}
	loras, err := loadLoras(e, s.o.Lora)
	if err != nil {
		if own {
			e.Close()
		}
		return err
	}
	slotCtx := e.Model.NCtxTrain
	if s.o.Ctx > 0 {
		slotCtx = s.o.Ctx / s.o.Slots
		if slotCtx < 16 {
			if own {
				e.Close()
			}
			return fmt.Errorf("context of %d tokens over %d slots leaves %d tokens per slot; give at least 16 per slot", s.o.Ctx, s.o.Slots, slotCtx)
		}
	}
	var disk *cachedisk.Tier
	if s.o.CacheDisk != "" || s.o.CacheRAM > 0 {
		// Entries fit a model and head shape: the key says which (entries
		// of other key/value channel settings load, converted).
		key, older := engine.DiskTierKey(engineFingerprint(e), e.Model, s.o.Cache)
		var err error
		if disk, err = cachedisk.OpenWith(cachedisk.Options{Dir: s.o.CacheDisk, Key: key, Older: older, Budget: s.o.CacheDiskBudget, RAM: s.o.CacheRAM, Log: s.log}); err != nil {
			if own {
				e.Close()
			}
			return err
		}
		st := disk.Stats()
		s.log.Info("cache disk tier", "entries", st.Entries, "bytes", st.Bytes, "budget", st.Budget, "skipped", st.Skipped, "ram_budget", st.RAMBudget)
	}
	spillK, spillV, err := ParseSpillType(s.o.CacheSpillType)
	if err != nil {
		if own {
			e.Close()
		}
		return err
	}
	var spec *engine.SpecOptions
	var draft *engine.Engine
	if s.o.Spec != nil || s.o.DraftPath != "" {
		sp := engine.SpecOptions{}
		if s.o.Spec != nil {
			sp = *s.o.Spec
		}
		if s.o.DraftPath != "" && sp.Draft == nil {
			d, err := engine.LoadDraft(s.o.DraftPath, e)
			if err != nil {
				if own {
					e.Close()
				}
				return err
			}
			sp.Draft, draft = d, d
		}
		spec = &sp
	}
	sched, err := e.NewScheduler(engine.SchedulerOptions{
		Slots: s.o.Slots, SlotCtx: slotCtx, Batch: s.o.Batch, PrefillChunk: s.o.PrefillChunk, ContextShift: s.o.ContextShift,
		Cache: s.o.Cache, Policy: s.o.Policy, Spec: spec, Logger: s.log, NoSharePrefix: s.o.NoSharePrefix, Disk: disk,
		SpillK: spillK, SpillV: spillV,
	})
	if err != nil {
		if draft != nil {
			draft.Close()
		}
		if own {
			e.Close()
		}
		// Options.Policy comes from the command line: a policy error
		// names the flag given (--cache-cold-k-layers), not its JSON field.
		return cachepolicy.FlagError(err)
	}
	if s.o.SlotSavePath != "" {
		s.removeStaleSlotFiles()
	}
	tmpl, chatErr := loadChatTemplate(e, s.o.ChatTemplate)
	if chatErr != nil {
		s.log.Warn("no usable chat template: /v1/chat/completions and /apply-template will answer errors", "err", chatErr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		sched.Close()
		if draft != nil {
			draft.Close()
		}
		if own {
			e.Close()
		}
		return errors.New("the server was closed while loading")
	}
	sched.Start()
	s.eng, s.ownEngine, s.sched, s.slotCtx, s.ownDraft, s.disk = e, own, sched, slotCtx, draft, disk
	s.loras = loras
	s.chat, s.chatErr = tmpl, chatErr
	s.modelName = s.o.Alias
	if s.modelName == "" {
		// The file's name, not its path: /v1/models answers without a key.
		s.modelName = filepath.Base(strings.TrimPrefix(e.Path, "embedded:"))
	}
	s.state.CompareAndSwap(stateLoading, stateReady)
	m := e.Model
	ck, cv := s.o.Cache.TypeK, s.o.Cache.TypeV
	if ck == "" {
		ck = "f16"
	}
	if cv == "" {
		cv = "f16"
	}
	if s.o.Cache.LayersK != "" {
		ck += " (" + s.o.Cache.LayersK + ")"
	}
	if s.o.Cache.LayersV != "" {
		cv += " (" + s.o.Cache.LayersV + ")"
	}
	if w := e.ContextWarning(slotCtx); w != "" {
		s.log.Warn(w, "n_ctx_slot", slotCtx, "n_ctx_train", m.NCtxTrain)
	}
	s.log.Info("model loaded", "model", e.Path, "arch", m.Arch, "layers", m.NLayer, "vocab", m.NVocab,
		"slots", s.o.Slots, "slot_ctx", slotCtx, "cache_k", ck, "cache_v", cv,
		"threads", e.Pool.Threads(), "seconds", time.Since(t0).Seconds())
	if spec != nil && spec.Draft != nil {
		s.log.Info("draft model loaded", "model", spec.Draft.Path, "layers", spec.Draft.Model.NLayer,
			"cache_k", spec.DraftCache.TypeK, "cache_v", spec.DraftCache.TypeV)
	}
	return nil
}

// Ready reports whether the model is loaded and requests are served.
func (s *Server) Ready() bool { return s.state.Load() == stateReady }

// Engine returns the loaded model (nil until ready).
func (s *Server) Engine() *engine.Engine {
	if !s.Ready() {
		return nil
	}
	return s.eng
}

// Scheduler returns the running scheduler (nil until ready). Cache
// access goes through its Do method.
func (s *Server) Scheduler() *engine.Scheduler {
	if !s.Ready() {
		return nil
	}
	return s.sched
}

// SlotContext returns the context size of each slot (0 until ready).
func (s *Server) SlotContext() int {
	if !s.Ready() {
		return 0
	}
	return s.slotCtx
}

// Registry returns the Prometheus registry behind /metrics, so more
// collectors (e.g. requantization counters) can be registered on it.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Close stops serving requests, cancels the running ones, closes the
// scheduler (and the model, if the server loaded it). It is idempotent.
func (s *Server) Close() {
	s.state.Store(stateStopping)
	s.cancelBase()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.sched != nil {
		s.sched.Close()
	}
	if s.disk != nil {
		s.disk.Close() // the RAM tier's writer writes what is queued
	}
	if s.ownDraft != nil {
		s.ownDraft.Close()
	}
	if s.eng != nil && s.ownEngine {
		s.eng.Close()
	}
}

// Serve accepts connections on ln, loading the model in the background
// (so /health answers 503 until it is loaded), until ctx ends; then it
// shuts down gracefully: it stops accepting connections, answers new
// requests 503, waits up to ShutdownTimeout for in-flight requests,
// cancels those still running, and closes the scheduler. It returns nil
// after a shutdown asked through ctx, or the error that stopped it (a
// failed model load or listener).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
	}
	s.loopbackOnly.Store(isLoopback(ln.Addr()))
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	loadErr := make(chan error, 1)
	go func() { loadErr <- s.Load() }()
	s.log.Info("listening", "addr", ln.Addr().String())
	if !isLoopback(ln.Addr()) && len(s.o.APIKeys) == 0 {
		s.log.Warn("listening beyond loopback without an API key: anyone who can reach this address can use the model, change the cache and erase slots (give --api-key-file or KVSERVE_API_KEY)",
			"addr", ln.Addr().String())
	}
	for _, o := range s.o.CORSOrigins {
		if o == "*" && len(s.o.APIKeys) == 0 {
			s.log.Warn("--cors-origins '*' without an API key: any web page a user visits can use this server")
		}
	}

	var err error
	for done := false; !done; {
		select {
		case <-ctx.Done():
			s.log.Info("shutting down")
			done = true
		case err = <-serveErr:
			done = true
		case e := <-loadErr:
			loadErr = nil
			if e != nil {
				err = e
				done = true
			}
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.o.ShutdownTimeout)
	defer cancel()
	// Answer requests still arriving on open connections with 503, and
	// let in-flight ones finish.
	if s.state.Load() == stateReady {
		s.state.Store(stateStopping)
	}
	if e := hs.Shutdown(sctx); e != nil {
		s.log.Warn("in-flight requests did not finish in time; cancelling them", "timeout", s.o.ShutdownTimeout)
		// Cancelled requests end properly: a stream sends an error event
		// and its final chunk, a plain request a 503. Wait a little for
		// that before cutting the connections.
		s.cancelBase()
		gctx, gcancel := context.WithTimeout(context.Background(), shutdownGrace)
		if hs.Shutdown(gctx) != nil {
			hs.Close()
		}
		gcancel()
	}
	// A load still in progress sees the server closed and frees what it
	// built (see load).
	s.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// isLoopback reports whether a listener's address is a loopback one.
func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
