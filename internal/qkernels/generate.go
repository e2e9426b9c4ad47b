package qkernels

// The assembly, avx512_amd64.s and avx2_amd64.s, is written by gen/main.go.
//go:generate go run ./gen
//go:generate go run ./genlanes
//go:generate go run ./genlowbit
//go:generate go run ./genlanes2
