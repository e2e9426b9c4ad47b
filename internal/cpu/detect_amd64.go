//go:build amd64

package cpu

import xcpu "golang.org/x/sys/cpu"

func detect() Features {
	x := &xcpu.X86
	return Features{
		AVX: x.HasAVX, AVX2: x.HasAVX2, FMA: x.HasFMA, F16C: x.HasF16C, BMI1: x.HasBMI1, BMI2: x.HasBMI2,
		AVX512F: x.HasAVX512F, AVX512BW: x.HasAVX512BW, AVX512VL: x.HasAVX512VL, AVX512DQ: x.HasAVX512DQ,
		AVX512VNNI: x.HasAVX512VNNI, AVX512VBMI: x.HasAVX512VBMI, AVX512BITALG: x.HasAVX512BITALG,
		AVXVNNI: x.HasAVXVNNI,
	}
}
