// quant-ones: llama.cpp's model quantizer (llama_model_quantize) with an
// importance matrix of ones for every 2-D tensor, so that the IQ types that
// llama.cpp refuses to write without one (IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S,
// IQ1_M) can be produced for loading and fidelity tests. A matrix of ones
// gives every column the same weight: it is not a real calibration.
//
//   quant-ones IN.gguf OUT.gguf FTYPE_NUMBER [THREADS]
//
// Built and run by scripts/iq-llamacpp.sh against the llref build
// (../shared/llamacpp-ref).
#include "llama.h"
#include "gguf.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <unordered_map>
#include <vector>

int main(int argc, char ** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: quant-ones IN.gguf OUT.gguf FTYPE_NUMBER [THREADS]\n");
        return 2;
    }
    gguf_init_params gp = {/*no_alloc*/ true, /*ctx*/ nullptr};
    ggml_context * meta = nullptr;
    gp.ctx = &meta;
    gguf_context * g = gguf_init_from_file(argv[1], gp);
    if (!g) {
        fprintf(stderr, "quant-ones: cannot read %s\n", argv[1]);
        return 1;
    }
    std::unordered_map<std::string, std::vector<float>> imatrix;
    for (int64_t i = 0; i < gguf_get_n_tensors(g); i++) {
        const char * name = gguf_get_tensor_name(g, i);
        ggml_tensor * t = ggml_get_tensor(meta, name);
        if (t && ggml_n_dims(t) >= 2) {
            imatrix[name] = std::vector<float>(t->ne[0] * t->ne[2], 1.0f);
        }
    }
    gguf_free(g);
    ggml_free(meta);
    llama_model_quantize_params qp = llama_model_quantize_default_params();
    qp.ftype = (llama_ftype) atoi(argv[3]);
    qp.nthread = argc > 4 ? atoi(argv[4]) : 2;
    qp.imatrix = &imatrix;
    uint32_t rc = llama_model_quantize(argv[1], argv[2], &qp);
    if (rc != 0) {
        fprintf(stderr, "quant-ones: quantize failed (%u)\n", rc);
        return 1;
    }
    return 0;
}
