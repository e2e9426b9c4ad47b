package kvcache

import "syscall"

// threadCPU returns the CPU time of the calling OS thread (benchmarks lock
// their goroutine to it), robust to a shared machine's descheduling.
func threadCPU() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(1, &ru) // RUSAGE_THREAD
	return ru.Utime.Nano() + ru.Stime.Nano()
}
