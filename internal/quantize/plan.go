// Package quantize converts a GGUF model to a quantized GGUF model the way
// llama.cpp's llama-quantize does without an importance matrix: the same
// per-tensor type choices (llama_tensor_get_type for the llama, qwen2 and
// qwen3 architectures), the same quantizers (package tensor, bit-exact with
// ggml's reference code), the same tensor order and metadata, so that the
// output is byte-identical to llama.cpp's for the supported file types.
package quantize

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/tensor"
)

// FileType is an output file type (llama.cpp's llama_ftype).
type FileType struct {
	Name string      // canonical name, e.g. "Q4_K_M"
	ID   uint32      // LLAMA_FTYPE_* value, written to general.file_type
	Base tensor.Type // the default tensor type of the mix
}

// FileTypes lists the supported output file types.
var FileTypes = []FileType{
	{"F16", 1, tensor.F16},
	{"Q4_0", 2, tensor.Q4_0},
	{"Q8_0", 7, tensor.Q8_0},
	{"Q4_K_M", 15, tensor.Q4_K},
	{"Q5_K_M", 17, tensor.Q5_K},
	{"Q6_K", 18, tensor.Q6_K},
}

// ParseFileType looks a file type up by name, case-insensitively.
func ParseFileType(name string) (FileType, error) {
	for _, ft := range FileTypes {
		if strings.EqualFold(ft.Name, name) {
			return ft, nil
		}
	}
	names := make([]string, len(FileTypes))
	for i, ft := range FileTypes {
		names[i] = ft.Name
	}
	return FileType{}, fmt.Errorf("quantize: unsupported file type %q (supported: %s)", name, strings.Join(names, ", "))
}

// supportedArchs are the architectures whose type choices are implemented.
var supportedArchs = map[string]bool{"llama": true, "qwen2": true, "qwen3": true}

// TensorPlan is the decision for one tensor of the input.
type TensorPlan struct {
	Info *gguf.TensorInfo // the input tensor
	To   tensor.Type      // the output type (Info.Type when copied as is)
}

// Convert reports whether the tensor's data must be converted (as opposed
// to copied).
func (p *TensorPlan) Convert() bool { return p.To != p.Info.Type }

type category int

const (
	catOther category = iota
	catTokenEmbd
	catAttnQ
	catAttnV
	catAttnK
	catAttnQKV
	catAttnKVB
	catAttnOutput
	catFFNUp
	catFFNGate
	catFFNDown
	catOutput
)

// categoryOf is llama.cpp's tensor_get_category.
func categoryOf(name string) category {
	switch {
	case name == "output.weight":
		return catOutput
	case name == "token_embd.weight" || name == "per_layer_token_embd.weight":
		return catTokenEmbd
	case strings.Contains(name, "attn_qkv.weight"):
		return catAttnQKV
	case strings.Contains(name, "attn_kv_b.weight"):
		return catAttnKVB
	case strings.Contains(name, "attn_v.weight"):
		return catAttnV
	case strings.Contains(name, "attn_k.weight"):
		return catAttnK
	case strings.Contains(name, "attn_q.weight"):
		return catAttnQ
	case strings.Contains(name, "attn_output.weight"):
		return catAttnOutput
	case strings.Contains(name, "ffn_up"):
		return catFFNUp
	case strings.Contains(name, "ffn_gate"):
		return catFFNGate
	case strings.Contains(name, "ffn_down"):
		return catFFNDown
	}
	return catOther
}

func (c category) isAttnV() bool { return c == catAttnV || c == catAttnQKV || c == catAttnKVB }

// nDims is ggml_n_dims: the number of dimensions, trailing 1s ignored.
func nDims(dims []uint64) int {
	for i := len(dims) - 1; i >= 1; i-- {
		if dims[i] > 1 {
			return i + 1
		}
	}
	return 1
}

// allowsQuantization is llama.cpp's tensor_allows_quantization (default
// parameters) for the names that occur in the supported architectures.
func allowsQuantization(ti *gguf.TensorInfo) bool {
	if nDims(ti.Dims) < 2 {
		return false
	}
	name := ti.Name
	if !strings.HasSuffix(name, "weight") {
		return false
	}
	for _, s := range []string{"_norm.weight", "ffn_gate_inp.weight", "altup", "laurel", "per_layer_model_proj",
		"ssm_conv1d", "attn_rel_b.weight", ".position_embd", ".rel_pos", ".patch_embd"} {
		if strings.Contains(name, s) {
			return false
		}
	}
	return name != "position_embd.weight" && name != "token_types.weight"
}

// layerOf parses the layer number of "blk.N...." as llama.cpp's
// weight_name_comparer does with sscanf("blk.%d."): -1 if there is none.
func layerOf(name string) int {
	rest, ok := strings.CutPrefix(name, "blk.")
	if !ok {
		return -1
	}
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	n, err := strconv.Atoi(rest[:i])
	if err != nil {
		return -1
	}
	return n
}

// llamaOrder sorts tensors as llama.cpp's model loader map does: by layer
// number (tensors outside any layer first), then by name.
func llamaOrder(a, b *gguf.TensorInfo) int {
	if la, lb := layerOf(a.Name), layerOf(b.Name); la != lb {
		return cmp.Compare(la, lb)
	}
	return strings.Compare(a.Name, b.Name)
}

func useMoreBits(i, n int) bool { return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2 }

type planState struct {
	ft        FileType
	arch      string
	nLayer    int
	is70B     bool
	tied      bool
	nAttnWV   int
	iAttnWV   int
	iFFNDown  int
	nFallback int
}

// Plan decides the output type of every tensor of f for file type ft,
// returning the tensors in llama.cpp's output order.
func Plan(f *gguf.File, ft FileType) ([]TensorPlan, error) {
	arch := f.Architecture()
	if !supportedArchs[arch] {
		return nil, fmt.Errorf("quantize: architecture %q is not supported (supported: llama, qwen2, qwen3)", arch)
	}
	nLayer, ok := f.Uint(arch + ".block_count")
	if !ok || nLayer == 0 {
		return nil, fmt.Errorf("quantize: %s.block_count missing or zero", arch)
	}
	if ne, ok := f.Uint(arch + ".expert_count"); ok && ne > 1 {
		return nil, fmt.Errorf("quantize: mixture-of-experts models (%s.expert_count = %d) are not supported", arch, ne)
	}
	st := &planState{ft: ft, arch: arch, nLayer: int(nLayer), tied: true}
	// llama.cpp's LLM_TYPE_70B, which bumps attn_v from Q3_K/Q4_K to Q5_K.
	if nLayer == 80 {
		nHead, _ := f.Uint(arch + ".attention.head_count")
		nHeadKV, ok := f.Uint(arch + ".attention.head_count_kv")
		if !ok {
			nHeadKV = nHead
		}
		st.is70B = arch == "qwen2" || (arch == "llama" && nHead != nHeadKV)
	}
	infos := make([]*gguf.TensorInfo, len(f.Tensors))
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		infos[i] = ti
		c := categoryOf(ti.Name)
		if c.isAttnV() {
			st.nAttnWV++
		}
		if c == catOutput {
			st.tied = false
		}
	}
	slices.SortStableFunc(infos, llamaOrder)
	plans := make([]TensorPlan, len(infos))
	for i, ti := range infos {
		plans[i] = TensorPlan{Info: ti, To: ti.Type}
		if !allowsQuantization(ti) {
			continue
		}
		to, err := st.tensorType(ti)
		if err != nil {
			return nil, err
		}
		plans[i].To = to
	}
	return plans, nil
}

func isQuantized(t tensor.Type) bool { return t.BlockSize() > 1 }

// tensorType is llama_tensor_get_type with default parameters (no
// overrides, not pure, no imatrix) restricted to the supported file types.
func (st *planState) tensorType(ti *gguf.TensorInfo) (tensor.Type, error) {
	newType := st.ft.Base
	if !isQuantized(newType) {
		return newType, nil
	}
	c := categoryOf(ti.Name)
	switch {
	case c == catOutput || (st.tied && c == catTokenEmbd):
		if ti.Dims[0]%uint64(newType.BlockSize()) != 0 {
			newType = tensor.Q8_0
		} else if newType != tensor.Q8_0 {
			newType = tensor.Q6_K
		}
	case c == catTokenEmbd:
		// no change for the supported file types
	case c.isAttnV():
		if (st.ft.Name == "Q4_K_M" || st.ft.Name == "Q5_K_M") && useMoreBits(st.iAttnWV, st.nAttnWV) {
			newType = tensor.Q6_K
		}
		if st.is70B && (newType == tensor.Q3_K || newType == tensor.Q4_K) {
			newType = tensor.Q5_K
		}
		st.iAttnWV++
	case c == catFFNDown:
		i, n := st.iFFNDown, st.nLayer
		switch st.ft.Name {
		case "Q4_K_M":
			if useMoreBits(i, n) {
				newType = tensor.Q6_K
			}
		case "Q5_K_M":
			if useMoreBits(i, n) {
				newType = tensor.Q6_K
			}
		}
		st.iFFNDown++
	}
	return st.fallback(ti, newType)
}

// fallback is llama.cpp's tensor_type_fallback: a type whose block does not
// divide the row length is replaced.
func (st *planState) fallback(ti *gguf.TensorInfo, t tensor.Type) (tensor.Type, error) {
	ncols := ti.Dims[0]
	if ncols%uint64(t.BlockSize()) == 0 {
		return t, nil
	}
	var to tensor.Type
	switch t {
	case tensor.IQ1_S, tensor.IQ1_M, tensor.IQ2_XXS, tensor.IQ2_XS, tensor.IQ2_S, tensor.IQ3_XXS, tensor.IQ3_S, tensor.IQ4_XS:
		to = tensor.IQ4_NL
	case tensor.Q2_K, tensor.Q3_K, tensor.TQ1_0, tensor.TQ2_0:
		to = tensor.Q4_0
	case tensor.Q4_K:
		to = tensor.Q5_0
	case tensor.Q5_K:
		to = tensor.Q5_1
	case tensor.Q6_K:
		to = tensor.Q8_0
	default:
		return 0, fmt.Errorf("quantize: tensor %s: row length %d is not a multiple of %s's block size %d and llama.cpp defines no fallback for %s",
			ti.Name, ncols, t, t.BlockSize(), t)
	}
	if ncols%uint64(to.BlockSize()) != 0 {
		to = tensor.F16
	}
	st.nFallback++
	return to, nil
}
