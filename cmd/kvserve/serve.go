package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/chat"
	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/grammar"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/server"
)

func cmdServe(args []string) error {
	f := newFlags("serve", "kvserve serve [-m MODEL] [--host HOST] [--port PORT] [-np SLOTS] [-c CTX] [flags]\n\n-c is the total context, split evenly across the -np slots; -c 0 (the default)\ngives every slot the model's training context.")
	var mf modelFlags
	mf.register(f, 0)
	var pf cachepolicy.Flags
	pf.Bind(f)
	var sf specFlags
	sf.register(f)
	var host, apiKey, apiKeyFile, corsOrigins, alias, slotPath, logLevel, reasoningFormat string
	var port, slots, prefill int
	var metrics, ctxShift, noCtxShift, noWebUI, noShare bool
	var maxBody int64
	var allowedHosts string
	var queueTimeout, shutdownTimeout float64
	var queueMax int
	f.String(&host, "127.0.0.1", "address to listen on", "host")
	f.Int(&port, 8080, "port to listen on (0: any free port)", "port")
	f.Int(&slots, 1, "parallel slots; -c is split evenly across them", "np", "parallel")
	f.Int(&prefill, 0, "prompt tokens per step while other slots generate (0: 128)", "prefill-chunk")
	f.String(&apiKey, "", "API key required as 'Authorization: Bearer KEY' (shows in ps: prefer --api-key-file or $KVSERVE_API_KEY)", "api-key")
	f.String(&apiKeyFile, "", "file holding the API keys, one per line", "api-key-file")
	f.String(&allowedHosts, "", "host names a keyless server on loopback answers to besides localhost and IP addresses, comma-separated, or * for any (DNS rebinding protection)", "allowed-hosts")
	f.String(&corsOrigins, "", "web origins allowed to call the API from a browser, comma-separated (e.g. https://app.example), or * for any (default: none)", "cors-origins")
	f.String(&alias, "", "model name reported by /v1/models and responses (default: the model file's name)", "a", "alias")
	f.Bool(&metrics, false, "enable the Prometheus /metrics endpoint", "metrics")
	f.Bool(&ctxShift, false, "when a slot's context fills, drop the older half of its tokens (after n_keep) and keep generating; prompts that do not fit are truncated instead of refused", "context-shift")
	f.Bool(&noCtxShift, false, "turn context shift off (the default)", "no-context-shift")
	f.Bool(&noWebUI, false, "do not serve the web page (chat and cache map) at /", "no-webui")
	f.Bool(&noShare, false, "do not share prefix pages between slots (by default a prompt starting with whole pages another slot holds shares them, copy-on-write)", "no-cache-share")
	f.String(&slotPath, "", "directory for slot save/restore files (default: save/restore disabled)", "slot-save-path")
	var diskDir, diskBudget, spillType, ramSize string
	f.String(&diskDir, "", "directory of the cache's disk tier: slots' caches that would be dropped are spilled there and loaded back for prompts that start with them, across restarts (default: none)", "cache-disk")
	f.String(&diskBudget, "", "most bytes the disk tier's files take, e.g. 4GiB; least recently used entries are evicted (default: no limit)", "cache-disk-budget")
	f.String(&ramSize, "", "RAM tier for idle slots' caches, e.g. 2GiB (a bare number is MiB, as llama-server's -cram), below the live cache budget: spills are held in RAM (and written to --cache-disk in the background), loads and prefetches for queued requests read from it (default: none)", "cache-ram", "cram")
	f.String(&spillType, "", "convert pages down to this type as they are spilled to the disk tier: TYPE or TYPE_K/TYPE_V, e.g. q8_0 (default: as held)", "cache-spill-type")
	f.Int(&queueMax, 0, "completions allowed to wait for a slot (0: 64 per slot)", "queue-max")
	f.Float(&queueTimeout, 60, "seconds a completion waits for a free slot before a 503 (0: answer 503 at once)", "queue-timeout")
	f.Float(&shutdownTimeout, 30, "seconds to let in-flight requests finish on SIGTERM/SIGINT before cancelling them", "shutdown-timeout")
	var maxBodyMiB, maxRespMiB int
	f.Int(&maxBodyMiB, server.DefaultMaxBodyBytes>>20, "largest request body in MiB", "max-body-mib")
	f.Int(&maxRespMiB, server.DefaultMaxResponseBytes>>20, "largest response built in memory in MiB: a non-streaming completion stops generating there (stream for more)", "max-response-mib")
	f.String(&logLevel, "info", "log level: debug, info, warn, error", "log-level")
	// llama-server's flags: request defaults and options (llamaflags.go
	// lists the ones kvserve notes or refuses).
	f.section("llama-server's request defaults and options:")
	d := server.DefaultDefaults()
	registerSampling(f, &d.Sample)
	var samplers, samplingSeq string
	var breakers, logitBias multiString
	registerChainSampling(f, &d.Sample, &samplers, &samplingSeq, &breakers, &logitBias)
	f.Int(&d.NPredict, d.NPredict, "default number of tokens to generate (-1: until end of generation or context)", "n", "predict", "n-predict")
	f.Int(&d.NKeep, d.NKeep, "default n_keep: prompt tokens a context shift keeps (-1: all)", "keep")
	f.Bool(&d.IgnoreEOS, false, "default ignore_eos: generate past end-of-generation tokens", "ignore-eos")
	f.Switch(&d.CachePrompt, true, "reuse a slot's cached prompt prefix (the default; request field cache_prompt)", "cache-prompt")
	f.Switch(&d.CachePrompt, false, "evaluate every prompt from the start by default", "no-cache-prompt")
	f.Int(&d.CacheReuse, 0, "least chunk of a previous prompt reused after a shifted prefix (0: off; request field n_cache_reuse)", "cache-reuse")
	var grammarText, grammarFile, schemaText, schemaFile string
	f.String(&grammarText, "", "default GBNF grammar of requests that give no grammar, json_schema or response_format", "grammar")
	f.String(&grammarFile, "", "read the default GBNF grammar from a file", "grammar-file")
	f.String(&schemaText, "", "default JSON Schema (constrains the output as json_schema would) of requests that give no grammar, json_schema or response_format", "j", "json-schema")
	f.String(&schemaFile, "", "read the default JSON Schema from a file", "jf", "json-schema-file")
	noSlots := false
	f.Switch(&noSlots, false, "serve GET /slots (the default)", "slots")
	f.Switch(&noSlots, true, "do not serve GET /slots", "no-slots")
	f.Switch(&noWebUI, false, "serve the web page at / (the default)", "webui")
	var chatTemplate, chatTemplateFile, chatKwargs, reasoning, logFile, sslKey, sslCert string
	var reasoningBudget, verbosity int
	var noPrefill, verbose, logDisable bool
	f.String(&chatTemplate, "", "chat template: a built-in name ("+strings.Join(chat.NamedList(), ", ")+") or Jinja source; default: the model's", "chat-template")
	f.String(&chatTemplateFile, "", "read the chat template (Jinja) from a file", "chat-template-file")
	f.String(&chatKwargs, "", `extra chat template variables for every request, a JSON object (e.g. {"enable_thinking": false})`, "chat-template-kwargs")
	f.Int(&reasoningBudget, -1, "thinking budget: -1 unrestricted, 0 turns thinking off (enable_thinking=false)", "reasoning-budget")
	f.String(&reasoning, "auto", "thinking: on, off (enable_thinking=false) or auto", "rea", "reasoning")
	f.Bool(&noPrefill, false, "a final assistant message is a whole turn followed by a new generation prompt, instead of being continued", "no-prefill-assistant")
	f.Bool(&verbose, false, "log everything (--log-level debug)", "v", "verbose", "log-verbose")
	f.Int(&verbosity, -1, "llama.cpp's log verbosity: 4+ debug, 3 info, 2 warn, 1 or less error (-1: --log-level)", "lv", "verbosity", "log-verbosity")
	f.Bool(&logDisable, false, "log nothing", "log-disable")
	f.String(&logFile, "", "write the log to FILE (appended) instead of stderr", "log-file")
	f.String(&sslKey, "", "serve HTTPS with this PEM private key (with --ssl-cert-file)", "ssl-key-file")
	f.String(&sslCert, "", "serve HTTPS with this PEM certificate (with --ssl-key-file)", "ssl-cert-file")
	var lc llamaCompat
	registerLlamaCompat(f, &lc)
	f.String(&reasoningFormat, server.ReasoningAuto, "chat reasoning: auto (separate <think> text into reasoning_content when the template has thinking markers), deepseek (always), none (leave it in the content)", "reasoning-format")
	var embeddings, reranking bool
	var pooling string
	f.Bool(&embeddings, false, "serve embeddings: /embedding, /v1/embeddings (completions keep working)", "embeddings", "embedding")
	f.String(&pooling, "", "embedding pooling: none, mean, cls, last, rank (default: the model file's, else none)", "pooling")
	f.Bool(&reranking, false, "serve /rerank (embeddings with rank pooling; the model needs a rank head)", "reranking", "rerank")
	var loras []server.LoraAdapter
	var loraNoApply bool
	f.fs.Var(&loraFlag{list: &loras}, "lora", "LoRA adapter file (GGUF), applied at scale 1; repeatable")
	f.names([]string{"lora"})
	f.fs.Var(&loraFlag{list: &loras, scaled: true}, "lora-scaled", "LoRA adapter with its scale: FILE:SCALE (or FILE SCALE); repeatable")
	f.names([]string{"lora-scaled"})
	f.Bool(&loraNoApply, false, "load the LoRA adapters at scale 0 (set scales with POST /lora-adapters)", "lora-init-without-apply")
	pos, err := f.parse(joinLoraScaled(args))
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	if loraNoApply {
		for i := range loras {
			loras[i].Scale = 0
		}
	}
	if reranking {
		if pooling != "" && pooling != "rank" {
			return fmt.Errorf("--reranking uses rank pooling, not --pooling %s", pooling)
		}
		embeddings, pooling = true, "rank"
	}
	if pooling != "" {
		if _, err := engine.ParsePooling(pooling); err != nil {
			return fmt.Errorf("--pooling: %w", err)
		}
	}
	if err := lc.check(); err != nil {
		return err
	}
	if err := chainFlags(&d.Sample, samplers, samplingSeq, breakers, logitBias); err != nil {
		return err
	}
	if err := d.Sample.Validate(); err != nil {
		return err
	}
	if d.NPredict < -1 {
		d.NPredict = -1 // llama.cpp's -2 (until the context fills) is -1 here
	}
	if d.NKeep < -1 {
		return fmt.Errorf("--keep must be >= -1")
	}
	if d.CacheReuse < 0 {
		return fmt.Errorf("--cache-reuse must be >= 0")
	}
	if d.Grammar, err = defaultGrammar(grammarText, grammarFile, schemaText, schemaFile); err != nil {
		return err
	}
	tmplSrc, kwargs, err := chatOptions(chatTemplate, chatTemplateFile, chatKwargs, reasoningBudget, reasoning)
	if err != nil {
		return err
	}
	if slots < 1 {
		return fmt.Errorf("-np must be at least 1")
	}
	if mf.ctx < 0 {
		return fmt.Errorf("-c must be >= 0")
	}
	if maxBodyMiB < 1 {
		return fmt.Errorf("--max-body-mib must be at least 1")
	}
	if maxRespMiB < 1 {
		return fmt.Errorf("--max-response-mib must be at least 1")
	}
	keys, err := apiKeys(apiKey, apiKeyFile, os.Getenv("KVSERVE_API_KEY"))
	if err != nil {
		return err
	}
	var origins []string
	for _, o := range strings.Split(corsOrigins, ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		if o != "*" {
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
				return fmt.Errorf("--cors-origins: %q is not an origin (scheme://host[:port], e.g. https://app.example:8443) or *", o)
			}
		}
		origins = append(origins, o)
	}
	var hosts []string
	for _, h := range strings.Split(allowedHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	maxBody = int64(maxBodyMiB) << 20
	if !server.ValidReasoningFormat(reasoningFormat) {
		return fmt.Errorf("--reasoning-format must be auto, deepseek or none, not %q", reasoningFormat)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("--log-level: %v", err)
	}
	switch {
	case verbose || verbosity >= 4:
		level = slog.LevelDebug
	case verbosity == 3:
		level = slog.LevelInfo
	case verbosity == 2:
		level = slog.LevelWarn
	case verbosity >= 0:
		level = slog.LevelError
	}
	var logOut io.Writer = os.Stderr
	if logFile != "" {
		lf, err := os.OpenFile(logFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("--log-file: %w", err)
		}
		defer lf.Close()
		logOut = lf
	}
	if logDisable {
		logOut = io.Discard
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))
	for _, n := range lc.notes() {
		log.Info("llama-server flag: " + n)
	}
	if (sslKey == "") != (sslCert == "") {
		return fmt.Errorf("--ssl-key-file and --ssl-cert-file go together")
	}
	var tlsConf *tls.Config
	if sslKey != "" {
		cert, err := tls.LoadX509KeyPair(sslCert, sslKey)
		if err != nil {
			return fmt.Errorf("--ssl-cert-file/--ssl-key-file: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if slotPath != "" {
		st, err := os.Stat(slotPath)
		if err != nil {
			return fmt.Errorf("--slot-save-path: %w", err)
		}
		if !st.IsDir() {
			return fmt.Errorf("--slot-save-path %s is not a directory", slotPath)
		}
	}
	// Check the cache options before listening (they are checked against
	// the model again when it loads).
	for _, t := range []string{mf.cache.TypeK, mf.cache.TypeV} {
		if _, err := kvcache.ParseType(t); err != nil {
			return err
		}
	}
	autoKeyChannels(f, &pf, &mf.cache)
	pol, err := pf.Policy()
	if err != nil {
		return err
	}
	var diskBytes int64
	if diskBudget != "" {
		if diskBytes, err = cachepolicy.ParseBytes(diskBudget); err != nil || diskBytes < 0 {
			return fmt.Errorf("--cache-disk-budget %q: want a size such as 4GiB", diskBudget)
		}
		if diskDir == "" {
			return fmt.Errorf("--cache-disk-budget needs --cache-disk DIR")
		}
	}
	var ramBytes int64
	if ramSize != "" {
		if mib, err := strconv.ParseInt(ramSize, 10, 64); err == nil { // llama-server's -cram N: MiB
			ramBytes = mib << 20
		} else if ramBytes, err = cachepolicy.ParseBytes(ramSize); err != nil {
			ramBytes = -1
		}
		if ramBytes < 0 {
			return fmt.Errorf("--cache-ram %q: want a size such as 2GiB, or MiB as a number (0: none)", ramSize)
		}
	}
	if _, _, err := server.ParseSpillType(spillType); err != nil {
		return err
	}
	if spillType != "" && diskDir == "" && ramBytes == 0 {
		return fmt.Errorf("--cache-spill-type needs --cache-disk DIR or --cache-ram SIZE")
	}
	spec, err := sf.options(mf.cache)
	if err != nil {
		return err
	}
	qt := time.Duration(queueTimeout * float64(time.Second))
	if queueTimeout <= 0 {
		qt = -1
	}
	o := server.Options{
		ModelPath: mf.model, Threads: mf.threads, NoRepack: mf.noRepack,
		Slots: slots, Ctx: mf.ctx, Batch: mf.batch, PrefillChunk: prefill, Cache: mf.cache, Policy: pol,
		Spec: spec, DraftPath: sf.draft,
		ContextShift: ctxShift && !noCtxShift, NoWebUI: noWebUI, Embeddings: embeddings, Pooling: pooling, Lora: loras, NoSharePrefix: noShare,
		Alias: alias, Metrics: metrics, SlotSavePath: slotPath, MaxBodyBytes: maxBody,
		CacheDisk: diskDir, CacheDiskBudget: diskBytes, CacheSpillType: spillType, CacheRAM: ramBytes,
		MaxResponseBytes: int64(maxRespMiB) << 20, APIKeys: keys, CORSOrigins: origins, AllowedHosts: hosts, ReasoningFormat: reasoningFormat,
		QueueTimeout: qt, QueueMax: queueMax,
		ShutdownTimeout: time.Duration(shutdownTimeout * float64(time.Second)),
		Logger:          log,
		Defaults:        &d, ChatTemplate: tmplSrc, ChatTemplateKwargs: kwargs, NoSlots: noSlots, NoPrefillAssistant: noPrefill,
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return server.New(o).Serve(ctx, ln)
}

// apiKeys gathers the API keys from --api-key, the --api-key-file (one
// per line; blank lines and lines starting with # are skipped) and the
// KVSERVE_API_KEY environment variable.
func apiKeys(flagKey, file, env string) ([]string, error) {
	var keys []string
	for _, k := range strings.Split(flagKey, ",") { // llama-server: a comma-separated list
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	if k := strings.TrimSpace(env); k != "" {
		keys = append(keys, k)
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--api-key-file: %w", err)
		}
		n := 0
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				keys = append(keys, line)
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("--api-key-file %s holds no key", file)
		}
	}
	return keys, nil
}

// loraFlag collects --lora FILE and --lora-scaled FILE:SCALE values.
type loraFlag struct {
	list   *[]server.LoraAdapter
	scaled bool
}

func (l *loraFlag) String() string { return "" }

func (l *loraFlag) Set(v string) error {
	a := server.LoraAdapter{Path: v, Scale: 1}
	if l.scaled {
		i := strings.LastIndex(v, ":")
		if i < 0 {
			return fmt.Errorf("want FILE:SCALE (or FILE SCALE), not %q", v)
		}
		x, err := strconv.ParseFloat(v[i+1:], 32)
		if err != nil {
			return fmt.Errorf("the scale in %q is not a number", v)
		}
		a.Path, a.Scale = v[:i], float32(x)
	}
	if a.Path == "" {
		return fmt.Errorf("empty adapter path")
	}
	*l.list = append(*l.list, a)
	return nil
}

// joinLoraScaled turns llama-server's two-argument form "--lora-scaled FILE
// SCALE" into "--lora-scaled FILE:SCALE".
func joinLoraScaled(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		out = append(out, args[i])
		if (args[i] == "--lora-scaled" || args[i] == "-lora-scaled") && i+2 < len(args) {
			if _, err := strconv.ParseFloat(args[i+2], 32); err == nil {
				out = append(out, args[i+1]+":"+args[i+2])
				i += 2
			}
		}
	}
	return out
}

// chatOptions reads the chat template flags: the template's Jinja source
// ("" for the model's own) and the template variables every request gets.
func chatOptions(name, file, kwargsJSON string, budget int, reasoning string) (string, map[string]any, error) {
	src := ""
	switch {
	case name != "" && file != "":
		return "", nil, fmt.Errorf("give --chat-template or --chat-template-file, not both")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", nil, fmt.Errorf("--chat-template-file: %w", err)
		}
		src = string(b)
	case strings.Contains(name, "{{") || strings.Contains(name, "{%"):
		src = name
	case name != "":
		s, ok, known := chat.Named(name)
		if !ok {
			what := "is not a chat template name"
			if known {
				what = "is one of llama.cpp's template names that kvserve does not build in (give the Jinja source with --chat-template-file)"
			}
			return "", nil, fmt.Errorf("--chat-template %q %s; built in: %s", name, what, strings.Join(chat.NamedList(), ", "))
		}
		src = s
	}
	if src != "" {
		if _, err := chat.New(src, "", ""); err != nil {
			return "", nil, fmt.Errorf("chat template: %w", err)
		}
	}
	var kwargs map[string]any
	if kwargsJSON != "" {
		if err := json.Unmarshal([]byte(kwargsJSON), &kwargs); err != nil || kwargs == nil {
			return "", nil, fmt.Errorf("--chat-template-kwargs must be a JSON object: %q", kwargsJSON)
		}
	}
	set := func(k string, v any) {
		if kwargs == nil {
			kwargs = map[string]any{}
		}
		kwargs[k] = v
	}
	switch budget {
	case -1:
	case 0:
		set("enable_thinking", false)
	default:
		return "", nil, fmt.Errorf("--reasoning-budget must be -1 (unrestricted) or 0 (no thinking); a token budget is not implemented")
	}
	switch reasoning {
	case "auto":
	case "on":
		set("enable_thinking", true)
	case "off":
		set("enable_thinking", false)
	default:
		return "", nil, fmt.Errorf("--reasoning must be on, off or auto, not %q", reasoning)
	}
	return src, kwargs, nil
}

// defaultGrammar compiles the server-wide default constraint of
// --grammar, --grammar-file, -j/--json-schema or -jf/--json-schema-file
// (at most one; nil when none is given).
func defaultGrammar(text, file, schema, schemaFile string) (*grammar.Grammar, error) {
	given := 0
	for _, v := range []string{text, file, schema, schemaFile} {
		if v != "" {
			given++
		}
	}
	if given == 0 {
		return nil, nil
	}
	if given > 1 {
		return nil, fmt.Errorf("give only one of --grammar, --grammar-file, --json-schema and --json-schema-file")
	}
	read := func(flag, path string) (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("%s: %w", flag, err)
		}
		return string(b), nil
	}
	var err error
	switch {
	case file != "":
		if text, err = read("--grammar-file", file); err != nil {
			return nil, err
		}
		fallthrough
	case text != "":
		g, err := grammar.Parse(text, grammar.Limits{})
		if err != nil {
			return nil, fmt.Errorf("--grammar: %w", err)
		}
		return g, nil
	case schemaFile != "":
		if schema, err = read("--json-schema-file", schemaFile); err != nil {
			return nil, err
		}
	}
	if !json.Valid([]byte(schema)) {
		return nil, fmt.Errorf("--json-schema: not valid JSON")
	}
	g, err := grammar.FromJSONSchema(json.RawMessage(schema), grammar.Limits{})
	if err != nil {
		return nil, fmt.Errorf("--json-schema: %w", err)
	}
	return g, nil
}
