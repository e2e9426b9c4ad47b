//go:build unix && !linux

package model

func adviseHuge(b []byte) {}
