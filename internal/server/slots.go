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

// slotFormatVersion is the header's version.
const slotFormatVersion = 1

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
	s.fpOnce.Do(func() {
		f := s.eng.File
		h := sha256.New()
		data := f.Bytes()
		h.Write(data[:min(uint64(len(data)), f.DataStart)])
		for i := range f.Tensors {
			d := f.TensorData(&f.Tensors[i])
			n := min(len(d), 4096)
			h.Write(d[:n])
			h.Write(d[len(d)-n:])
		}
		s.fp = hex.EncodeToString(h.Sum(nil))
	})
	return s.fp
}

// handleSlotAction serves POST /slots/{id}?action=save|restore|erase.
func (s *Server) handleSlotAction(w http.ResponseWriter, r *http.Request) {
	idStr := r.PathValue("id")
	id, err := strconv.Atoi(idStr)
	if err != nil {
		writeAPIError(w, badRequest("slot id %q is not an integer", idStr))
		return
	}
	if id < 0 || id >= s.o.Slots {
		writeAPIError(w, errorf(http.StatusNotFound, TypeNotFound, "slot %d not found (the server has slots 0-%d)", id, s.o.Slots-1))
		return
	}
	action := r.URL.Query().Get("action")
	body, aerr := readBody(r)
	if aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	var o *object
	if len(bytes.TrimSpace(body)) == 0 && action == "erase" {
		o = &object{m: map[string]json.RawMessage{}}
	} else if o, aerr = parseObject(body); aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	var resp map[string]any
	switch action {
	case "erase":
		resp, aerr = s.eraseSlot(id)
	case "save", "restore":
		if s.o.SlotSavePath == "" {
			writeAPIError(w, errorf(http.StatusNotImplemented, TypeNotSupported, "slot save/restore is disabled: start the server with --slot-save-path DIR"))
			return
		}
		name := o.string("filename", "")
		if o.err != nil {
			writeAPIError(w, o.err)
			return
		}
		if aerr = checkSlotFilename(name); aerr != nil {
			writeAPIError(w, aerr)
			return
		}
		if action == "save" {
			resp, aerr = s.saveSlot(id, name)
		} else {
			resp, aerr = s.restoreSlot(id, name)
		}
	case "":
		aerr = badRequest(`the "action" query parameter is required (save, restore or erase)`)
	default:
		aerr = badRequest("unknown action %q (save, restore or erase)", action)
	}
	if aerr != nil {
		writeAPIError(w, aerr)
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
		return errorf(http.StatusConflict, TypeInvalidRequest, "slot %d is busy with a request; retry when it is idle", id)
	case errors.Is(err, engine.ErrClosed):
		return errorf(http.StatusServiceUnavailable, TypeUnavailable, "%v", err)
	}
	return errorf(http.StatusInternalServerError, TypeServer, "%v", err)
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
	tmp, err := os.CreateTemp(dir, ".slot-*.tmp")
	if err != nil {
		return nil, errorf(http.StatusInternalServerError, TypeServer, "creating the slot file: %v", err)
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
		return nil, errorf(http.StatusInternalServerError, TypeServer, "writing the slot file: %v", err)
	}
	sum := h.Sum(nil)
	if _, err := tmp.Write(sum); err != nil {
		return nil, errorf(http.StatusInternalServerError, TypeServer, "writing the slot file: %v", err)
	}
	if err := tmp.Sync(); err != nil {
		return nil, errorf(http.StatusInternalServerError, TypeServer, "syncing the slot file: %v", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, errorf(http.StatusInternalServerError, TypeServer, "closing the slot file: %v", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return nil, errorf(http.StatusInternalServerError, TypeServer, "renaming the slot file: %v", err)
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
func corrupt(name, format string, args ...any) *apiError {
	return badRequest("slot file %q cannot be restored: %s", name, fmt.Sprintf(format, args...))
}

// checkSlotFile verifies a slot file's framing and checksum and decodes
// its header.
func checkSlotFile(f *os.File, name string) (*slotFile, *apiError) {
	st, err := f.Stat()
	if err != nil {
		return nil, errorf(http.StatusInternalServerError, TypeServer, "%v", err)
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
		return nil, errorf(http.StatusInternalServerError, TypeServer, "%v", err)
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
	if sf.hdr.Version != slotFormatVersion {
		return nil, corrupt(name, "format version %d is not supported (this server reads version %d)", sf.hdr.Version, slotFormatVersion)
	}
	return sf, nil
}

func (s *Server) restoreSlot(id int, name string) (map[string]any, *apiError) {
	t0 := time.Now()
	path := filepath.Join(s.o.SlotSavePath, name)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errorf(http.StatusNotFound, TypeNotFound, "slot file %q not found", name)
	}
	if err != nil {
		return nil, errorf(http.StatusInternalServerError, TypeServer, "opening the slot file: %v", err)
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
	if hdr.Layers != cfg.Layers || hdr.KVHeads != cfg.KVHeads || hdr.HeadDimK != cfg.HeadDimK || hdr.HeadDimV != cfg.HeadDimV || hdr.PageTokens != cfg.PageTokens {
		return nil, corrupt(name, "its cache shape (%d layers, %d KV heads, head dims %d/%d, %d-token pages) differs from this server's (%d, %d, %d/%d, %d)",
			hdr.Layers, hdr.KVHeads, hdr.HeadDimK, hdr.HeadDimV, hdr.PageTokens, cfg.Layers, cfg.KVHeads, cfg.HeadDimK, cfg.HeadDimV, cfg.PageTokens)
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
	n, err := scratch.ReadSeq(0, io.NewSectionReader(f, sf.headerEnd, sf.payloadLen))
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
		n, rerr := c.ReadSeq(id, io.TeeReader(sec, h))
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
	s.log.Info("slot restored", "slot", id, "file", name, "tokens", hdr.NTokens)
	return map[string]any{
		"id_slot": id, "filename": name, "n_restored": hdr.NTokens, "n_read": sf.headerEnd + sf.payloadLen + sha256.Size,
		"timings": map[string]any{"restore_ms": ms(time.Since(t0))},
	}, nil
}
