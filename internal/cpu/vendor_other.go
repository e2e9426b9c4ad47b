//go:build !amd64

package cpu

func vendor() string { return "" }
