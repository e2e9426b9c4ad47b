// Package attn declares how one transformer layer attends — full causal
// attention or a sliding window, logit soft-capping, learned sinks. It is
// the contract between the model, which declares one Layer per layer from
// its architecture and file, and the KV cache, which applies it when
// attending and keeps only the pages a layer can still attend.
package attn

// MaxRun is the most consecutive tokens of one sequence the model hands the
// cache's attention at once (a run shares each page's scoring).
const MaxRun = 32

// Layer is how one layer attends.
type Layer struct {
	// Window > 0 makes a sliding-window layer: the token at position p
	// attends to positions p-Window+1 .. p only. 0: full causal attention.
	Window int
	// Softcap > 0 caps attention logits: s becomes Softcap·tanh(s/Softcap)
	// (Gemma 2).
	Softcap float32
	// Sinks, when set, holds one learned logit per query head that joins
	// every softmax's denominator with no value attached (gpt-oss).
	Sinks []float32
}

// Kind names the layer's attention for reports: "full" or "window".
func (a *Layer) Kind() string {
	if a.Window > 0 {
		return "window"
	}
	return "full"
}

// WindowStart is the first position a token at pos attends (0 for full
// attention).
func (a *Layer) WindowStart(pos int) int {
	if a.Window <= 0 {
		return 0
	}
	return max(0, pos-a.Window+1)
}
