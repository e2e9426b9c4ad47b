//go:build !amd64

package cpu

// Only the generic path exists off amd64.
func detect() Features { return Features{} }
