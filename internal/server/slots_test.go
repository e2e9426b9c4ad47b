package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/testassets"
)

const slotPrompt = "The Linux kernel is a free and open-source, monolithic, modular, multitasking, Unix-like operating system kernel. It was originally written in 1991 by"

func slotAction(t *testing.T, base string, id int, action, file string) (int, map[string]any, []byte) {
	t.Helper()
	var body any = map[string]any{"filename": file}
	if action == "erase" {
		body = nil
	}
	st, b := post(t, base+"/slots/"+itoa(id)+"?action="+action, body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return st, m, b
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func slotCached(t *testing.T, base string, id int) int {
	t.Helper()
	st, b := get(t, base+"/slots")
	if st != 200 {
		t.Fatalf("/slots: %d %s", st, b)
	}
	var slots []map[string]any
	if err := json.Unmarshal(b, &slots); err != nil {
		t.Fatal(err)
	}
	return int(num(slots[id]["n_cached"]))
}

func TestSlotSaveRestore(t *testing.T) {
	dir := t.TempDir()
	s, ts := newTestServer(t, Options{Slots: 2, SlotSavePath: dir})
	req := map[string]any{"prompt": slotPrompt, "n_predict": 16, "temperature": 0, "id_slot": 0}
	first := postOK(t, ts.URL+"/completion", req)
	nPrompt := int(num(first["tokens_evaluated"]))
	if cacheN(first) != 0 {
		t.Fatalf("fresh slot had %v tokens cached", cacheN(first))
	}
	// GET /slots shows the cached tokens (prompt + the generated tokens
	// fed back; the last sampled one is not in the cache).
	if n := slotCached(t, ts.URL, 0); n != nPrompt+15 {
		t.Errorf("slot 0 caches %d tokens, want %d", n, nPrompt+15)
	}

	st, m, b := slotAction(t, ts.URL, 0, "save", "slot0.bin")
	if st != 200 || num(m["n_saved"]) != float64(nPrompt+15) || num(m["n_written"]) <= 0 || m["filename"] != "slot0.bin" || m["timings"] == nil {
		t.Fatalf("save: %d %s", st, b)
	}
	fi, err := os.Stat(filepath.Join(dir, "slot0.bin"))
	if err != nil || fi.Size() != int64(num(m["n_written"])) {
		t.Fatalf("saved file: %v, size %v vs n_written %v", err, fi, m["n_written"])
	}

	// Erase slot 0.
	st, m, b = slotAction(t, ts.URL, 0, "erase", "")
	if st != 200 || num(m["n_erased"]) != float64(nPrompt+15) || slotCached(t, ts.URL, 0) != 0 {
		t.Fatalf("erase: %d %s", st, b)
	}

	// Restore into slot 1: the same greedy continuation, with the prompt
	// reused from the restored cache.
	st, m, b = slotAction(t, ts.URL, 1, "restore", "slot0.bin")
	if st != 200 || num(m["n_restored"]) != float64(nPrompt+15) || num(m["n_read"]) != float64(fi.Size()) {
		t.Fatalf("restore: %d %s", st, b)
	}
	if slotCached(t, ts.URL, 1) != nPrompt+15 {
		t.Errorf("slot 1 after restore caches %d", slotCached(t, ts.URL, 1))
	}
	req["id_slot"] = 1
	again := postOK(t, ts.URL+"/completion", req)
	if again["content"] != first["content"] || cacheN(again) != float64(nPrompt-1) {
		t.Errorf("after restore: cache_n %v (want %d), content %q vs %q", cacheN(again), nPrompt-1, again["content"], first["content"])
	}

	// Another server (another cache, other default types) restores it
	// too: pages keep their own types.
	_, ts2 := newTestServer(t, Options{Slots: 1, SlotSavePath: dir, Cache: engine.CacheOptions{TypeK: "q8_0", TypeV: "q8_0"}})
	if st, _, b := slotAction(t, ts2.URL, 0, "restore", "slot0.bin"); st != 200 {
		t.Fatalf("restore in another server: %d %s", st, b)
	}
	req["id_slot"] = 0
	other := postOK(t, ts2.URL+"/completion", req)
	if other["content"] != first["content"] || cacheN(other) != float64(nPrompt-1) {
		t.Errorf("other server: cache_n %v content %q", cacheN(other), other["content"])
	}

	// Saving an empty slot works and restores as empty.
	slotAction(t, ts.URL, 0, "erase", "")
	if st, m, b := slotAction(t, ts.URL, 0, "save", "empty.bin"); st != 200 || num(m["n_saved"]) != 0 {
		t.Errorf("save empty: %d %s", st, b)
	}
	if st, m, b := slotAction(t, ts.URL, 1, "restore", "empty.bin"); st != 200 || num(m["n_restored"]) != 0 || slotCached(t, ts.URL, 1) != 0 {
		t.Errorf("restore empty: %d %s", st, b)
	}
	// Overwriting a file replaces it atomically; no temporary files stay.
	slotAction(t, ts.URL, 1, "restore", "slot0.bin")
	if st, _, b := slotAction(t, ts.URL, 1, "save", "empty.bin"); st != 200 {
		t.Errorf("overwrite: %d %s", st, b)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "empty.bin,slot0.bin" {
		t.Errorf("save directory holds %v", names)
	}
	_ = s
}

// rewrite builds a slot file from an existing one with its header
// changed, and a valid checksum.
func rewrite(t *testing.T, src, dst string, edit func(h map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	hlen := binary.LittleEndian.Uint32(b[8:12])
	var h map[string]any
	if err := json.Unmarshal(b[12:12+hlen], &h); err != nil {
		t.Fatal(err)
	}
	edit(h)
	nh, _ := json.Marshal(h)
	var out bytes.Buffer
	out.WriteString(slotMagic)
	binary.Write(&out, binary.LittleEndian, uint32(len(nh)))
	out.Write(nh)
	out.Write(b[12+hlen : len(b)-32])
	sum := sha256.Sum256(out.Bytes())
	out.Write(sum[:])
	if err := os.WriteFile(dst, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Corrupt, truncated, foreign and mismatched files are refused with a
// clear 400 and the slot is left as it was.
func TestSlotRestoreRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	_, ts := newTestServer(t, Options{Slots: 2, SlotSavePath: dir, QueueTimeout: 300 * time.Millisecond})
	postOK(t, ts.URL+"/completion", map[string]any{"prompt": slotPrompt, "n_predict": 4, "temperature": 0, "id_slot": 0})
	if st, _, b := slotAction(t, ts.URL, 0, "save", "good.bin"); st != 200 {
		t.Fatalf("save: %d %s", st, b)
	}
	good, _ := os.ReadFile(filepath.Join(dir, "good.bin"))
	// Slot 1 holds something else, which must survive every failed restore.
	postOK(t, ts.URL+"/completion", map[string]any{"prompt": "Hello there", "n_predict": 3, "temperature": 0, "id_slot": 1})
	before := slotCached(t, ts.URL, 1)

	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	flip := append([]byte{}, good...)
	flip[len(flip)/2] ^= 0x40
	write("flipped.bin", flip)
	write("truncated.bin", good[:len(good)-100])
	write("short.bin", good[:20])
	write("empty.bin", nil)
	write("foreign.bin", bytes.Repeat([]byte("not a slot file "), 100))
	hdrFlip := append([]byte{}, good...)
	hdrFlip[20] ^= 0x01
	write("header-flipped.bin", hdrFlip)
	huge := append([]byte{}, good...)
	binary.LittleEndian.PutUint32(huge[8:12], 0xFFFFFFF0)
	write("huge-header.bin", huge)
	rewrite(t, filepath.Join(dir, "good.bin"), filepath.Join(dir, "other-model.bin"), func(h map[string]any) { h["model_fingerprint"] = strings.Repeat("0", 64) })
	rewrite(t, filepath.Join(dir, "good.bin"), filepath.Join(dir, "other-shape.bin"), func(h map[string]any) { h["kv_heads"] = 3.0 })
	rewrite(t, filepath.Join(dir, "good.bin"), filepath.Join(dir, "token-count.bin"), func(h map[string]any) { h["n_tokens"] = 3.0 })
	rewrite(t, filepath.Join(dir, "good.bin"), filepath.Join(dir, "bad-token.bin"), func(h map[string]any) {
		toks := h["tokens"].([]any)
		toks[0] = 99999.0
	})
	rewrite(t, filepath.Join(dir, "good.bin"), filepath.Join(dir, "fewer-tokens.bin"), func(h map[string]any) {
		toks := h["tokens"].([]any)
		h["tokens"], h["n_tokens"] = toks[:len(toks)-1], float64(len(toks)-1)
	})
	rewrite(t, filepath.Join(dir, "good.bin"), filepath.Join(dir, "version.bin"), func(h map[string]any) { h["version"] = 99.0 })
	rewrite(t, filepath.Join(dir, "good.bin"), filepath.Join(dir, "unknown-field.bin"), func(h map[string]any) { h["surprise"] = true })

	for _, c := range []struct{ file, msg string }{
		{"flipped.bin", "checksum mismatch"},
		{"truncated.bin", "checksum mismatch"},
		{"short.bin", "truncated"},
		{"empty.bin", "truncated"},
		{"foreign.bin", "not a kvserve slot file"},
		{"header-flipped.bin", "checksum mismatch"},
		{"huge-header.bin", "truncated or corrupt"},
		{"other-model.bin", "different model"},
		{"other-shape.bin", "cache shape"},
		{"token-count.bin", "lists"},
		{"bad-token.bin", "outside the vocabulary"},
		{"fewer-tokens.bin", "positions"},
		{"version.bin", "version 99"},
		{"unknown-field.bin", "bad header"},
	} {
		st, _, b := slotAction(t, ts.URL, 1, "restore", c.file)
		msg := wantError(t, c.file, st, b, 400, TypeInvalidRequest)
		if !strings.Contains(msg, c.msg) || !strings.Contains(msg, c.file) {
			t.Errorf("%s: message %q lacks %q", c.file, msg, c.msg)
		}
		if n := slotCached(t, ts.URL, 1); n != before {
			t.Fatalf("%s: slot 1 changed from %d to %d tokens", c.file, before, n)
		}
	}
	st, _, b := slotAction(t, ts.URL, 1, "restore", "missing.bin")
	wantError(t, "missing file", st, b, 404, TypeNotFound)

	// File names are confined to the save directory.
	for _, name := range []string{"", "../escape.bin", "a/b.bin", `a\b`, ".hidden", "-dash", "..", "a..b", strings.Repeat("x", 129), "nul\x00.bin", "sp ace.bin", "ü.bin"} {
		for _, action := range []string{"save", "restore"} {
			st, _, b := slotAction(t, ts.URL, 0, action, name)
			wantError(t, action+" "+name, st, b, 400, TypeInvalidRequest)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape.bin")); err == nil {
		t.Error("a file escaped the save directory")
	}
	st, b = post(t, ts.URL+"/slots/0?action=save", `{"filename":5}`)
	wantError(t, "numeric filename", st, b, 400, TypeInvalidRequest)

	// A slot that stays busy past the wait (the queue timeout) cannot be
	// saved, restored or erased: 409.
	_, cancel, _ := startStream(t, ts.URL+"/completion", map[string]any{"prompt": "Once", "n_predict": 2000, "ignore_eos": true, "stream": true, "id_slot": 0})
	for _, action := range []string{"save", "restore", "erase"} {
		st, _, b := slotAction(t, ts.URL, 0, action, "good.bin")
		wantError(t, "busy "+action, st, b, http.StatusConflict, TypeInvalidRequest)
	}
	cancel()
}

// A slot action on a busy slot waits for it, as llama-server defers the
// action until the slot is idle.
func TestSlotActionWaitsForBusySlot(t *testing.T) {
	dir := t.TempDir()
	_, ts := newTestServer(t, Options{Slots: 2, SlotSavePath: dir})
	done := make(chan struct{})
	go func() {
		defer close(done)
		post(t, ts.URL+"/completion", map[string]any{"prompt": "Once", "n_predict": 24, "ignore_eos": true, "id_slot": 1})
	}()
	for !slotBusy(t, ts.URL, 1) {
		time.Sleep(time.Millisecond)
	}
	st, m, b := slotAction(t, ts.URL, 1, "save", "waited.bin")
	if st != http.StatusOK || num(m["n_saved"]) < 24 {
		t.Errorf("save of a busy slot: %d %s", st, b)
	}
	<-done
}

func slotBusy(t *testing.T, base string, id int) bool {
	t.Helper()
	_, b := get(t, base+"/slots")
	var slots []map[string]any
	if err := json.Unmarshal(b, &slots); err != nil {
		t.Fatal(err)
	}
	return slots[id]["is_processing"] == true
}

// A file saved with another model is refused.
func TestSlotRestoreOtherModel(t *testing.T) {
	// The f16 kvtest-27m, or under the race detector (whose test engine is
	// that one) the embedded Q8_0 one.
	path := testassets.Path(t, "models/kvtest-27m-f16.gguf")
	if raceEnabled {
		path = ""
	}
	other, err := engine.Load(path, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	dir := t.TempDir()
	so := New(Options{Engine: other, Slots: 1, Ctx: 512, SlotSavePath: dir, Logger: quietLog})
	if err := so.Load(); err != nil {
		t.Fatal(err)
	}
	tso := newHTTPTest(t, so)
	postOK(t, tso.URL+"/completion", map[string]any{"prompt": slotPrompt, "n_predict": 4, "temperature": 0})
	if st, _, b := slotAction(t, tso.URL, 0, "save", "f16.bin"); st != 200 {
		t.Fatalf("save: %d %s", st, b)
	}
	// The same architecture and cache shape, but other weights.
	_, ts := newTestServer(t, Options{Slots: 1, SlotSavePath: dir})
	st, _, b := slotAction(t, ts.URL, 0, "restore", "f16.bin")
	if msg := wantError(t, "other model", st, b, 400, TypeInvalidRequest); !strings.Contains(msg, "different model") {
		t.Errorf("message %q", msg)
	}
}

// A slot file restores into a server with another page size and other
// types: its pages are repacked and converted on load, and the greedy
// continuation equals the original server's after the same conversion
// done by /cache/requantize (issue 17).
func TestSlotRestoreIntoAnyShape(t *testing.T) {
	dir := t.TempDir()
	_, ts := newTestServer(t, Options{Slots: 1, SlotSavePath: dir})
	req := map[string]any{"prompt": slotPrompt, "n_predict": 24, "temperature": 0, "id_slot": 0}
	postOK(t, ts.URL+"/completion", req)
	if st, _, b := slotAction(t, ts.URL, 0, "save", "orig.bin"); st != 200 {
		t.Fatalf("save: %d %s", st, b)
	}
	// The original, converted live; its continuation from the cache.
	postOK(t, ts.URL+"/cache/requantize", map[string]any{"type_k": "q8_0", "type_v": "q4_0"})
	req["n_predict"] = 16
	want := postOK(t, ts.URL+"/completion", req)

	for _, page := range []int{256, 64} {
		co := engine.DefaultCacheOptions()
		co.PageTokens = page
		_, ts2 := newTestServer(t, Options{Slots: 1, SlotSavePath: dir, Cache: co})
		st, b := post(t, ts2.URL+"/slots/0?action=restore", map[string]any{"filename": "orig.bin", "type_k": "q8_0", "type_v": "q4_0"})
		if st != 200 {
			t.Fatalf("restore into %d-token pages: %d %s", page, st, b)
		}
		sc := obj(t, must(get(t, ts2.URL+"/props")))["cache_held"].(map[string]any)
		if sc["type_k"] != "q8_0" || sc["type_v"] != "q4_0" {
			t.Errorf("%d-token pages: held %v", page, sc)
		}
		got := postOK(t, ts2.URL+"/completion", req)
		if got["content"] != want["content"] || cacheN(got) != cacheN(want) {
			t.Errorf("%d-token pages: continuation %q (cached %v), want %q (cached %v)", page, got["content"], cacheN(got), want["content"], cacheN(want))
		}
	}
	// A type the head dimension cannot hold, or an unknown one: 400.
	for _, tk := range []string{"q9_9", ""} {
		body := map[string]any{"filename": "orig.bin", "type_k": tk}
		if tk == "" {
			body["type_k"] = 5
		}
		st, b := post(t, ts.URL+"/slots/0?action=restore", body)
		wantError(t, "bad restore type", st, b, 400, TypeInvalidRequest)
	}
}

// With key and value channels (centred keys and values), a slot file
// restores converted: into the same page size and settings at q8_0/q4_0
// it continues exactly as the original after /cache/requantize to those
// types; into 64-token pages, and into a server without channels, it is
// converted (pages of the asked types, or the file's, with the server's
// statistics layout) and continues from the cache.
func TestSlotRestoreWithChannels(t *testing.T) {
	dir := t.TempDir()
	co := engine.DefaultCacheOptions()
	co.KeyChannels, co.ValueChannels = "centre", "centre"
	_, ts := newTestServer(t, Options{Slots: 1, SlotSavePath: dir, Cache: co})
	req := map[string]any{"prompt": slotPrompt, "n_predict": 24, "temperature": 0, "id_slot": 0}
	postOK(t, ts.URL+"/completion", req)
	if st, _, b := slotAction(t, ts.URL, 0, "save", "chan.bin"); st != 200 {
		t.Fatalf("save: %d %s", st, b)
	}
	postOK(t, ts.URL+"/cache/requantize", map[string]any{"type_k": "q8_0", "type_v": "q4_0"})
	req["n_predict"] = 16
	want := postOK(t, ts.URL+"/completion", req)
	for _, tc := range []struct {
		page     int
		channels string
		exact    bool
	}{{256, "centre", true}, {64, "centre", false}, {256, "off", false}} {
		o := engine.DefaultCacheOptions()
		o.PageTokens, o.KeyChannels, o.ValueChannels = tc.page, tc.channels, tc.channels
		_, ts2 := newTestServer(t, Options{Slots: 1, SlotSavePath: dir, Cache: o})
		if st, b := post(t, ts2.URL+"/slots/0?action=restore", map[string]any{"filename": "chan.bin", "type_k": "q8_0", "type_v": "q4_0"}); st != 200 {
			t.Fatalf("%+v: restore: %d %s", tc, st, b)
		}
		if sc := obj(t, must(get(t, ts2.URL+"/props")))["cache_held"].(map[string]any); sc["type_k"] != "q8_0" || sc["type_v"] != "q4_0" {
			t.Errorf("%+v: held %v", tc, sc)
		}
		got := postOK(t, ts2.URL+"/completion", req)
		if cacheN(got) != cacheN(want) {
			t.Errorf("%+v: %v tokens from the cache, the original %v", tc, cacheN(got), cacheN(want))
		}
		if tc.exact && got["content"] != want["content"] {
			t.Errorf("%+v: continuation %q, want %q", tc, got["content"], want["content"])
		}
	}
}
