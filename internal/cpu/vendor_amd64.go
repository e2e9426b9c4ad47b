//go:build amd64

package cpu

import "encoding/binary"

func cpuid(leaf uint32) (ebx, ecx, edx uint32)

// vendor is CPUID leaf 0's vendor string ("GenuineIntel", "AuthenticAMD").
func vendor() string {
	ebx, ecx, edx := cpuid(0)
	var b [12]byte
	binary.LittleEndian.PutUint32(b[0:], ebx)
	binary.LittleEndian.PutUint32(b[4:], edx)
	binary.LittleEndian.PutUint32(b[8:], ecx)
	return string(b[:])
}
