package server

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
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/tensor"
)

// Slot files (POST /slots/{id}?action=save|restore) hold one slot's
// cached tokens and K/V pages:
//
//	"KVSSLOT1"                 8 bytes
//	header length H            uint32, little-endian
//	header                     H bytes of JSON (slotHeader): format
//	                           version, model path and fingerprint,
//	                           cache shape, the token list
//	payload                    the slot's pages (kvcache's sequence format)
//	SHA-256                    32 bytes: of everything above
//
// Files are written to a temporary file in the save directory, fsynced
// and renamed into place (and the directory fsynced), so a crash never
// leaves a partial file under the requested name. A restore checks the
// whole file before it touches the slot: the checksum, the model
// fingerprint, the cache shape, the token list, and the payload's
// structure (by reading it into a scratch one-slot cache); only then is
// the file read into the slot, re-checking the checksum as it goes. If
// the file changes between the two passes the slot is left empty (and
// the error says so); in every other failure the slot is unchanged.
const slotMagic = "KVSSLOT1"

// slotFormatVersion is the header's version: 5 since the payload carries
// a hybrid model's recurrent state (kvcache's sequence format KVSSEQ05);
// 4 recorded the codebook version and the key channels mode (KVSSEQ04).
// Version 4 and 1 files (payload KVSSEQ02) are still read (not into a
// hybrid model's slot: they hold no state).
const slotFormatVersion = 5

// maxSlotHeader bounds the header (the token list dominates it).
const maxSlotHeader = 256 << 20

type slotHeader struct {
	Version    int       `json:"version"`
	Model      string    `json:"model"`
	ModelHash  string    `json:"model_fingerprint"`
	Layers     int       `json:"layers"`
	KVHeads    int       `json:"kv_heads"`
	HeadDimK   int       `json:"head_dim_k"`
	HeadDimV   int       `json:"head_dim_v"`
	PageTokens int       `json:"page_tokens"`
	NTokens    int       `json:"n_tokens"`
	Tokens     []int     `json:"tokens"`
	Saved      time.Time `json:"saved"`
}

var slotNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// checkSlotFilename allows plain names only: 1-128 of [A-Za-z0-9._-], not
// starting with '.' or '-', without "..".
func checkSlotFilename(name string) *apiError {
	if name == "" {
		return badRequest(`"filename" is required`)
	}
	if !slotNameRE.MatchString(name) || strings.Contains(name, "..") {
		return badRequest("filename %q is not allowed: use 1 to 128 letters, digits, '.', '_' or '-' (not starting with '.' or '-', no '..', no path separators)", name)
	}
	return nil
}

// fingerprint identifies the model for slot files: SHA-256 of the GGUF
// header (metadata and tensor table) and of the first and last 4 KiB of
// every tensor's data.
func (s *Server) fingerprint() string {
	s.fpOnce.Do(func() { s.fp = engineFingerprint(s.eng) })
	return s.fp
}

// engineFingerprint is fingerprint for a loaded model.
func engineFingerprint(e *engine.Engine) string {
	f := e.File
	h := sha256.New()
	data := f.Bytes()
	h.Write(data[:min(uint64(len(data)), f.DataStart)])
	for i := range f.Tensors {
		d := f.TensorData(&f.Tensors[i])
		n := min(len(d), 4096)
		h.Write(d[:n])
		h.Write(d[len(d)-n:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// slotRequest is a decoded POST /slots/{id}?action=...
type slotRequest struct {
	id       int
	action   string // save, restore or erase
	filename string // save and restore
	// restore: convert the pages to these types ("": keep the file's)
	typeK, typeV string
}

// decodeSlotAction reads a slot action: the slot id from the path, the
// action from the query, the body ({"filename": NAME} for save and
// restore; erase takes an empty body too).
func decodeSlotAction(idStr, action string, body []byte, slots int) (slotRequest, *apiError) {
	a := slotRequest{action: action}
	id, err := strconv.Atoi(idStr)
	if err != nil {
		return a, badRequest("slot id %q is not an integer", idStr)
	}
	if id < 0 || id >= slots {
		return a, errorf(http.StatusNotFound, TypeNotFound, "slot %d not found (the server has slots 0-%d)", id, slots-1)
	}
	a.id = id
	switch action {
	case "erase", "save", "restore":
	case "":
		return a, badRequest(`the "action" query parameter is required (save, restore or erase)`)
	default:
		return a, badRequest("unknown action %q (save, restore or erase)", action)
	}
	o := &object{m: map[string]json.RawMessage{}}
	if aerr := decodeJSON(body, o, action == "erase"); aerr != nil {
		return a, aerr
	}
	if action != "erase" {
		a.filename = o.string("filename", "")
		if action == "restore" {
			a.typeK, a.typeV = o.string("type_k", ""), o.string("type_v", "")
		}
		if o.err != nil {
			return a, o.err
		}
		if aerr := checkSlotFilename(a.filename); aerr != nil {
			return a, aerr
		}
	}
	return a, nil
}

// handleSlotAction serves POST /slots/{id}?action=save|restore|erase.
func (s *Server) handleSlotAction(w http.ResponseWriter, r *http.Request) {
	body, aerr := readBody(r)
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	a, aerr := decodeSlotAction(r.PathValue("id"), r.URL.Query().Get("action"), body, s.o.Slots)
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	if a.action != "erase" && s.o.SlotSavePath == "" {
		WriteError(w, errorf(http.StatusNotImplemented, TypeNotSupported, "slot save/restore is disabled: start the server with --slot-save-path DIR"))
		return
	}
	var resp map[string]any
	// A busy slot is waited for, as llama-server defers the action until
	// the slot is idle (up to the queue timeout).
	deadline := time.Now().Add(s.o.QueueTimeout)
	for {
		switch a.action {
		case "erase":
			resp, aerr = s.eraseSlot(a.id)
		case "save":
			resp, aerr = s.saveSlot(a.id, a.filename)
		case "restore":
			resp, aerr = s.restoreSlot(a.id, a.filename, a.typeK, a.typeV)
		}
		if aerr == nil || !aerr.slotBusy || time.Now().After(deadline) {
			break
		}
		select {
		case <-r.Context().Done():
			WriteError(w, errorf(http.StatusServiceUnavailable, TypeUnavailable, "request cancelled"))
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	WriteJSON(w, http.StatusOK, resp)
}

var errSlotBusy = errors.New("slot busy")

// doErr maps errors of a cache operation run through Do.
func doErr(id int, err error) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, errSlotBusy):
		e := errorf(http.StatusConflict, TypeInvalidRequest, "slot %d stayed busy with a request until the wait ended (--queue-timeout); retry when it is idle", id)
		e.slotBusy = true
		return e
	case errors.Is(err, engine.ErrClosed):
		return errorf(http.StatusServiceUnavailable, TypeUnavailable, "%v", err)
	}
	return errorf(http.StatusInternalServerError, TypeServer, "%v", err)
}

// fileErr describes a file operation's error without the directory it
// happened in (error messages name the slot file only): "creating slot
// file \"x\": no space left on device".
func fileErr(what, name string, err error) *apiError {
	return errorf(http.StatusInternalServerError, TypeServer, "%s slot file %q: %v", what, name, pathless(err))
}

// slotTempPattern names the temporary files a save writes before renaming
// them into place.
const slotTempPattern = ".slot-*.tmp"

// removeStaleSlotFiles deletes the temporary files of saves that never
// finished (the server was killed while writing them).
func (s *Server) removeStaleSlotFiles() {
	names, err := filepath.Glob(filepath.Join(s.o.SlotSavePath, slotTempPattern))
	if err != nil {
		return
	}
	for _, n := range names {
		if st, err := os.Lstat(n); err == nil && st.Mode().IsRegular() {
			if os.Remove(n) == nil {
				s.log.Info("removed the temporary file of an unfinished slot save", "file", filepath.Base(n))
			}
		}
	}
}

func (s *Server) eraseSlot(id int) (map[string]any, *apiError) {
	n := 0
	err := s.sched.Do(func(c *kvcache.Cache) error {
		if s.sched.SlotBusy(id) {
			return errSlotBusy
		}
		n = len(s.sched.SlotTokens(id))
		c.Clear(id)
		return s.sched.SetSlotTokens(id, nil)
	})
	if err != nil {
		return nil, doErr(id, err)
	}
	return map[string]any{"id_slot": id, "n_erased": n}, nil
}

// countingWriter counts bytes written.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (s *Server) saveSlot(id int, name string) (resp map[string]any, aerr *apiError) {
	t0 := time.Now()
	dir := s.o.SlotSavePath
	if st, err := os.Lstat(filepath.Join(dir, name)); err == nil && !st.Mode().IsRegular() {
		return nil, errorf(http.StatusConflict, TypeInvalidRequest, "slot file name %q is taken by something that is not a file (a directory?): choose another name", name)
	}
	tmp, err := os.CreateTemp(dir, slotTempPattern)
	if err != nil {
		return nil, fileErr("creating", name, err)
	}
	defer func() {
		if aerr != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(tmp, h)}
	bw := bufio.NewWriterSize(cw, 1<<20)
	fp := s.fingerprint()
	nTok := 0
	err = s.sched.Do(func(c *kvcache.Cache) error {
		if s.sched.SlotBusy(id) {
			return errSlotBusy
		}
		toks := s.sched.SlotTokens(id)
		if c.Len(id) != len(toks) {
			return fmt.Errorf("slot %d holds %d cached positions but %d tokens", id, c.Len(id), len(toks))
		}
		cfg := c.Config()
		hdr, err := json.Marshal(slotHeader{
			Version: slotFormatVersion, Model: s.eng.Path, ModelHash: fp,
			Layers: cfg.Layers, KVHeads: cfg.KVHeads, HeadDimK: cfg.HeadDimK, HeadDimV: cfg.HeadDimV, PageTokens: cfg.PageTokens,
			NTokens: len(toks), Tokens: append([]int{}, toks...), Saved: time.Now().UTC(),
		})
		if err != nil {
			return err
		}
		nTok = len(toks)
		bw.WriteString(slotMagic)
		binary.Write(bw, binary.LittleEndian, uint32(len(hdr)))
		bw.Write(hdr)
		if err := c.WriteSeq(id, bw); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		if ae := doErr(id, err); ae.Status != http.StatusInternalServerError {
			return nil, ae
		}
		return nil, fileErr("writing", name, err)
	}
	sum := h.Sum(nil)
	if _, err := tmp.Write(sum); err != nil {
		return nil, fileErr("writing", name, err)
	}
	if err := tmp.Sync(); err != nil {
		return nil, fileErr("syncing", name, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fileErr("closing", name, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return nil, fileErr("renaming into place the", name, err)
	}
	syncDir(dir)
	written := cw.n + int64(len(sum))
	s.log.Info("slot saved", "slot", id, "file", name, "tokens", nTok, "bytes", written)
	return map[string]any{
		"id_slot": id, "filename": name, "n_saved": nTok, "n_written": written,
		"timings": map[string]any{"save_ms": ms(time.Since(t0))},
	}, nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// slotFile is a checked slot file.
type slotFile struct {
	hdr        slotHeader
	headerEnd  int64 // offset of the payload
	payloadLen int64
	sum        []byte
}

// corrupt is the error for a damaged or foreign file.
// Errors among args are shown without the file's path.
func corrupt(name, format string, args ...any) *apiError {
	for i, a := range args {
		if err, ok := a.(error); ok {
			args[i] = pathless(err)
		}
	}
	return badRequest("slot file %q cannot be restored: %s", name, fmt.Sprintf(format, args...))
}

// pathless strips the path from a file operation's error.
func pathless(err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &le):
		return le.Err
	}
	return err
}

// checkSlotFile verifies a slot file's framing and checksum and decodes
// its header.
func checkSlotFile(f *os.File, name string) (*slotFile, *apiError) {
	st, err := f.Stat()
	if err != nil {
		return nil, fileErr("reading", name, err)
	}
	if !st.Mode().IsRegular() {
		return nil, badRequest("slot file %q cannot be restored: it is not a file", name)
	}
	size := st.Size()
	const fixed = int64(len(slotMagic) + 4 + sha256.Size)
	if size < fixed {
		return nil, corrupt(name, "it is truncated (%d bytes)", size)
	}
	var pre [len(slotMagic) + 4]byte
	if _, err := io.ReadFull(f, pre[:]); err != nil {
		return nil, corrupt(name, "reading it: %v", err)
	}
	if string(pre[:len(slotMagic)]) != slotMagic {
		return nil, corrupt(name, "it is not a kvserve slot file")
	}
	hlen := int64(binary.LittleEndian.Uint32(pre[len(slotMagic):]))
	if hlen > maxSlotHeader || int64(len(pre))+hlen+sha256.Size > size {
		return nil, corrupt(name, "it is truncated or corrupt (header of %d bytes in a file of %d)", hlen, size)
	}
	// Checksum over everything but the trailer.
	h := sha256.New()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fileErr("reading", name, err)
	}
	body := size - sha256.Size
	var hdrBuf bytes.Buffer
	if _, err := io.CopyN(h, io.TeeReader(io.LimitReader(f, int64(len(pre))+hlen), &hdrBuf), int64(len(pre))+hlen); err != nil {
		return nil, corrupt(name, "reading it: %v", err)
	}
	if _, err := io.CopyN(h, f, body-int64(len(pre))-hlen); err != nil {
		return nil, corrupt(name, "reading it: %v", err)
	}
	sum := make([]byte, sha256.Size)
	if _, err := io.ReadFull(f, sum); err != nil {
		return nil, corrupt(name, "reading it: %v", err)
	}
	if !bytes.Equal(sum, h.Sum(nil)) {
		return nil, corrupt(name, "checksum mismatch (the file is corrupt or truncated)")
	}
	sf := &slotFile{headerEnd: int64(len(pre)) + hlen, sum: sum}
	sf.payloadLen = body - sf.headerEnd
	dec := json.NewDecoder(bytes.NewReader(hdrBuf.Bytes()[len(pre):]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sf.hdr); err != nil {
		return nil, corrupt(name, "bad header: %v", err)
	}
	if sf.hdr.Version != slotFormatVersion && sf.hdr.Version != 4 && sf.hdr.Version != 1 {
		return nil, corrupt(name, "format version %d is not supported (this server reads version %d)", sf.hdr.Version, slotFormatVersion)
	}
	return sf, nil
}

// restoreSlot reads a slot file into slot id: as saved, or — when the
// file's page size differs from the server's, or typeK / typeV are given —
// repacked into the server's pages and converted (kvcache.ReadSeqAs).
func (s *Server) restoreSlot(id int, name, typeK, typeV string) (map[string]any, *apiError) {
	t0 := time.Now()
	var opts kvcache.RestoreOptions
	for _, side := range []struct {
		field, name string
		dim         int
		out         **tensor.Type
	}{{"type_k", typeK, s.eng.Model.HeadDim, &opts.K}, {"type_v", typeV, s.eng.Model.HeadDimV, &opts.V}} {
		if side.name == "" {
			continue
		}
		t, err := kvcache.ParseType(side.name)
		if err == nil {
			err = kvcache.CheckType(t, side.dim)
		}
		if err != nil {
			return nil, badRequest("%q: %v", side.field, err)
		}
		*side.out = &t
	}
	path := filepath.Join(s.o.SlotSavePath, name)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errorf(http.StatusNotFound, TypeNotFound, "slot file %q not found", name)
	}
	if err != nil {
		return nil, fileErr("opening", name, err)
	}
	defer f.Close()
	sf, aerr := checkSlotFile(f, name)
	if aerr != nil {
		return nil, aerr
	}
	hdr := &sf.hdr
	if fp := s.fingerprint(); hdr.ModelHash != fp {
		return nil, corrupt(name, "it was saved from a different model (%s)", hdr.Model)
	}
	var cfg kvcache.Config
	if err := s.sched.Do(func(c *kvcache.Cache) error { cfg = c.Config(); return nil }); err != nil {
		return nil, doErr(id, err)
	}
	if hdr.Layers != cfg.Layers || hdr.KVHeads != cfg.KVHeads || hdr.HeadDimK != cfg.HeadDimK || hdr.HeadDimV != cfg.HeadDimV {
		return nil, corrupt(name, "its cache shape (%d layers, %d KV heads, head dims %d/%d) differs from this server's (%d, %d, %d/%d)",
			hdr.Layers, hdr.KVHeads, hdr.HeadDimK, hdr.HeadDimV, cfg.Layers, cfg.KVHeads, cfg.HeadDimK, cfg.HeadDimV)
	}
	if hdr.NTokens != len(hdr.Tokens) {
		return nil, corrupt(name, "its header lists %d tokens but says %d", len(hdr.Tokens), hdr.NTokens)
	}
	if hdr.NTokens >= s.slotCtx {
		return nil, corrupt(name, "it holds %d tokens, more than fit this server's slot context of %d", hdr.NTokens, s.slotCtx)
	}
	for _, t := range hdr.Tokens {
		if t < 0 || t >= s.eng.Model.NVocab {
			return nil, corrupt(name, "token id %d is outside the vocabulary", t)
		}
	}
	// Check the payload's structure in a scratch cache of one sequence.
	scfg := cfg
	scfg.Seqs, scfg.Ctx, scfg.Threads = 1, s.slotCtx, 1
	scratch, err := kvcache.New(scfg)
	if err != nil {
		return nil, errorf(http.StatusInternalServerError, TypeServer, "%v", err)
	}
	n, err := scratch.ReadSeqAs(0, io.NewSectionReader(f, sf.headerEnd, sf.payloadLen), opts)
	scratch.Close()
	if err != nil {
		return nil, corrupt(name, "%v", err)
	}
	if n != hdr.NTokens {
		return nil, corrupt(name, "its pages hold %d positions for %d tokens", n, hdr.NTokens)
	}
	// Read it into the slot, re-checking the checksum.
	err = s.sched.Do(func(c *kvcache.Cache) error {
		if s.sched.SlotBusy(id) {
			return errSlotBusy
		}
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(f, 0, sf.headerEnd)); err != nil {
			return corrupt(name, "reading it: %v", err)
		}
		sec := io.NewSectionReader(f, sf.headerEnd, sf.payloadLen)
		n, rerr := c.ReadSeqAs(id, io.TeeReader(sec, h), opts)
		io.Copy(h, sec)
		if rerr != nil || n != hdr.NTokens || !bytes.Equal(h.Sum(nil), sf.sum) {
			c.Clear(id)
			s.sched.SetSlotTokens(id, nil)
			return corrupt(name, "the file changed while it was being restored; slot %d was left empty", id)
		}
		return s.sched.SetSlotTokens(id, hdr.Tokens)
	})
	if err != nil {
		return nil, doErr(id, err)
	}
	s.log.Info("slot restored", "slot", id, "file", name, "tokens", hdr.NTokens, "file_page_tokens", hdr.PageTokens, "type_k", typeK, "type_v", typeV)
	return map[string]any{
		"id_slot": id, "filename": name, "n_restored": hdr.NTokens, "n_read": sf.headerEnd + sf.payloadLen + sha256.Size,
		"timings": map[string]any{"restore_ms": ms(time.Since(t0))},
	}, nil
}
