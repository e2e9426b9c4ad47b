package synth

import (
	"fmt"
	"sort"
	"strings"
)

// Preset is the shape of one model: the hyperparameters of its published
// config.json (text model only) and how its tokenizer is stood in for.
type Preset struct {
	Name   string // kvserve's name, e.g. "llama-3.2-1b"
	Model  string // what it copies, e.g. "meta-llama/Llama-3.2-1B-Instruct"
	Arch   string // general.architecture, as llama.cpp's converter writes it
	Family Family // chat template and special tokens
	Vocab  VocabKind
	Tiny   bool // a small preset for tests

	NEmbd, NLayer, NHead, NHeadKV, HeadDim, NFF, NVocab, NCtx int

	HeadDimKey bool // config.json has head_dim: attention.key_length/value_length are written
	RopeBase   float64
	RopeDim    int // rotated dimensions per head when not all (partial rotary)
	NormEps    float32
	Tied       bool // no output.weight: the output reuses token_embd
	QKVBias    bool // qwen2

	Llama3Rope *Llama3Rope // Llama 3.1+ RoPE scaling, written as rope_freqs.weight
	LinearRope float64     // linear RoPE scaling factor (gemma3 global layers)
	Yarn       *Yarn       // YaRN RoPE scaling (mistral3)
	LongRope   *LongRope   // LongRoPE factor tensors (phi3)
	TempScale  float32     // attention temperature scale (mistral3 llama_4_scaling_beta)

	SlidingWindow int     // attention.sliding_window (0: none)
	RopeBaseSWA   float64 // RoPE base of sliding-window layers when it differs (gemma3)
	AttnSoftcap   float32 // gemma2
	FinalSoftcap  float32 // gemma2

	// Mixture of experts (qwen3moe): NExpert experts of NFFExp hidden
	// units, NExpertUsed per token; NFF is then the dense
	// intermediate_size the config also states (written, unused).
	NExpert, NExpertUsed, NFFExp int
	NFFShared                    int // a shared expert of this width (qwen2moe; 0: none)

	// Hybrid recurrent (qwen3next): Gated DeltaNet layers (every layer
	// but each fourth) with SSMNK key heads and SSMNV value heads of
	// SSMState dimensions, and a causal convolution of SSMConv taps.
	SSMConv, SSMState, SSMNK, SSMNV int
	// LFM2: a gated short convolution of ShortConv taps in every layer but
	// those listed in AttnLayers.
	ShortConv  int
	AttnLayers []int

	// Params is the published parameter count of the text model (0 for
	// tiny presets, or when no exact figure is published); tests check the
	// layout against it.
	Params float64
}

// Llama3Rope is the rope_scaling of Llama 3.1 and 3.2 (rope_type llama3).
type Llama3Rope struct {
	Factor, LowFreqFactor, HighFreqFactor float64
	OrigCtx                               int
}

// Yarn is a YaRN rope_scaling.
type Yarn struct {
	Factor             float64
	OrigCtx            int
	BetaFast, BetaSlow float64
	LogMul             float64 // mscale_all_dim, written as yarn_log_multiplier (0: not written)
}

// LongRope is Phi-3's LongRoPE: per-dimension frequency divisors for
// contexts up to and beyond OrigCtx.
type LongRope struct {
	OrigCtx     int
	Long, Short []float32
}

// Family is a model family's chat conventions.
type Family string

const (
	FamilyLlama3     Family = "llama3"
	FamilyQwen       Family = "qwen"
	FamilyGemma      Family = "gemma"
	FamilyPhi        Family = "phi"
	FamilyMistral    Family = "mistral"
	FamilyMistralSPM Family = "mistral-spm"
	FamilyHarmony    Family = "harmony" // gpt-oss
)

// VocabKind says which real vocabulary stands in for the model's.
type VocabKind string

const (
	// VocabLlama3 is the Llama-3 byte-level BPE vocabulary (128,000
	// tokens and 280,147 merges) from the shared assets
	// (tokenizers/llama3), tokenizer.ggml.pre = llama-bpe.
	VocabLlama3 VocabKind = "llama3"
	// VocabKvtest is kvtest-27m's 8,192-token GPT-2 BPE vocabulary, taken
	// from the embedded default model (no shared assets needed).
	VocabKvtest VocabKind = "kvtest"
	// VocabSPM is kvtest-spm-5m's 4,096-token SentencePiece vocabulary
	// from the shared assets (models/kvtest-spm-5m-f16.gguf).
	VocabSPM VocabKind = "spm"
)

// phi4MiniLong is Phi-4-mini-instruct's rope_scaling.long_factor.
var phi4MiniLong = []float32{1, 1.118320672, 1.250641126, 1.398617824, 1.564103225, 1.74916897,
	1.956131817, 2.187582649, 2.446418898, 2.735880826, 3.059592084, 3.421605075, 3.826451687,
	4.279200023, 4.785517845, 5.351743533, 5.984965424, 6.693110555, 7.485043894, 8.370679318,
	9.36110372, 10.4687158, 11.70738129, 13.09260651, 14.64173252, 16.37415215, 18.31155283,
	20.47818807, 22.90118105, 25.61086418, 28.64115884, 32.03, 32.1, 32.13, 32.23, 32.6, 32.61,
	32.64, 32.66, 32.7, 32.71, 32.93, 32.97, 33.28, 33.49, 33.5, 44.16, 47.77}

func ones(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 1
	}
	return v
}

// ramp returns n factors rising geometrically from 1 to top (a LongRoPE
// long_factor shape for tiny presets).
func ramp(n int, top float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(pow(top, float64(i)/float64(n-1)))
	}
	return v
}

var llama31Rope = &Llama3Rope{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OrigCtx: 8192}
var llama32Rope = &Llama3Rope{Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OrigCtx: 8192}

// presets lists every preset; real ones copy their model's config.json.
var presets = []*Preset{
	{Name: "llama-3.2-1b", Model: "meta-llama/Llama-3.2-1B-Instruct", Arch: "llama", Family: FamilyLlama3, Vocab: VocabLlama3,
		NEmbd: 2048, NLayer: 16, NHead: 32, NHeadKV: 8, HeadDim: 64, NFF: 8192, NVocab: 128256, NCtx: 131072, HeadDimKey: true,
		RopeBase: 500000, NormEps: 1e-5, Tied: true, Llama3Rope: llama32Rope, Params: 1.236e9},
	{Name: "llama-3.2-3b", Model: "meta-llama/Llama-3.2-3B-Instruct", Arch: "llama", Family: FamilyLlama3, Vocab: VocabLlama3,
		NEmbd: 3072, NLayer: 28, NHead: 24, NHeadKV: 8, HeadDim: 128, NFF: 8192, NVocab: 128256, NCtx: 131072, HeadDimKey: true,
		RopeBase: 500000, NormEps: 1e-5, Tied: true, Llama3Rope: llama32Rope, Params: 3.213e9},
	{Name: "llama-3.1-8b", Model: "meta-llama/Llama-3.1-8B-Instruct", Arch: "llama", Family: FamilyLlama3, Vocab: VocabLlama3,
		NEmbd: 4096, NLayer: 32, NHead: 32, NHeadKV: 8, HeadDim: 128, NFF: 14336, NVocab: 128256, NCtx: 131072,
		RopeBase: 500000, NormEps: 1e-5, Llama3Rope: llama31Rope, Params: 8.03e9},
	{Name: "qwen2.5-0.5b", Model: "Qwen/Qwen2.5-0.5B-Instruct", Arch: "qwen2", Family: FamilyQwen, Vocab: VocabLlama3,
		NEmbd: 896, NLayer: 24, NHead: 14, NHeadKV: 2, HeadDim: 64, NFF: 4864, NVocab: 151936, NCtx: 32768,
		RopeBase: 1e6, NormEps: 1e-6, Tied: true, QKVBias: true, Params: 0.494e9},
	{Name: "qwen2.5-7b", Model: "Qwen/Qwen2.5-7B-Instruct", Arch: "qwen2", Family: FamilyQwen, Vocab: VocabLlama3,
		NEmbd: 3584, NLayer: 28, NHead: 28, NHeadKV: 4, HeadDim: 128, NFF: 18944, NVocab: 152064, NCtx: 32768,
		RopeBase: 1e6, NormEps: 1e-6, QKVBias: true, Params: 7.62e9},
	{Name: "qwen3-0.6b", Model: "Qwen/Qwen3-0.6B", Arch: "qwen3", Family: FamilyQwen, Vocab: VocabLlama3,
		NEmbd: 1024, NLayer: 28, NHead: 16, NHeadKV: 8, HeadDim: 128, NFF: 3072, NVocab: 151936, NCtx: 40960, HeadDimKey: true,
		RopeBase: 1e6, NormEps: 1e-6, Tied: true, Params: 0.596e9},
	{Name: "qwen3-4b", Model: "Qwen/Qwen3-4B", Arch: "qwen3", Family: FamilyQwen, Vocab: VocabLlama3,
		NEmbd: 2560, NLayer: 36, NHead: 32, NHeadKV: 8, HeadDim: 128, NFF: 9728, NVocab: 151936, NCtx: 40960, HeadDimKey: true,
		RopeBase: 1e6, NormEps: 1e-6, Tied: true, Params: 4.02e9},
	{Name: "qwen3-8b", Model: "Qwen/Qwen3-8B", Arch: "qwen3", Family: FamilyQwen, Vocab: VocabLlama3,
		NEmbd: 4096, NLayer: 36, NHead: 32, NHeadKV: 8, HeadDim: 128, NFF: 12288, NVocab: 151936, NCtx: 40960, HeadDimKey: true,
		RopeBase: 1e6, NormEps: 1e-6, Params: 8.19e9},
	{Name: "qwen3-30b-a3b", Model: "Qwen/Qwen3-30B-A3B", Arch: "qwen3moe", Family: FamilyQwen, Vocab: VocabLlama3,
		NEmbd: 2048, NLayer: 48, NHead: 32, NHeadKV: 4, HeadDim: 128, NFF: 6144, NVocab: 151936, NCtx: 40960, HeadDimKey: true,
		RopeBase: 1e6, NormEps: 1e-6, NExpert: 128, NExpertUsed: 8, NFFExp: 768, Params: 30.53e9},
	{Name: "gpt-oss-20b", Model: "openai/gpt-oss-20b", Arch: "gpt-oss", Family: FamilyHarmony, Vocab: VocabLlama3,
		NEmbd: 2880, NLayer: 24, NHead: 64, NHeadKV: 8, HeadDim: 64, NFF: 2880, NVocab: 201088, NCtx: 131072, HeadDimKey: true,
		RopeBase: 150000, NormEps: 1e-5, SlidingWindow: 128, NExpert: 32, NExpertUsed: 4, NFFExp: 2880,
		Yarn: &Yarn{Factor: 32, OrigCtx: 4096, BetaFast: 32, BetaSlow: 1}, Params: 20.91e9},
	{Name: "gemma-3-1b", Model: "google/gemma-3-1b-it", Arch: "gemma3", Family: FamilyGemma, Vocab: VocabLlama3,
		NEmbd: 1152, NLayer: 26, NHead: 4, NHeadKV: 1, HeadDim: 256, NFF: 6912, NVocab: 262144, NCtx: 32768, HeadDimKey: true,
		RopeBase: 1e6, RopeBaseSWA: 10000, NormEps: 1e-6, Tied: true, SlidingWindow: 512, Params: 1.0e9},
	{Name: "gemma-3-4b", Model: "google/gemma-3-4b-it (text model)", Arch: "gemma3", Family: FamilyGemma, Vocab: VocabLlama3,
		NEmbd: 2560, NLayer: 34, NHead: 8, NHeadKV: 4, HeadDim: 256, NFF: 10240, NVocab: 262144, NCtx: 131072, HeadDimKey: true,
		RopeBase: 1e6, RopeBaseSWA: 10000, LinearRope: 8, NormEps: 1e-6, Tied: true, SlidingWindow: 1024, Params: 3.88e9},
	{Name: "gemma-3-12b", Model: "google/gemma-3-12b-it (text model)", Arch: "gemma3", Family: FamilyGemma, Vocab: VocabLlama3,
		NEmbd: 3840, NLayer: 48, NHead: 16, NHeadKV: 8, HeadDim: 256, NFF: 15360, NVocab: 262144, NCtx: 131072, HeadDimKey: true,
		RopeBase: 1e6, RopeBaseSWA: 10000, LinearRope: 8, NormEps: 1e-6, Tied: true, SlidingWindow: 1024, Params: 11.77e9},
	{Name: "gemma-2-2b", Model: "google/gemma-2-2b-it", Arch: "gemma2", Family: FamilyGemma, Vocab: VocabLlama3,
		NEmbd: 2304, NLayer: 26, NHead: 8, NHeadKV: 4, HeadDim: 256, NFF: 9216, NVocab: 256000, NCtx: 8192, HeadDimKey: true,
		RopeBase: 10000, NormEps: 1e-6, Tied: true, SlidingWindow: 4096, AttnSoftcap: 50, FinalSoftcap: 30, Params: 2.614e9},
	{Name: "phi-4-mini", Model: "microsoft/Phi-4-mini-instruct", Arch: "phi3", Family: FamilyPhi, Vocab: VocabLlama3,
		NEmbd: 3072, NLayer: 32, NHead: 24, NHeadKV: 8, HeadDim: 128, NFF: 8192, NVocab: 200064, NCtx: 131072,
		RopeBase: 10000, RopeDim: 96, NormEps: 1e-5, Tied: true, SlidingWindow: 262144,
		LongRope: &LongRope{OrigCtx: 4096, Long: phi4MiniLong, Short: ones(48)}, Params: 3.836e9},
	{Name: "ministral-8b", Model: "mistralai/Ministral-8B-Instruct-2410", Arch: "llama", Family: FamilyMistral, Vocab: VocabLlama3,
		NEmbd: 4096, NLayer: 36, NHead: 32, NHeadKV: 8, HeadDim: 128, NFF: 12288, NVocab: 131072, NCtx: 32768, HeadDimKey: true,
		RopeBase: 1e8, NormEps: 1e-5, Params: 8.02e9},
	{Name: "ministral-3-8b", Model: "mistralai/Ministral-3-8B-Instruct-2512 (text model)", Arch: "mistral3", Family: FamilyMistral, Vocab: VocabLlama3,
		NEmbd: 4096, NLayer: 34, NHead: 32, NHeadKV: 8, HeadDim: 128, NFF: 14336, NVocab: 131072, NCtx: 262144, HeadDimKey: true,
		RopeBase: 1e6, NormEps: 1e-5, TempScale: 0.1,
		// No Params: the published "8.4B" does not say whether it counts the
		// output matrix; untied (as here) gives 8.49B, tied 7.95B.
		Yarn: &Yarn{Factor: 16, OrigCtx: 16384, BetaFast: 32, BetaSlow: 1, LogMul: 1}},
	{Name: "mistral-7b-v0.3", Model: "mistralai/Mistral-7B-Instruct-v0.3", Arch: "llama", Family: FamilyMistralSPM, Vocab: VocabSPM,
		NEmbd: 4096, NLayer: 32, NHead: 32, NHeadKV: 8, HeadDim: 128, NFF: 14336, NVocab: 32768, NCtx: 32768, HeadDimKey: true,
		RopeBase: 1e6, NormEps: 1e-5, Params: 7.248e9},

	// Tiny presets: a few layers and small dimensions, with every structural
	// feature of their family (kvtest-27m's vocabulary, 8,192 tokens, plus
	// the family's special tokens, padded to a multiple of 64).
	{Name: "tiny-llama", Model: "Llama 3.1 structure", Arch: "llama", Family: FamilyLlama3, Vocab: VocabKvtest, Tiny: true,
		NEmbd: 256, NLayer: 4, NHead: 4, NHeadKV: 2, HeadDim: 64, NFF: 768, NVocab: 8512, NCtx: 4096, HeadDimKey: true,
		RopeBase: 500000, NormEps: 1e-5, Llama3Rope: &Llama3Rope{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OrigCtx: 256}},
	{Name: "tiny-qwen2", Model: "Qwen2.5 structure", Arch: "qwen2", Family: FamilyQwen, Vocab: VocabKvtest, Tiny: true,
		NEmbd: 256, NLayer: 4, NHead: 4, NHeadKV: 2, HeadDim: 64, NFF: 768, NVocab: 8256, NCtx: 4096,
		RopeBase: 1e6, NormEps: 1e-6, Tied: true, QKVBias: true},
	{Name: "tiny-qwen3", Model: "Qwen3 structure", Arch: "qwen3", Family: FamilyQwen, Vocab: VocabKvtest, Tiny: true,
		NEmbd: 256, NLayer: 4, NHead: 4, NHeadKV: 2, HeadDim: 128, NFF: 768, NVocab: 8256, NCtx: 4096, HeadDimKey: true,
		RopeBase: 1e6, NormEps: 1e-6, Tied: true},
	{Name: "tiny-qwen3moe", Model: "Qwen3-MoE structure", Arch: "qwen3moe", Family: FamilyQwen, Vocab: VocabKvtest, Tiny: true,
		NEmbd: 256, NLayer: 4, NHead: 4, NHeadKV: 2, HeadDim: 128, NFF: 768, NVocab: 8256, NCtx: 4096, HeadDimKey: true,
		RopeBase: 1e6, NormEps: 1e-6, NExpert: 16, NExpertUsed: 4, NFFExp: 256},
	{Name: "tiny-gpt-oss", Model: "gpt-oss structure", Arch: "gpt-oss", Family: FamilyHarmony, Vocab: VocabKvtest, Tiny: true,
		NEmbd: 256, NLayer: 4, NHead: 4, NHeadKV: 2, HeadDim: 64, NFF: 256, NVocab: 8256, NCtx: 4096, HeadDimKey: true,
		RopeBase: 150000, NormEps: 1e-5, SlidingWindow: 32, NExpert: 16, NExpertUsed: 4, NFFExp: 256,
		Yarn: &Yarn{Factor: 32, OrigCtx: 128, BetaFast: 32, BetaSlow: 1}},
	{Name: "tiny-qwen2moe", Model: "Qwen1.5-MoE structure", Arch: "qwen2moe", Family: FamilyQwen, Vocab: VocabKvtest, Tiny: true,
		NEmbd: 256, NLayer: 4, NHead: 4, NHeadKV: 2, HeadDim: 64, NFF: 768, NVocab: 8256, NCtx: 4096,
		RopeBase: 1e6, NormEps: 1e-6, QKVBias: true, NExpert: 16, NExpertUsed: 4, NFFExp: 256, NFFShared: 512},
	{Name: "tiny-qwen3next", Model: "Qwen3-Next structure", Arch: "qwen3next", Family: FamilyQwen, Vocab: VocabKvtest, Tiny: true,
		NEmbd: 256, NLayer: 8, NHead: 4, NHeadKV: 2, HeadDim: 64, NFF: 768, NVocab: 8256, NCtx: 4096, HeadDimKey: true,
		RopeBase: 1e7, RopeDim: 16, NormEps: 1e-6, NExpert: 16, NExpertUsed: 4, NFFExp: 128, NFFShared: 256,
		SSMConv: 4, SSMState: 64, SSMNK: 2, SSMNV: 4},
	{Name: "tiny-qwen35", Model: "Qwen3.5 structure", Arch: "qwen35", Family: FamilyQwen, Vocab: VocabKvtest, Tiny: true,
		NEmbd: 256, NLayer: 8, NHead: 4, NHeadKV: 2, HeadDim: 64, NFF: 768, NVocab: 8256, NCtx: 4096, HeadDimKey: true,
		RopeBase: 1e7, RopeDim: 16, NormEps: 1e-6, SSMConv: 4, SSMState: 64, SSMNK: 2, SSMNV: 4},
	{Name: "tiny-qwen35moe", Model: "Qwen3.5-MoE structure", Arch: "qwen35moe", Family: FamilyQwen, Vocab: VocabKvtest, Tiny: true,
		NEmbd: 256, NLayer: 8, NHead: 4, NHeadKV: 2, HeadDim: 64, NFF: 768, NVocab: 8256, NCtx: 4096, HeadDimKey: true,
		RopeBase: 1e7, RopeDim: 16, NormEps: 1e-6, NExpert: 16, NExpertUsed: 4, NFFExp: 128, NFFShared: 256,
		SSMConv: 4, SSMState: 64, SSMNK: 2, SSMNV: 4},
	{Name: "tiny-lfm2", Model: "LFM2 structure", Arch: "lfm2", Family: FamilyQwen, Vocab: VocabKvtest, Tiny: true,
		NEmbd: 256, NLayer: 6, NHead: 4, NHeadKV: 2, HeadDim: 64, NFF: 768, NVocab: 8256, NCtx: 4096,
		RopeBase: 1e6, NormEps: 1e-5, Tied: true, ShortConv: 3, AttnLayers: []int{2, 5}},
	{Name: "tiny-gemma3", Model: "Gemma 3 structure", Arch: "gemma3", Family: FamilyGemma, Vocab: VocabKvtest, Tiny: true,
		NEmbd: 256, NLayer: 8, NHead: 4, NHeadKV: 2, HeadDim: 64, NFF: 768, NVocab: 8256, NCtx: 4096, HeadDimKey: true,
		RopeBase: 1e6, RopeBaseSWA: 10000, LinearRope: 8, NormEps: 1e-6, Tied: true, SlidingWindow: 32},
	{Name: "tiny-gemma2", Model: "Gemma 2 structure", Arch: "gemma2", Family: FamilyGemma, Vocab: VocabKvtest, Tiny: true,
		NEmbd: 256, NLayer: 4, NHead: 4, NHeadKV: 2, HeadDim: 64, NFF: 768, NVocab: 8256, NCtx: 4096, HeadDimKey: true,
		RopeBase: 10000, NormEps: 1e-6, Tied: true, SlidingWindow: 32, AttnSoftcap: 50, FinalSoftcap: 30},
	{Name: "tiny-phi3", Model: "Phi-4-mini structure", Arch: "phi3", Family: FamilyPhi, Vocab: VocabKvtest, Tiny: true,
		NEmbd: 256, NLayer: 4, NHead: 4, NHeadKV: 2, HeadDim: 64, NFF: 768, NVocab: 8256, NCtx: 4096,
		RopeBase: 10000, RopeDim: 48, NormEps: 1e-5, Tied: true, SlidingWindow: 4096,
		LongRope: &LongRope{OrigCtx: 128, Long: ramp(24, 8), Short: ones(24)}},
	{Name: "tiny-mistral3", Model: "Ministral 3 structure", Arch: "mistral3", Family: FamilyMistral, Vocab: VocabKvtest, Tiny: true,
		NEmbd: 256, NLayer: 4, NHead: 4, NHeadKV: 2, HeadDim: 64, NFF: 768, NVocab: 8256, NCtx: 4096, HeadDimKey: true,
		RopeBase: 1e6, NormEps: 1e-5, TempScale: 0.1,
		Yarn: &Yarn{Factor: 16, OrigCtx: 128, BetaFast: 32, BetaSlow: 1, LogMul: 1}},
}

// Presets returns every preset, real ones first, in a fixed order.
func Presets() []*Preset { return presets }

// Lookup finds a preset by name (case-insensitive).
func Lookup(name string) (*Preset, error) {
	for _, p := range presets {
		if strings.EqualFold(p.Name, name) {
			return p, nil
		}
	}
	names := make([]string, len(presets))
	for i, p := range presets {
		names[i] = p.Name
	}
	sort.Strings(names)
	return nil, fmt.Errorf("synth: unknown preset %q (presets: %s)", name, strings.Join(names, ", "))
}

// WithLayers returns a copy of p with n layers (n ≤ 0: p itself). Every
// other dimension, the vocabulary and the metadata keep their real values.
func (p *Preset) WithLayers(n int) (*Preset, error) {
	if n <= 0 || n == p.NLayer {
		return p, nil
	}
	c := *p
	c.NLayer = n
	return &c, nil
}

// ffn is the hidden width of one FFN a token runs through: an expert's for
// MoE presets.
func (p *Preset) ffn() int {
	if p.NExpert > 0 {
		return p.NFFExp
	}
	return p.NFF
}

// ropeDim is the number of rotated dimensions per head.
func (p *Preset) ropeDim() int {
	if p.RopeDim > 0 {
		return p.RopeDim
	}
	return p.HeadDim
}

// check validates a preset's dimensions.
func (p *Preset) check() error {
	switch {
	case p.NEmbd <= 0 || p.NLayer <= 0 || p.NHead <= 0 || p.NHeadKV <= 0 || p.HeadDim <= 0 || p.NFF <= 0 || p.NVocab <= 0:
		return fmt.Errorf("synth: preset %s: dimensions must be positive", p.Name)
	case p.NHead%p.NHeadKV != 0:
		return fmt.Errorf("synth: preset %s: %d heads are not a multiple of %d KV heads", p.Name, p.NHead, p.NHeadKV)
	case p.HeadDim%2 != 0 || p.ropeDim()%2 != 0 || p.ropeDim() > p.HeadDim:
		return fmt.Errorf("synth: preset %s: bad head/rope dimensions %d/%d", p.Name, p.HeadDim, p.ropeDim())
	case p.NLayer > 1000:
		return fmt.Errorf("synth: preset %s: %d layers is too many", p.Name, p.NLayer)
	}
	switch p.Arch {
	case "lfm2":
		if p.NExpert != 0 || p.ShortConv < 2 || len(p.AttnLayers) == 0 || p.NHead*p.HeadDim != p.NEmbd {
			return fmt.Errorf("synth: preset %s: lfm2 needs a short convolution, attention layers and heads × head dim = n_embd", p.Name)
		}
	case "llama", "mistral3", "qwen2", "qwen3", "gemma2", "gemma3", "phi3":
		if p.NExpert != 0 {
			return fmt.Errorf("synth: preset %s: %s has no experts", p.Name, p.Arch)
		}
	case "qwen35":
		if p.NExpert != 0 || p.SSMConv < 2 || p.SSMState <= 0 || p.SSMNK <= 0 || p.SSMNV%max(p.SSMNK, 1) != 0 {
			return fmt.Errorf("synth: preset %s: bad Gated DeltaNet shape or experts", p.Name)
		}
	case "qwen3moe", "gpt-oss", "qwen2moe", "qwen3next", "qwen35moe":
		if (p.Arch == "qwen3next" || p.Arch == "qwen35moe") && (p.SSMConv < 2 || p.SSMState <= 0 || p.SSMNK <= 0 || p.SSMNV%max(p.SSMNK, 1) != 0 || p.NFFShared <= 0) {
			return fmt.Errorf("synth: preset %s: bad Gated DeltaNet shape (conv %d, state %d, heads %d/%d) or no shared expert", p.Name, p.SSMConv, p.SSMState, p.SSMNK, p.SSMNV)
		}
		if p.NExpert < 2 || p.NExpertUsed < 1 || p.NExpertUsed > p.NExpert || p.NFFExp <= 0 {
			return fmt.Errorf("synth: preset %s: bad expert counts %d/%d/%d", p.Name, p.NExpert, p.NExpertUsed, p.NFFExp)
		}
	default:
		return fmt.Errorf("synth: preset %s: unsupported architecture %q", p.Name, p.Arch)
	}
	if p.Arch == "phi3" && p.NHead*p.HeadDim != p.NEmbd {
		return fmt.Errorf("synth: preset %s: phi3 needs heads × head dim = n_embd", p.Name)
	}
	if (p.Arch == "qwen2" || p.Arch == "qwen2moe") && p.NHead*p.HeadDim != p.NEmbd {
		return fmt.Errorf("synth: preset %s: qwen2 needs heads × head dim = n_embd", p.Name)
	}
	if p.LongRope != nil && (len(p.LongRope.Long) != p.ropeDim()/2 || len(p.LongRope.Short) != p.ropeDim()/2) {
		return fmt.Errorf("synth: preset %s: LongRoPE factors must have %d entries", p.Name, p.ropeDim()/2)
	}
	return nil
}
