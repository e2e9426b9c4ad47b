package main

import (
	"context"
	"fmt"
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
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/server"
)

func cmdServe(args []string) error {
	f := newFlags("serve", "kvserve serve [-m MODEL] [--host HOST] [--port PORT] [-np SLOTS] [-c CTX] [flags]\n\n-c is the total context, split evenly across the -np slots; -c 0 (the default)\ngives every slot the model's training context.")
	var mf modelFlags
	mf.register(f, 0)
	var pf cachepolicy.Flags
	pf.Bind(f)
	var host, apiKey, apiKeyFile, corsOrigins, alias, slotPath, logLevel, reasoningFormat string
	var port, slots, prefill int
	var metrics, ctxShift, noCtxShift, noWebUI, noShare bool
	var maxBody int64
	var queueTimeout, shutdownTimeout float64
	var queueMax int
	f.String(&host, "127.0.0.1", "address to listen on", "host")
	f.Int(&port, 8080, "port to listen on (0: any free port)", "port")
	f.Int(&slots, 1, "parallel slots; -c is split evenly across them", "np", "parallel")
	f.Int(&prefill, 0, "prompt tokens per step while other slots generate (0: 128)", "prefill-chunk")
	f.String(&apiKey, "", "API key required as 'Authorization: Bearer KEY' (shows in ps: prefer --api-key-file or $KVSERVE_API_KEY)", "api-key")
	f.String(&apiKeyFile, "", "file holding the API keys, one per line", "api-key-file")
	f.String(&corsOrigins, "", "web origins allowed to call the API from a browser, comma-separated (e.g. https://app.example), or * for any (default: none)", "cors-origins")
	f.String(&alias, "", "model name reported by /v1/models and responses (default: the model file's name)", "alias")
	f.Bool(&metrics, false, "enable the Prometheus /metrics endpoint", "metrics")
	f.Bool(&ctxShift, false, "when a slot's context fills, drop the older half of its tokens (after n_keep) and keep generating; prompts that do not fit are truncated instead of refused", "context-shift")
	f.Bool(&noCtxShift, false, "turn context shift off (the default)", "no-context-shift")
	f.Bool(&noWebUI, false, "do not serve the web page (chat and cache map) at /", "no-webui")
	f.Bool(&noShare, false, "do not share prefix pages between slots (by default a prompt starting with whole pages another slot holds shares them, copy-on-write)", "no-cache-share")
	f.String(&slotPath, "", "directory for slot save/restore files (default: save/restore disabled)", "slot-save-path")
	var diskDir, diskBudget string
	f.String(&diskDir, "", "directory of the cache's disk tier: slots' caches that would be dropped are spilled there and loaded back for prompts that start with them, across restarts (default: none)", "cache-disk")
	f.String(&diskBudget, "", "most bytes the disk tier's files take, e.g. 4GiB; least recently used entries are evicted (default: no limit)", "cache-disk-budget")
	f.Int(&queueMax, 0, "completions allowed to wait for a slot (0: 64 per slot)", "queue-max")
	f.Float(&queueTimeout, 60, "seconds a completion waits for a free slot before a 503 (0: answer 503 at once)", "queue-timeout")
	f.Float(&shutdownTimeout, 30, "seconds to let in-flight requests finish on SIGTERM/SIGINT before cancelling them", "shutdown-timeout")
	var maxBodyMiB, maxRespMiB int
	f.Int(&maxBodyMiB, server.DefaultMaxBodyBytes>>20, "largest request body in MiB", "max-body-mib")
	f.Int(&maxRespMiB, server.DefaultMaxResponseBytes>>20, "largest response built in memory in MiB: a non-streaming completion stops generating there (stream for more)", "max-response-mib")
	f.String(&logLevel, "info", "log level: debug, info, warn, error", "log-level")
	f.String(&reasoningFormat, server.ReasoningAuto, "chat reasoning: auto (separate <think> text into reasoning_content when the template has thinking markers), deepseek (always), none (leave it in the content)", "reasoning-format")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
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
	maxBody = int64(maxBodyMiB) << 20
	if !server.ValidReasoningFormat(reasoningFormat) {
		return fmt.Errorf("--reasoning-format must be auto, deepseek or none, not %q", reasoningFormat)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("--log-level: %v", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
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
	qt := time.Duration(queueTimeout * float64(time.Second))
	if queueTimeout <= 0 {
		qt = -1
	}
	o := server.Options{
		ModelPath: mf.model, Threads: mf.threads,
		Slots: slots, Ctx: mf.ctx, Batch: mf.batch, PrefillChunk: prefill, Cache: mf.cache, Policy: pol,
		ContextShift: ctxShift && !noCtxShift, NoWebUI: noWebUI, NoSharePrefix: noShare,
		Alias: alias, Metrics: metrics, SlotSavePath: slotPath, MaxBodyBytes: maxBody,
		CacheDisk: diskDir, CacheDiskBudget: diskBytes,
		MaxResponseBytes: int64(maxRespMiB) << 20, APIKeys: keys, CORSOrigins: origins, ReasoningFormat: reasoningFormat,
		QueueTimeout: qt, QueueMax: queueMax,
		ShutdownTimeout: time.Duration(shutdownTimeout * float64(time.Second)),
		Logger:          log,
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return err
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
	if k := strings.TrimSpace(flagKey); k != "" {
		keys = append(keys, k)
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
