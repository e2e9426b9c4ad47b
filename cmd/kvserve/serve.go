package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/server"
)

func cmdServe(args []string) error {
	f := newFlags("serve", "kvserve serve [-m MODEL] [--host HOST] [--port PORT] [-np SLOTS] [-c CTX] [flags]\n\n-c is the total context, split evenly across the -np slots; -c 0 (the default)\ngives every slot the model's training context.")
	var mf modelFlags
	mf.register(f, 0)
	var pf policyFlags
	registerPolicy(f, &pf)
	var host, apiKey, alias, slotPath, logLevel, reasoningFormat string
	var port, slots, prefill int
	var metrics bool
	var maxBody int64
	var queueTimeout, shutdownTimeout float64
	var queueMax int
	f.String(&host, "127.0.0.1", "address to listen on", "host")
	f.Int(&port, 8080, "port to listen on (0: any free port)", "port")
	f.Int(&slots, 1, "parallel slots; -c is split evenly across them", "np", "parallel")
	f.Int(&prefill, 0, "prompt tokens per step while other slots generate (0: 128)", "prefill-chunk")
	f.String(&apiKey, "", "API key required as 'Authorization: Bearer KEY' (default: none)", "api-key")
	f.String(&alias, "", "model name reported by /v1/models and responses (default: the model path)", "alias")
	f.Bool(&metrics, false, "enable the Prometheus /metrics endpoint", "metrics")
	f.String(&slotPath, "", "directory for slot save/restore files (default: save/restore disabled)", "slot-save-path")
	f.Int(&queueMax, 0, "completions allowed to wait for a slot (0: 64 per slot)", "queue-max")
	f.Float(&queueTimeout, 60, "seconds a completion waits for a free slot before a 503 (0: answer 503 at once)", "queue-timeout")
	f.Float(&shutdownTimeout, 30, "seconds to let in-flight requests finish on SIGTERM/SIGINT before cancelling them", "shutdown-timeout")
	var maxBodyMiB int
	f.Int(&maxBodyMiB, server.DefaultMaxBodyBytes>>20, "largest request body in MiB", "max-body-mib")
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
	pol, err := pf.policy()
	if err != nil {
		return err
	}
	qt := time.Duration(queueTimeout * float64(time.Second))
	if queueTimeout <= 0 {
		qt = -1
	}
	o := server.Options{
		ModelPath: mf.model, Threads: mf.threads,
		Slots: slots, Ctx: mf.ctx, Batch: mf.batch, PrefillChunk: prefill, Cache: mf.cache, Policy: pol,
		Alias: alias, Metrics: metrics, SlotSavePath: slotPath, MaxBodyBytes: maxBody, ReasoningFormat: reasoningFormat,
		QueueTimeout: qt, QueueMax: queueMax,
		ShutdownTimeout: time.Duration(shutdownTimeout * float64(time.Second)),
		Logger:          log,
	}
	if apiKey != "" {
		o.APIKeys = []string{apiKey}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return server.New(o).Serve(ctx, ln)
}
