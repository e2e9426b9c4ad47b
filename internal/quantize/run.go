package quantize

import (
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/tensor"
)

// QuantizationVersion is ggml's GGML_QNT_VERSION, written to
// general.quantization_version.
const QuantizationVersion = 2

// chunkBytes bounds the output buffered per tensor chunk.
const chunkBytes = 4 << 20

// Run quantizes the GGUF model at inPath into outPath with file type ftype
// (one of FileTypes, case-insensitive), converting
// rows on threads goroutines (≤ 0: one per CPU). Per-tensor progress lines
// go to progress when it is not nil. The output keeps every metadata key of
// the input except that general.file_type is set to the file type's
// llama.cpp number and general.quantization_version to 2, and it is written
// atomically (a temporary file renamed into place). Tensors are streamed:
// the input is memory-mapped and only a few MiB of output are buffered.
func Run(inPath, outPath, ftype string, threads int, progress io.Writer) error {
	ft, err := ParseFileType(ftype)
	if err != nil {
		return err
	}
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	if a, b := filepath.Clean(inPath), filepath.Clean(outPath); a == b {
		return fmt.Errorf("quantize: output %s is the input file", outPath)
	}
	in, err := gguf.Open(inPath)
	if err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	defer in.Close()
	plans, err := Plan(in, ft)
	if err != nil {
		return err
	}
	for i := range plans {
		p := &plans[i]
		if !p.Convert() {
			continue
		}
		if err := checkConvertible(p); err != nil {
			return err
		}
	}

	kvs := outputKVs(in.KVs, ft)
	out := make([]gguf.WriterTensor, len(plans))
	var totalIn, totalOut uint64
	for i := range plans {
		p := &plans[i]
		idx := i
		out[i] = gguf.WriterTensor{
			Name: p.Info.Name,
			Dims: p.Info.Dims,
			Type: p.To,
			Data: func(w io.Writer) error {
				start := time.Now()
				data := in.TensorData(p.Info)
				var err error
				if p.Convert() {
					err = convertTensor(w, p, data, threads)
				} else {
					_, err = w.Write(data)
				}
				if err != nil {
					return err
				}
				outSize := p.To.RowSize(int(p.Info.Dims[0])) * int(p.Info.Rows())
				totalIn += p.Info.Size
				totalOut += uint64(outSize)
				if progress != nil {
					action := "copying"
					if p.Convert() {
						action = "converting to " + p.To.String()
					}
					fmt.Fprintf(progress, "[%4d/%4d] %-36s - %-20s type = %6s, %s .. size = %8.2f MiB -> %8.2f MiB (%.0f ms)\n",
						idx+1, len(plans), p.Info.Name, fmt.Sprint(p.Info.Dims), p.Info.Type, action,
						float64(p.Info.Size)/(1<<20), float64(outSize)/(1<<20), float64(time.Since(start).Microseconds())/1000)
				}
				return nil
			},
		}
	}
	if err := gguf.WriteFile(outPath, kvs, out); err != nil {
		return fmt.Errorf("quantize: writing %s: %w", outPath, err)
	}
	if progress != nil {
		fmt.Fprintf(progress, "model size = %.2f MiB, quantized size = %.2f MiB (%s)\n",
			float64(totalIn)/(1<<20), float64(totalOut)/(1<<20), ft.Name)
	}
	return nil
}

// outputKVs is the input's metadata with llama.cpp's edits: the split keys
// and the two keys set by the quantizer are removed, then
// general.quantization_version and general.file_type appended, in that
// order (as gguf_set_val does for a key that already exists).
func outputKVs(in []gguf.KV, ft FileType) []gguf.KV {
	drop := map[string]bool{
		"general.quantization_version": true, "general.file_type": true,
		"split.no": true, "split.count": true, "split.tensors.count": true,
	}
	kvs := make([]gguf.KV, 0, len(in)+2)
	for _, kv := range in {
		if !drop[kv.Key] {
			kvs = append(kvs, kv)
		}
	}
	return append(kvs,
		gguf.KV{Key: "general.quantization_version", Value: gguf.Value{Type: gguf.TypeUint32, V: uint32(QuantizationVersion)}},
		gguf.KV{Key: "general.file_type", Value: gguf.Value{Type: gguf.TypeUint32, V: ft.ID}},
	)
}

func checkConvertible(p *TensorPlan) error {
	ti := p.Info
	switch ti.Type {
	case tensor.F32, tensor.F16, tensor.BF16:
	default:
		return fmt.Errorf("quantize: tensor %s is already quantized (%s); requantizing to %s is not supported", ti.Name, ti.Type, p.To)
	}
	if !tensor.Quantizable(p.To) {
		return fmt.Errorf("quantize: tensor %s: no quantizer for %s", ti.Name, p.To)
	}
	n := int(ti.Dims[0])
	if err := tensor.CheckRow(p.To, n); err != nil {
		return fmt.Errorf("quantize: tensor %s: %w", ti.Name, err)
	}
	if uint64(ti.Type.RowSize(n))*ti.Rows() != ti.Size {
		return fmt.Errorf("quantize: tensor %s: size %d does not match dims %v of %s", ti.Name, ti.Size, ti.Dims, ti.Type)
	}
	return nil
}

// convertTensor converts rows of data (type p.Info.Type) to p.To and writes
// them to w, in chunks of rows converted in parallel.
func convertTensor(w io.Writer, p *TensorPlan, data []byte, threads int) error {
	n := int(p.Info.Dims[0])
	rows := int(p.Info.Rows())
	inRow := p.Info.Type.RowSize(n)
	outRow := p.To.RowSize(n)
	chunkRows := max(1, min(rows, chunkBytes/max(1, outRow)))
	buf := make([]byte, chunkRows*outRow)
	scratch := make([][]float32, threads)
	for i := range scratch {
		scratch[i] = make([]float32, n)
	}
	errs := make([]error, threads)
	for r0 := 0; r0 < rows; r0 += chunkRows {
		nr := min(chunkRows, rows-r0)
		workers := min(threads, nr)
		var wg sync.WaitGroup
		for t := 0; t < workers; t++ {
			lo, hi := r0+nr*t/workers, r0+nr*(t+1)/workers
			wg.Add(1)
			go func(t, lo, hi int) {
				defer wg.Done()
				f := scratch[t]
				for r := lo; r < hi; r++ {
					tensor.DequantizeRow(p.Info.Type, data[r*inRow:(r+1)*inRow], f)
					for i, v := range f {
						if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
							errs[t] = fmt.Errorf("quantize: tensor %s: row %d element %d is %g", p.Info.Name, r, i, v)
							return
						}
					}
					o := (r - r0) * outRow
					if p.To == tensor.IQ4_NL {
						// llama.cpp's model quantizer, not the CPU backend's
						// (see tensor.QuantizeIQ4_NLModel).
						errs[t] = tensor.QuantizeIQ4_NLModel(f, buf[o:o+outRow])
					} else {
						tensor.QuantizeRow(p.To, f, buf[o:o+outRow])
					}
				}
			}(t, lo, hi)
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		if _, err := w.Write(buf[:nr*outRow]); err != nil {
			return err
		}
	}
	return nil
}
