package cbkernels

import "syscall"

// processCPU returns the CPU time of the whole process (every thread),
// robust to a shared machine's descheduling.
func processCPU() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
