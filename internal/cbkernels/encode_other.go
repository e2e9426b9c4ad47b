//go:build !amd64

package cbkernels

import "github.com/kvserve/kvserve/internal/tensor"

func encodeSIMD(t tensor.Type, dst []byte, src []float32) bool { return false }

func encKernelFor(t tensor.Type) (encKernel, *encTables) { return nil, nil }
