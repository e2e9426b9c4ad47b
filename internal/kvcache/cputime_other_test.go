//go:build !linux

package kvcache

// threadCPU is not measured off Linux (the metric reads 0).
func threadCPU() int64 { return 0 }
