package engine

import (
	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/model"
)

// LoadLora reads a LoRA adapter file for the engine's model (checked
// against it: architecture, tensor names and shapes), attaches it at the
// given scale, and returns it (its scale can change between forward
// passes: Scheduler.Do). The adapter's matrices are held in f32; the file
// is closed.
func (e *Engine) LoadLora(path string, scale float32) (*model.Lora, error) {
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
	return a, nil
}
