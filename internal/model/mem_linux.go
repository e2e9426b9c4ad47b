package model

import "syscall"

// adviseHuge asks for transparent huge pages (where the system allows them
// on request): streaming gigabytes of weights per token touches far fewer
// TLB entries with 2 MiB pages.
func adviseHuge(b []byte) { syscall.Madvise(b, syscall.MADV_HUGEPAGE) }
