package cachedisk

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func payload(n int) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(bytes.Repeat([]byte{byte(n)}, 1000+n))
		return err
	}
}

func load(t *testing.T, d *Tier, prompt []int) ([]byte, error) {
	t.Helper()
	m := d.Best(prompt, 1, "")
	if m == nil {
		return nil, errors.New("no match")
	}
	var got []byte
	err := d.Load(m, func(r io.Reader) error {
		var err error
		got, err = io.ReadAll(r)
		return err
	})
	return got, err
}

// Entries are matched by the longest common prefix, loaded checked,
// evicted least recently used under the budget, found again after a
// reopen; corrupt, truncated and foreign files are skipped and counted,
// never served; a failed write (a full disk) leaves the tier consistent.
func TestTier(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir, "model-a", 2600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put([]int{1, 2, 3, 4}, "", payload(1)); err != nil {
		t.Fatal(err)
	}
	if err := d.Put([]int{1, 2, 9}, "", payload(2)); err != nil {
		t.Fatal(err)
	}
	if !d.Has([]int{1, 2, 3, 4}, "") || d.Has([]int{1, 2, 3}, "") {
		t.Fatal("Has")
	}
	if m := d.Best([]int{1, 2, 3, 4, 5}, 1, ""); m == nil || m.Common != 4 {
		t.Fatalf("best match %+v", m)
	}
	if got, err := load(t, d, []int{1, 2, 9, 9}); err != nil || !bytes.Equal(got, bytes.Repeat([]byte{2}, 1002)) {
		t.Fatalf("load: %v (%d bytes)", err, len(got))
	}
	// A third entry passes the budget: the least recently used ({1,2,3,4}) goes.
	if err := d.Put([]int{7}, "", payload(3)); err != nil {
		t.Fatal(err)
	}
	if st := d.Stats(); st.Entries != 2 || st.Evicted != 1 || d.Has([]int{1, 2, 3, 4}, "") || st.Bytes > 2600 {
		t.Fatalf("after eviction: %+v", st)
	}
	// A failed write (a full disk): counted, nothing left behind.
	if err := d.Put([]int{8}, "", func(io.Writer) error { return errors.New("no space left on device") }); err == nil {
		t.Fatal("failed write not reported")
	}
	if st := d.Stats(); st.Failed != 1 || st.Entries != 2 {
		t.Fatalf("after a failed write: %+v", st)
	}
	// Reopen: the entries are found again; a flipped byte, a truncated
	// file and another model's file are skipped.
	files, _ := filepath.Glob(filepath.Join(dir, "*"+suffix))
	if len(files) != 2 {
		t.Fatalf("%d files", len(files))
	}
	b, _ := os.ReadFile(files[0])
	b[len(b)/2] ^= 1
	os.WriteFile(files[0], b, 0o644)
	b, _ = os.ReadFile(files[1])
	os.WriteFile(filepath.Join(dir, "truncated"+suffix), b[:len(b)-40], 0o644)
	other, _ := Open(filepath.Join(dir, "sub"), "model-b", 0, nil)
	other.Put([]int{5, 5}, "", payload(4))
	ob, _ := filepath.Glob(filepath.Join(dir, "sub", "*"+suffix))
	ofile, _ := os.ReadFile(ob[0])
	os.WriteFile(filepath.Join(dir, "foreign"+suffix), ofile, 0o644)
	os.WriteFile(filepath.Join(dir, ".tmp-123"), []byte("partial"), 0o644)
	d2, err := Open(dir, "model-a", 2600, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := d2.Stats()
	if st.Entries != 1 || st.Skipped != 3 {
		t.Fatalf("reopened: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(dir, "foreign"+suffix)); err != nil {
		t.Error("another model's file was removed")
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp-123")); err == nil {
		t.Error("an interrupted spill's temporary file was left")
	}
	// A file corrupted after the scan is not served either.
	var live []int
	for _, p := range [][]int{{1, 2, 9}, {7}} {
		if d2.Has(p, "") {
			live = p
		}
	}
	name := filepath.Join(dir, nameFor(live, ""))
	b, _ = os.ReadFile(name)
	b[len(b)-1] ^= 1
	os.WriteFile(name, b, 0o644)
	if _, err := load(t, d2, live); err == nil {
		t.Fatal("a corrupted entry was served")
	}
	if st := d2.Stats(); st.Entries != 0 || st.Skipped != 4 || st.Hits != 0 {
		t.Fatalf("after a corrupt load: %+v", st)
	}
}

// An entry is matched only under the adapter key it was written with: a
// prefix computed with a LoRA adapter is never served without it (or with
// another scale), after a reopen too.
func TestTierAdapterKey(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir, "model-a", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put([]int{1, 2, 3}, "lora-a@1", payload(1)); err != nil {
		t.Fatal(err)
	}
	if err := d.Put([]int{1, 2, 3}, "", payload(2)); err != nil {
		t.Fatal(err)
	}
	if !d.Has([]int{1, 2, 3}, "lora-a@1") || d.Has([]int{1, 2, 3}, "lora-a@0.5") {
		t.Fatal("Has ignores the adapter key")
	}
	for _, reopen := range []bool{false, true} {
		if reopen {
			if d, err = Open(dir, "model-a", 0, nil); err != nil {
				t.Fatal(err)
			}
		}
		if m := d.Best([]int{1, 2, 3, 4}, 1, "lora-a@0.5"); m != nil {
			t.Fatalf("reopen %v: an entry of another adapter key matched: %+v", reopen, m)
		}
		for key, want := range map[string]byte{"lora-a@1": 1, "": 2} {
			m := d.Best([]int{1, 2, 3, 4}, 1, key)
			if m == nil {
				t.Fatalf("reopen %v: no entry for adapter key %q", reopen, key)
			}
			var got []byte
			if err := d.Load(m, func(r io.Reader) error { got, err = io.ReadAll(r); return err }); err != nil || got[0] != want {
				t.Fatalf("reopen %v: adapter key %q loaded %v (%v), want the payload %d", reopen, key, got[:1], err, want)
			}
		}
	}
}

// Entries written under an older key of the same caches (Options.Older)
// are served after a reopen under the new key, from disk and through the
// RAM tier, and a spill of the same tokens replaces one (written under the
// new key); without Older they are foreign: skipped and left on disk.
func TestTierOlderKeys(t *testing.T) {
	dir := t.TempDir()
	old, err := Open(dir, "model-a/key channels centre", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, toks := range [][]int{{1, 2, 3}, {4, 5, 6}} {
		if err := old.Put(toks, "", payload(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if d, err := Open(dir, "model-a", 0, nil); err != nil || d.Stats().Entries != 0 || d.Stats().Skipped != 2 {
		t.Fatalf("without Older: %v, %+v", err, d.Stats())
	}
	for _, ram := range []int64{0, 1 << 20} {
		d, err := OpenWith(Options{Dir: dir, Key: "model-a", Older: []string{"model-a/key channels off", "model-a/key channels centre"}, RAM: ram})
		if err != nil {
			t.Fatal(err)
		}
		if st := d.Stats(); st.Entries != 2 || st.Skipped != 0 {
			t.Fatalf("RAM %d: with Older: %+v", ram, st)
		}
		if got, err := load(t, d, []int{1, 2, 3, 7}); err != nil || !bytes.Equal(got, bytes.Repeat([]byte{1}, 1001)) {
			t.Fatalf("RAM %d: load of an older key's entry: %v (%d bytes)", ram, err, len(got))
		}
		d.Close()
	}
	d, err := OpenWith(Options{Dir: dir, Key: "model-a", Older: []string{"model-a/key channels centre"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put([]int{4, 5, 6}, "", payload(3)); err != nil {
		t.Fatal(err)
	}
	if st := d.Stats(); st.Entries != 2 {
		t.Fatalf("after replacing an older key's entry: %+v", st)
	}
	if d, err = Open(dir, "model-a", 0, nil); err != nil || d.Stats().Entries != 1 {
		t.Fatalf("the replaced entry is not under the new key: %v, %+v", err, d.Stats())
	}
	if got, err := load(t, d, []int{4, 5, 6}); err != nil || !bytes.Equal(got, bytes.Repeat([]byte{3}, 1003)) {
		t.Fatalf("load of the replacing entry: %v (%d bytes)", err, len(got))
	}
}

// The RAM tier: spills are held in RAM (least recently used out past its
// budget), written to the directory in the background (Close waits for
// the writer), loaded without reading a file; an entry loaded from disk,
// or prefetched, is kept in RAM; a corrupted RAM copy is never served.
func TestRAMTier(t *testing.T) {
	// RAM only: three entries of about 1050 bytes in 2600.
	r, err := OpenWith(Options{Key: "model-a", RAM: 2600})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range [][]int{{1, 2}, {3, 4}, {5, 6}} {
		if err := r.Put(p, "", payload(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if st := r.Stats(); st.RAMEntries != 2 || st.Evicted != 1 || st.RAMBytes > 2600 || r.Has([]int{1, 2}, "") {
		t.Fatalf("RAM only: %+v", st)
	}
	if got, err := load(t, r, []int{5, 6, 7}); err != nil || !bytes.Equal(got, bytes.Repeat([]byte{3}, 1003)) {
		t.Fatalf("load from RAM: %v (%d bytes)", err, len(got))
	}
	if st := r.Stats(); st.RAMHits != 1 || st.Hits != 1 {
		t.Fatalf("RAM hit not counted: %+v", st)
	}
	r.Close()

	// RAM in front of a directory.
	dir := t.TempDir()
	d, err := OpenWith(Options{Dir: dir, Key: "model-a", RAM: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range [][]int{{1, 2}, {3, 4}} {
		if err := d.Put(p, "", payload(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	d.Close() // the writer has written both
	if files, _ := filepath.Glob(filepath.Join(dir, "*"+suffix)); len(files) != 2 {
		t.Fatalf("%d files written", len(files))
	}
	d, err = OpenWith(Options{Dir: dir, Key: "model-a", RAM: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if st := d.Stats(); st.Entries != 2 || st.RAMEntries != 0 {
		t.Fatalf("reopened: %+v", st)
	}
	// A load from disk keeps the entry in RAM: the next load reads no file.
	if got, err := load(t, d, []int{1, 2, 9}); err != nil || got[0] != 1 {
		t.Fatalf("load from disk: %v", err)
	}
	os.Remove(filepath.Join(dir, nameFor([]int{1, 2}, "")))
	if got, err := load(t, d, []int{1, 2, 9}); err != nil || got[0] != 1 {
		t.Fatalf("load from RAM after the file went: %v", err)
	}
	// Prefetch reads the other entry into RAM ahead of its load.
	d.Prefetch([]int{3, 4, 5}, 1, "")
	for i := 0; d.Stats().Prefetched == 0; i++ {
		if i > 500 {
			t.Fatal("prefetch never finished")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if _, err := load(t, d, []int{3, 4, 5}); err != nil {
		t.Fatal(err)
	}
	if st := d.Stats(); st.RAMHits != 2 || st.Hits != 3 || st.RAMEntries != 2 {
		t.Fatalf("after prefetch: %+v", st)
	}
	// A corrupted RAM copy is skipped, never served.
	d.mu.Lock()
	e := d.entries[nameFor([]int{3, 4}, "")]
	e.mem[len(e.mem)/2] ^= 1
	d.mu.Unlock()
	if _, err := load(t, d, []int{3, 4, 5}); err == nil {
		t.Fatal("a corrupted RAM copy was served")
	}
	if st := d.Stats(); st.Skipped != 1 || d.Has([]int{3, 4}, "") {
		t.Fatalf("after a corrupt RAM copy: %+v", st)
	}
}
