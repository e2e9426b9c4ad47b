package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"

	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/model"
)

// LoadLora reads a LoRA adapter file for the engine's model (checked
// against it: architecture, tensor names and shapes), attaches it at the
// given scale, and returns it (its scale can change between forward
// passes: Scheduler.Do, then Scheduler.AdaptersChanged). The adapter's
// matrices are held in f32; the file is closed. A content hash of the file
// is its identity in AdapterSet.
func (e *Engine) LoadLora(path string, scale float32) (*model.Lora, error) {
	id, err := fileHash(path)
	if err != nil {
		return nil, err
	}
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a, err := model.LoadLora(e.Model, f, path)
	if err != nil {
		return nil, err
	}
	a.SetScale(scale)
	if err := e.Model.AttachLora(a); err != nil {
		return nil, err
	}
	e.loras = append(e.loras, a)
	e.loraIDs = append(e.loraIDs, id)
	return a, nil
}

// fileHash returns the first 16 bytes of the file's SHA-256, in hex.
func fileHash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)[:16]), nil
}
