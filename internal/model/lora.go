package model

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/kernels"
	"github.com/kvserve/kvserve/internal/tensor"
)

// Lora is a LoRA adapter (llama.cpp's GGUF adapter format: general.type
// "adapter", adapter.type "lora", adapter.lora.alpha, and for a weight W
// the tensors "W.lora_a", r rows of W's input width, and "W.lora_b", W's
// output rows of r). Attached to a model (AttachLora), it adds
// scale·B·(A·x) to the product W·x of every weight it names, with scale =
// the adapter's scale × alpha / r (the adapter's scale alone when alpha is
// 0), as llama.cpp's build_lora_mm. The scale is live: SetScale changes it
// for the next forward pass (0 turns the adapter off).
type Lora struct {
	Path    string
	Alpha   float32
	weights []*loraWeight
	mu      sync.Mutex
	scale   float32
}

// loraWeight is an adapter's pair of matrices for one weight, in f32.
type loraWeight struct {
	target     string // the model tensor it applies to
	a, b       []float32
	r, in, out int
	scale      float32 // the effective scale (0: off)
	factor     float32 // effective scale over the adapter's scale: alpha / r, or 1 when alpha is 0
	adapter    int     // the adapter's index among the model's (AttachLora)
}

// LoadLora reads an adapter for model m from f, checking it against m:
// architecture, adapter type, every tensor paired, named after a weight of
// m with the weight's shape. The adapter starts with scale 1.
func LoadLora(m *Model, f *gguf.File, path string) (*Lora, error) {
	if t, _ := f.String("general.type"); t != "adapter" {
		return nil, fmt.Errorf("%s: general.type is %q, not \"adapter\": not a LoRA adapter file", path, t)
	}
	if t, _ := f.String("adapter.type"); t != "lora" {
		return nil, fmt.Errorf("%s: adapter.type is %q; only \"lora\" adapters are supported", path, t)
	}
	if a := f.Architecture(); a != m.Arch {
		return nil, fmt.Errorf("%s: the adapter is for %q models, the model is %q", path, a, m.Arch)
	}
	if _, ok := f.Get("adapter.alora.invocation_tokens"); ok {
		return nil, fmt.Errorf("%s: activated LoRA (aLoRA) adapters are not supported", path)
	}
	alpha, _ := f.Float("adapter.lora.alpha")
	targets := m.linears()
	pairs := map[string][2]*gguf.TensorInfo{}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		base, side, ok := strings.Cut(ti.Name, ".lora_")
		if !ok || (side != "a" && side != "b") {
			return nil, fmt.Errorf("%s: tensor %q is not a LoRA tensor (W.lora_a / W.lora_b)", path, ti.Name)
		}
		p := pairs[base]
		p[map[string]int{"a": 0, "b": 1}[side]] = ti
		pairs[base] = p
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("%s: the adapter has no tensors", path)
	}
	ad := &Lora{Path: path, Alpha: float32(alpha), scale: 1}
	names := make([]string, 0, len(pairs))
	for n := range pairs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		p := pairs[name]
		if p[0] == nil || p[1] == nil {
			return nil, fmt.Errorf("%s: %s has only one of lora_a and lora_b", path, name)
		}
		if name == "token_embd.weight" {
			return nil, fmt.Errorf("%s: LoRA on token_embd.weight is not supported", path)
		}
		tw, ok := targets[name]
		if !ok {
			return nil, fmt.Errorf("%s: %s names no weight of the model that kvserve applies adapters to", path, name)
		}
		a, b := p[0], p[1]
		if len(a.Dims) != 2 || len(b.Dims) != 2 || int(a.Dims[0]) != tw.in || int(b.Dims[1]) != tw.out {
			return nil, fmt.Errorf("%s: %s has incorrect shape (lora_a %v, lora_b %v for a weight of %d×%d; maybe the wrong base model?)", path, name, a.Dims, b.Dims, tw.in, tw.out)
		}
		if a.Dims[1] != b.Dims[0] {
			return nil, fmt.Errorf("%s: %s: lora_a has rank %d but lora_b %d (lora_a must be transposed as llama.cpp's converter writes it)", path, name, a.Dims[1], b.Dims[0])
		}
		w := &loraWeight{target: name, r: int(a.Dims[1]), in: tw.in, out: tw.out, factor: 1}
		if ad.Alpha != 0 {
			w.factor = ad.Alpha / float32(w.r)
		}
		var err error
		if w.a, err = dequantAll(f, a); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if w.b, err = dequantAll(f, b); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		ad.weights = append(ad.weights, w)
	}
	ad.SetScale(1)
	return ad, nil
}

// dequantAll converts a tensor to f32.
func dequantAll(f *gguf.File, ti *gguf.TensorInfo) ([]float32, error) {
	if !ti.Type.Known() || ti.Type.BlockSize() == 0 {
		return nil, fmt.Errorf("tensor %s has an unsupported type %s", ti.Name, ti.Type)
	}
	in := int(ti.Dims[0])
	rows := int(ti.Elements()) / in
	rs, err := ti.Type.RowSizeChecked(in)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", ti.Name, err)
	}
	data := f.TensorData(ti)
	out := make([]float32, rows*in)
	for r := 0; r < rows; r++ {
		tensor.DequantizeRow(ti.Type, data[r*rs:(r+1)*rs], out[r*in:(r+1)*in])
	}
	return out, nil
}

// SetScale sets the adapter's scale (0 turns it off). Call it between
// forward passes.
func (a *Lora) SetScale(s float32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.scale = s
	for _, w := range a.weights {
		w.scale = s * w.factor
	}
}

// Scale returns the adapter's scale.
func (a *Lora) Scale() float32 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.scale
}

// Targets lists the weights the adapter changes.
func (a *Lora) Targets() []string {
	var out []string
	for _, w := range a.weights {
		out = append(out, w.target)
	}
	return out
}

type linearShape struct{ in, out int }

// linears lists the weights adapters may apply to: the layers' products and
// the output head (fused tensors by their own name and full shape).
func (m *Model) linears() map[string]linearShape {
	out := map[string]linearShape{}
	add := func(l *Linear) {
		if l == nil || l == m.TokEmbd {
			return
		}
		if l.base != "" {
			s := out[l.base]
			out[l.base] = linearShape{l.In, max(s.out, l.row0+l.Out)}
			return
		}
		out[l.Name] = linearShape{l.In, l.Out}
	}
	for i := range m.Layers {
		L := &m.Layers[i]
		for _, l := range []*Linear{L.Wq, L.Wk, L.Wv, L.Wo, L.Gate, L.Up, L.Down} {
			add(l)
		}
	}
	add(m.Output)
	return out
}

// AttachLora applies an adapter to the model's weights from the next
// forward pass on. An adapter is attached once; adapters are numbered in
// the order they are attached (Batch.Lora's scales).
func (m *Model) AttachLora(a *Lora) error {
	for _, x := range m.loras {
		if x == a {
			return nil
		}
	}
	m.loras = append(m.loras, a)
	byName := map[string]*loraWeight{}
	for _, w := range a.weights {
		w.adapter = len(m.loras) - 1
		byName[w.target] = w
	}
	attach := func(l *Linear) {
		if l == nil {
			return
		}
		name := l.Name
		if l.base != "" {
			name = l.base
		}
		if w := byName[name]; w != nil {
			for _, x := range l.lora {
				if x == w {
					return
				}
			}
			l.lora = append(l.lora, w)
		}
	}
	for i := range m.Layers {
		L := &m.Layers[i]
		for _, l := range []*Linear{L.Wq, L.Wk, L.Wv, L.Wo, L.Gate, L.Up, L.Down} {
			attach(l)
		}
	}
	if m.Output != m.TokEmbd {
		attach(m.Output)
	}
	return nil
}

// loraTask adds the adapters' terms to the products of one pass: one item
// per (job, token).
type loraTask struct {
	mm      *matmuls
	jobs    []int // jobs with an active adapter
	scratch [][]float32
}

// Loras returns the number of adapters attached.
func (m *Model) Loras() int { return len(m.loras) }

// applyLora adds scale·B·(A·x) of every active adapter to the jobs' outputs
// (with mm.lora, each token's scales).
func (mm *matmuls) applyLora() {
	var jobs []int
	maxR := 0
	for i := range mm.jobs {
		for _, w := range mm.jobs[i].w.lora {
			if w.scale != 0 || mm.lora != nil {
				jobs = append(jobs, i)
				maxR = max(maxR, w.r)
				break
			}
		}
	}
	if len(jobs) == 0 {
		return
	}
	t := &loraTask{mm: mm, jobs: jobs, scratch: make([][]float32, mm.pool.Threads())}
	for i := range t.scratch {
		t.scratch[i] = make([]float32, maxR)
	}
	mm.pool.Run(len(jobs)*mm.nTok, t)
}

func (t *loraTask) Do(item, worker int) {
	mm := t.mm
	j := &mm.jobs[t.jobs[item/mm.nTok]]
	tok := item % mm.nTok
	l := j.w
	x := j.x[tok*l.In : (tok+1)*l.In]
	y := j.y[tok*j.ldy : tok*j.ldy+l.Out]
	var own []float32 // the token's scales (nil: the adapters')
	if mm.lora != nil {
		own = mm.lora[tok]
	}
	for _, w := range l.lora {
		scale := w.scale
		if own != nil {
			scale = 0
			if w.adapter < len(own) {
				scale = own[w.adapter] * w.factor
			}
		}
		if scale == 0 {
			continue
		}
		u := t.scratch[worker][:w.r]
		for k := range u {
			u[k] = kernels.DotF32(w.a[k*w.in:(k+1)*w.in], x) * scale
		}
		for o := range y {
			row := l.row0 + o
			y[o] += kernels.DotF32(w.b[row*w.r:(row+1)*w.r], u)
		}
	}
}
