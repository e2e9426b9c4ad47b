// Package cachedisk owns kvserve's disk tier of the KV cache: a directory
// of files, each holding one sequence's cached tokens and pages, that the
// scheduler spills a slot's cache to instead of dropping it, and loads
// back when a later prompt starts with the same tokens. It survives a
// restart (the directory is scanned when opened).
//
// A file is
//
//	"KVSDISK1"       8 bytes
//	header length H  uint32, little-endian
//	header           H bytes of JSON: the key (model and cache shape), the
//	                 adapter key (the LoRA adapters and scales the pages were
//	                 computed under: engine.AdapterSet) and the token list
//	payload          the pages (kvcache's sequence format, written by the caller)
//	SHA-256          32 bytes: of everything above
//
// written to a temporary file and renamed into place, so a crash leaves no
// partial file under an entry's name; a file torn by a crash before the
// data reached the disk fails its checksum. A corrupt, truncated or
// unreadable file is skipped with a warning, counted and removed; a file
// of another key (another model or cache shape) is skipped and left alone.
// Files written under an older key of the same caches (Options.Older: a
// key that named settings the payload's own header now carries) are
// served as the tier's own; a spill of the same tokens replaces one.
// Entries are evicted least recently used first to keep the tier under its
// byte budget.
//
// A RAM tier (Options.RAM bytes, --cache-ram) can sit in front: a spill
// then only builds the file's bytes in memory, a background writer writes
// them to the directory (when there is one), and loads of entries held in
// RAM read no file. An entry loaded from disk is kept in RAM, and Prefetch
// reads an entry a queued request will want into RAM ahead of its start.
// RAM holds entries least recently used first out; an entry not yet
// written is never dropped from RAM (it can hold more than its budget
// while the writer catches up). An entry in RAM is checked against its
// checksum before every load, as a file is. An entry is only ever matched for the adapter key it was
// written under: a prefix computed with one LoRA adapter (or scale) is never
// served to a request running under another.
package cachedisk

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

const (
	magic     = "KVSDISK1"
	suffix    = ".kvd"
	maxHeader = 64 << 20
)

// Stats are the tier's counters.
type Stats struct {
	Entries int   // entries on disk
	Bytes   int64 // of the tier's files
	Budget  int64
	// The RAM tier: entries and bytes held, its budget, loads served from
	// it (of Hits), entries read into it ahead of a request (Prefetch).
	RAMEntries int
	RAMBytes   int64
	RAMBudget  int64
	RAMHits    int64
	Prefetched int64
	Spills     int64 // entries written
	Hits       int64 // loads that restored an entry
	Misses     int64 // prompts no entry matched (at least one page)
	Skipped    int64 // files skipped as corrupt, truncated, unreadable or of another key
	Evicted    int64 // entries removed to stay under the budget
	Failed     int64 // spills that could not be written (full disk, ...)
}

type entry struct {
	name    string
	adapter string
	tokens  []int
	size    int64
	used    uint64
	onDisk  bool   // its file is in the directory
	mem     []byte // the file's bytes, when held in RAM (never changed once set)
	loading bool   // a prefetch is reading it
}

// Tier is a disk tier in one directory. Its methods are safe for
// concurrent use.
type Tier struct {
	dir    string // "": RAM only
	key    string
	older  []string
	budget int64
	ram    int64
	log    *slog.Logger

	mu      sync.Mutex
	entries map[string]*entry
	clock   uint64
	st      Stats
	queue   []*entry // RAM entries waiting for the writer
	wake    *sync.Cond
	closed  bool
	writer  sync.WaitGroup
}

// Options configure a tier.
type Options struct {
	Dir string // directory of the disk tier ("": RAM only)
	Key string // what makes entries compatible: the model and cache shape
	// Older: keys entries of the same caches were written under before
	// (served as the tier's own; new entries are written under Key).
	Older  []string
	Budget int64 // most bytes of files (0: no limit)
	RAM    int64 // most bytes of entries held in RAM (0: no RAM tier)
	Log    *slog.Logger
}

type header struct {
	Key     string `json:"key"`
	Adapter string `json:"adapter,omitempty"`
	Tokens  []int  `json:"tokens"`
}

// Open opens (creating it if needed) the tier in dir for caches of the
// given key (what makes entries compatible: the model and cache shape),
// holding at most budget bytes of files (0: no limit). Existing files are
// scanned: their headers read and their checksums checked.
func Open(dir, key string, budget int64, log *slog.Logger) (*Tier, error) {
	return OpenWith(Options{Dir: dir, Key: key, Budget: budget, Log: log})
}

// OpenWith opens a tier: on disk (o.Dir), in RAM (o.RAM), or both. Close
// it to have the writer finish.
func OpenWith(o Options) (*Tier, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Dir == "" && o.RAM <= 0 {
		return nil, errors.New("cache tier: give a directory or a RAM size")
	}
	dir, key, budget := o.Dir, o.Key, o.Budget
	t := &Tier{dir: dir, key: key, older: o.Older, budget: budget, ram: max(o.RAM, 0), log: log, entries: map[string]*entry{}}
	t.st.Budget, t.st.RAMBudget = budget, t.ram
	t.wake = sync.NewCond(&t.mu)
	if t.ram > 0 && dir != "" {
		t.writer.Add(1)
		go t.write()
	}
	if dir == "" {
		return t, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cache disk tier: %w", err)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cache disk tier: %w", err)
	}
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, ".tmp-") { // a spill interrupted by a crash
			os.Remove(filepath.Join(dir, name))
			continue
		}
		if !strings.HasSuffix(name, suffix) || !de.Type().IsRegular() {
			continue
		}
		hdr, size, err := t.check(name)
		if err != nil {
			t.skip(name, err, !errors.Is(err, errForeign))
			continue
		}
		t.clock++
		t.entries[name] = &entry{name: name, adapter: hdr.Adapter, tokens: hdr.Tokens, size: size, used: t.clock, onDisk: true}
		t.st.Bytes += size
	}
	t.st.Entries = len(t.entries)
	t.evict(0)
	return t, nil
}

var errForeign = errors.New("saved for another model or cache shape")

// skip counts and logs a file that is not served (removing it unless it
// belongs to another key).
func (t *Tier) skip(name string, err error, remove bool) {
	t.st.Skipped++
	t.log.Warn("cache disk tier: file skipped", "file", name, "err", err)
	if remove {
		os.Remove(filepath.Join(t.dir, name))
	}
}

// check reads a file's framing, header and checksum.
func (t *Tier) check(name string) (*header, int64, error) {
	f, err := os.Open(filepath.Join(t.dir, name))
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	hdr, _, size, err := t.verify(f)
	return hdr, size, err
}

// verify checks an open file: magic, header, key and checksum; it returns
// the header and where the payload starts and the file's size.
func (t *Tier) verify(f *os.File) (*header, int64, int64, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, 0, 0, err
	}
	return t.verifyFrom(f, st.Size())
}

// verifyFrom checks a file's bytes read from f, size bytes in all.
func (t *Tier) verifyFrom(f io.Reader, size int64) (*header, int64, int64, error) {
	var pre [len(magic) + 4]byte
	if _, err := io.ReadFull(f, pre[:]); err != nil || string(pre[:len(magic)]) != magic {
		return nil, 0, 0, errors.New("not a cache disk tier file, or truncated")
	}
	hlen := int64(binary.LittleEndian.Uint32(pre[len(magic):]))
	start := int64(len(pre)) + hlen
	if hlen > maxHeader || start+sha256.Size > size {
		return nil, 0, 0, errors.New("truncated")
	}
	hb := make([]byte, hlen)
	if _, err := io.ReadFull(f, hb); err != nil {
		return nil, 0, 0, errors.New("truncated")
	}
	h := sha256.New()
	h.Write(pre[:])
	h.Write(hb)
	if _, err := io.CopyN(h, f, size-start-sha256.Size); err != nil {
		return nil, 0, 0, errors.New("truncated")
	}
	sum := make([]byte, sha256.Size)
	if _, err := io.ReadFull(f, sum); err != nil || !bytes.Equal(sum, h.Sum(nil)) {
		return nil, 0, 0, errors.New("checksum mismatch")
	}
	var hdr header
	if err := json.Unmarshal(hb, &hdr); err != nil {
		return nil, 0, 0, fmt.Errorf("bad header: %v", err)
	}
	if hdr.Key != t.key && !slices.Contains(t.older, hdr.Key) {
		return nil, 0, 0, errForeign
	}
	return &hdr, start, size, nil
}

// nameFor is an entry's file name: a hash of its adapter key and tokens.
func nameFor(tokens []int, adapter string) string {
	h := sha256.New()
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(len(adapter)))
	h.Write(b[:])
	h.Write([]byte(adapter))
	for _, tk := range tokens {
		binary.LittleEndian.PutUint32(b[:], uint32(tk))
		h.Write(b[:])
	}
	return hex.EncodeToString(h.Sum(nil)[:16]) + suffix
}

// Has reports whether an entry holds exactly these tokens under this
// adapter key.
func (t *Tier) Has(tokens []int, adapter string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[nameFor(tokens, adapter)]
	return ok && e.adapter == adapter && slices.Equal(e.tokens, tokens)
}

// Put writes an entry for tokens computed under the adapter key adapter,
// the pages written by write (replacing an entry of the same tokens and
// adapter key), then evicts least recently used entries
// over the budget. An entry larger than the budget is not kept. Errors
// (a full disk) are counted and returned; the tier stays consistent.
func (t *Tier) Put(tokens []int, adapter string, write func(io.Writer) error) error {
	if t.ram > 0 {
		return t.putRAM(tokens, adapter, write)
	}
	name := nameFor(tokens, adapter)
	tmp, err := os.CreateTemp(t.dir, ".tmp-*")
	if err != nil {
		return t.failed(err)
	}
	tmpName := tmp.Name()
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmpName)
		return t.failed(err)
	}
	hb, err := json.Marshal(header{Key: t.key, Adapter: adapter, Tokens: tokens})
	if err != nil {
		return fail(err)
	}
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(tmp, h), 1<<20)
	var pre [len(magic) + 4]byte
	copy(pre[:], magic)
	binary.LittleEndian.PutUint32(pre[len(magic):], uint32(len(hb)))
	bw.Write(pre[:])
	bw.Write(hb)
	if err := write(bw); err != nil {
		return fail(err)
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	if _, err := tmp.Write(h.Sum(nil)); err != nil {
		return fail(err)
	}
	st, err := tmp.Stat()
	if err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmpName)
		return t.failed(err)
	}
	size := st.Size()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.budget > 0 && size > t.budget {
		os.Remove(tmpName)
		return nil
	}
	if err := os.Rename(tmpName, filepath.Join(t.dir, name)); err != nil {
		os.Remove(tmpName)
		t.st.Failed++
		return err
	}
	if old, ok := t.entries[name]; ok {
		t.st.Bytes -= old.size
	}
	t.clock++
	t.entries[name] = &entry{name: name, adapter: adapter, tokens: append([]int(nil), tokens...), size: size, used: t.clock, onDisk: true}
	t.st.Bytes += size
	t.st.Spills++
	t.evict(size)
	return nil
}

// encode builds an entry's file bytes in memory.
func (t *Tier) encode(tokens []int, adapter string, write func(io.Writer) error) ([]byte, error) {
	hb, err := json.Marshal(header{Key: t.key, Adapter: adapter, Tokens: tokens})
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	var pre [len(magic) + 4]byte
	copy(pre[:], magic)
	binary.LittleEndian.PutUint32(pre[len(magic):], uint32(len(hb)))
	buf.Write(pre[:])
	buf.Write(hb)
	if err := write(&buf); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(buf.Bytes())
	buf.Write(sum[:])
	return buf.Bytes(), nil
}

// putRAM is Put with a RAM tier: the entry's bytes are held in RAM and
// queued for the writer (when there is a directory).
func (t *Tier) putRAM(tokens []int, adapter string, write func(io.Writer) error) error {
	b, err := t.encode(tokens, adapter, write)
	if err != nil {
		return t.failed(err)
	}
	name := nameFor(tokens, adapter)
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.entries[name]; ok {
		t.forget(old, t.dir != "" && old.onDisk)
	}
	t.clock++
	e := &entry{name: name, adapter: adapter, tokens: append([]int(nil), tokens...), size: int64(len(b)), used: t.clock, mem: b}
	t.entries[name] = e
	t.st.RAMBytes += e.size
	t.st.Spills++
	if t.dir != "" {
		t.queue = append(t.queue, e)
		t.wake.Signal()
	}
	t.evictRAM()
	t.count()
	return nil
}

// forget removes an entry from both tiers (its file too when removeFile).
func (t *Tier) forget(e *entry, removeFile bool) {
	if t.entries[e.name] == e {
		delete(t.entries, e.name)
	}
	if e.mem != nil {
		t.st.RAMBytes -= e.size
		e.mem = nil
	}
	if e.onDisk {
		t.st.Bytes -= e.size
		e.onDisk = false
		if removeFile {
			os.Remove(filepath.Join(t.dir, e.name))
		}
	}
}

// count refreshes the entry counts.
func (t *Tier) count() {
	t.st.Entries, t.st.RAMEntries = 0, 0
	for _, e := range t.entries {
		if e.onDisk {
			t.st.Entries++
		}
		if e.mem != nil {
			t.st.RAMEntries++
		}
	}
}

// evictRAM drops least recently used entries' RAM copies until RAM fits
// its budget: an entry on disk stays there, one without a directory is
// gone; an entry the writer has not written yet stays.
func (t *Tier) evictRAM() {
	for t.st.RAMBytes > t.ram {
		var lru *entry
		for _, e := range t.entries {
			if e.mem != nil && (e.onDisk || t.dir == "") && (lru == nil || e.used < lru.used) {
				lru = e
			}
		}
		if lru == nil {
			return
		}
		if t.dir == "" {
			t.forget(lru, false)
			t.st.Evicted++
			continue
		}
		t.st.RAMBytes -= lru.size
		lru.mem = nil
	}
}

// write is the writer: it writes queued RAM entries to the directory.
func (t *Tier) write() {
	defer t.writer.Done()
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		for len(t.queue) == 0 && !t.closed {
			t.wake.Wait()
		}
		if len(t.queue) == 0 {
			return
		}
		e := t.queue[0]
		t.queue = t.queue[1:]
		if t.entries[e.name] != e || e.mem == nil {
			continue // replaced or dropped meanwhile
		}
		b := e.mem
		t.mu.Unlock()
		err := t.writeFile(e.name, b)
		t.mu.Lock()
		if err != nil {
			t.st.Failed++
			t.log.Warn("cache disk tier: write failed; the entry stays in RAM only", "err", err)
			if t.entries[e.name] != e {
				os.Remove(filepath.Join(t.dir, e.name))
			}
			continue
		}
		if t.entries[e.name] != e { // replaced while written: the newer one's file follows
			continue
		}
		e.onDisk = true
		t.st.Bytes += e.size
		t.evict(e.size)
		t.evictRAM()
		t.count()
	}
}

// writeFile writes b to the directory under name, atomically.
func (t *Tier) writeFile(name string, b []byte) error {
	if t.budget > 0 && int64(len(b)) > t.budget {
		return fmt.Errorf("entry of %d bytes over the disk budget of %d", len(b), t.budget)
	}
	tmp, err := os.CreateTemp(t.dir, ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(t.dir, name)); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

// Close lets the writer write what is queued, then stops it.
func (t *Tier) Close() {
	t.mu.Lock()
	t.closed = true
	t.wake.Broadcast()
	t.mu.Unlock()
	t.writer.Wait()
}

func (t *Tier) failed(err error) error {
	t.mu.Lock()
	t.st.Failed++
	t.mu.Unlock()
	t.log.Warn("cache disk tier: spill failed", "err", err)
	return err
}

// evict removes least recently used entries until the files fit the
// budget (the newest entry, of keep bytes, is removed last).
func (t *Tier) evict(keep int64) {
	for t.budget > 0 && t.st.Bytes > t.budget {
		var lru *entry
		for _, e := range t.entries {
			if e.onDisk && (lru == nil || e.used < lru.used) {
				lru = e
			}
		}
		if lru == nil {
			break
		}
		t.forget(lru, true)
		t.st.Evicted++
	}
	t.count()
}

// Match is an entry that holds the start of a prompt.
type Match struct {
	name    string
	adapter string
	Tokens  []int // the entry's tokens
	Common  int   // how many leading tokens of the prompt they share
}

// Best returns the entry written under the adapter key adapter sharing
// the longest prefix with prompt, if at least min tokens (nil: none;
// counted as a miss).
func (t *Tier) Best(prompt []int, min int, adapter string) *Match {
	t.mu.Lock()
	defer t.mu.Unlock()
	best := t.best(prompt, min, adapter)
	if best == nil {
		t.st.Misses++
	}
	return best
}

func (t *Tier) best(prompt []int, min int, adapter string) *Match {
	var best *Match
	for _, e := range t.entries {
		if e.adapter != adapter {
			continue
		}
		n := 0
		for n < len(e.tokens) && n < len(prompt) && e.tokens[n] == prompt[n] {
			n++
		}
		if n >= min && n > 0 && (best == nil || n > best.Common) {
			best = &Match{name: e.name, adapter: e.adapter, Tokens: e.tokens, Common: n}
		}
	}
	return best
}

// Load checks the entry's file whole (checksum) and hands its payload to
// read. A file that fails its check is skipped (counted, removed) and
// nothing is read.
func (t *Tier) Load(m *Match, read func(io.Reader) error) error {
	t.mu.Lock()
	e := t.entries[m.name]
	var mem []byte
	if e != nil {
		mem = e.mem
	}
	t.mu.Unlock()
	if mem != nil {
		return t.loadBytes(m, mem, read, true)
	}
	if t.dir == "" {
		return errors.New("the entry is gone")
	}
	if t.ram > 0 { // read the file whole and keep it in RAM
		b, err := os.ReadFile(filepath.Join(t.dir, m.name))
		if err != nil {
			t.drop(m.name, err)
			return err
		}
		if err := t.loadBytes(m, b, read, false); err != nil {
			return err
		}
		t.keep(m.name, b)
		return nil
	}
	f, err := os.Open(filepath.Join(t.dir, m.name))
	if err != nil {
		t.drop(m.name, err)
		return err
	}
	defer f.Close()
	hdr, start, size, err := t.verify(f)
	if err == nil && (hdr.Adapter != m.adapter || !slices.Equal(hdr.Tokens, m.Tokens)) {
		err = errors.New("the file changed")
	}
	if err != nil {
		t.drop(m.name, err)
		return err
	}
	if err := read(io.NewSectionReader(f, start, size-start-sha256.Size)); err != nil {
		t.drop(m.name, err)
		return err
	}
	t.mu.Lock()
	if e, ok := t.entries[m.name]; ok {
		t.clock++
		e.used = t.clock
	}
	t.st.Hits++
	t.mu.Unlock()
	return nil
}

func (t *Tier) drop(name string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.entries[name]; ok {
		t.forget(e, false)
		t.count()
	}
	t.st.Skipped++
	t.log.Warn("cache disk tier: entry skipped", "entry", name, "err", err)
	if t.dir != "" {
		os.Remove(filepath.Join(t.dir, name))
	}
}

// loadBytes checks an entry's bytes (from RAM, or a file read whole) and
// hands its payload to read.
func (t *Tier) loadBytes(m *Match, b []byte, read func(io.Reader) error, fromRAM bool) error {
	hdr, start, size, err := t.verifyFrom(bytes.NewReader(b), int64(len(b)))
	if err == nil && (hdr.Adapter != m.adapter || !slices.Equal(hdr.Tokens, m.Tokens)) {
		err = errors.New("the entry changed")
	}
	if err == nil {
		err = read(bytes.NewReader(b[start : size-sha256.Size]))
	}
	if err != nil {
		t.drop(m.name, err)
		return err
	}
	t.mu.Lock()
	if e, ok := t.entries[m.name]; ok {
		t.clock++
		e.used = t.clock
	}
	t.st.Hits++
	if fromRAM {
		t.st.RAMHits++
	}
	t.mu.Unlock()
	return nil
}

// keep holds a file's bytes, read whole, in RAM.
func (t *Tier) keep(name string, b []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.entries[name]; ok && e.mem == nil && int64(len(b)) == e.size {
		e.mem = b
		t.st.RAMBytes += e.size
		t.evictRAM()
		t.count()
	}
}

// Prefetch reads into RAM, in the background, the entry Best would pick
// for prompt (at least min tokens) when it is on disk only: a queued
// request then loads it from RAM when it starts. It does nothing without
// a RAM tier.
func (t *Tier) Prefetch(prompt []int, min int, adapter string) {
	if t.ram <= 0 || t.dir == "" {
		return
	}
	t.mu.Lock()
	m := t.best(prompt, min, adapter)
	var e *entry
	if m != nil {
		e = t.entries[m.name]
	}
	if e == nil || e.mem != nil || e.loading || !e.onDisk || e.size > t.ram {
		t.mu.Unlock()
		return
	}
	e.loading = true
	t.mu.Unlock()
	go func() {
		b, err := os.ReadFile(filepath.Join(t.dir, e.name))
		ok := err == nil
		if ok {
			_, _, _, err = t.verifyFrom(bytes.NewReader(b), int64(len(b)))
			ok = err == nil
		}
		t.mu.Lock()
		e.loading = false
		t.mu.Unlock()
		if ok {
			t.keep(e.name, b)
			t.mu.Lock()
			t.st.Prefetched++
			t.mu.Unlock()
		}
		// A file that fails its check is left to Load, which skips it.
	}()
}

// Stats returns the tier's counters.
func (t *Tier) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st
}
