// llamacpp-embed: llama.cpp's embeddings of a few texts, as JSON lines, for
// kvserve's embedding parity fixture (scripts/embed-llamacpp.sh builds it
// against the llref build's libllama.a and writes
// testdata/llamacpp/embeddings.json).
//   llamacpp-embed MODEL.gguf POOLING TEXT...   (POOLING: none mean cls last rank)
// One line per text: {"text":..., "tokens":[...], "embedding":[...]} — the
// pooled vector before any normalization (pooling none: the last token's row;
// rank: the rank head's scores). EMBED_LORA=ADAPTER.gguf (EMBED_LORA_SCALE,
// default 1) applies a LoRA adapter.
#include "llama.h"
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static void quiet(ggml_log_level, const char *, void *) {}

static void json_str(const std::string & s) {
    putchar('"');
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

int main(int argc, char ** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL POOLING TEXT...\n", argv[0]);
        return 2;
    }
    llama_log_set(quiet, nullptr);
    llama_backend_init();
    std::string pool = argv[2];
    enum llama_pooling_type pt;
    if (pool == "none") pt = LLAMA_POOLING_TYPE_NONE;
    else if (pool == "mean") pt = LLAMA_POOLING_TYPE_MEAN;
    else if (pool == "cls") pt = LLAMA_POOLING_TYPE_CLS;
    else if (pool == "last") pt = LLAMA_POOLING_TYPE_LAST;
    else if (pool == "rank") pt = LLAMA_POOLING_TYPE_RANK;
    else { fprintf(stderr, "unknown pooling %s\n", argv[2]); return 2; }
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 512;
    cp.n_batch = 512;
    cp.n_ubatch = 512;
    cp.n_seq_max = 1;
    cp.n_threads = cp.n_threads_batch = 2;
    cp.embeddings = true;
    cp.pooling_type = pt;
    cp.no_perf = true;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "cannot create a context\n"); return 1; }
    if (const char * lp = getenv("EMBED_LORA")) {
        llama_adapter_lora * ad = llama_adapter_lora_init(model, lp);
        if (!ad) { fprintf(stderr, "cannot load the adapter %s\n", lp); return 1; }
        const char * ls = getenv("EMBED_LORA_SCALE");
        if (llama_set_adapter_lora(ctx, ad, ls ? (float) atof(ls) : 1.0f) != 0) { fprintf(stderr, "cannot apply the adapter\n"); return 1; }
    }
    const int n_embd = pt == LLAMA_POOLING_TYPE_RANK ? (int) llama_model_n_cls_out(model) : llama_model_n_embd(model);
    for (int a = 3; a < argc; a++) {
        std::string text = argv[a];
        std::vector<llama_token> toks(text.size() + 16);
        int n = llama_tokenize(vocab, text.data(), (int32_t) text.size(), toks.data(), (int32_t) toks.size(), true, true);
        if (n <= 0) { fprintf(stderr, "tokenize failed\n"); return 1; }
        toks.resize(n);
        llama_memory_clear(llama_get_memory(ctx), true);
        llama_batch b = llama_batch_init(n, 0, 1);
        b.n_tokens = n;
        for (int i = 0; i < n; i++) {
            b.token[i] = toks[i];
            b.pos[i] = i;
            b.n_seq_id[i] = 1;
            b.seq_id[i][0] = 0;
            b.logits[i] = true;
        }
        if (llama_decode(ctx, b) != 0) { fprintf(stderr, "decode failed\n"); return 1; }
        const float * e = pt == LLAMA_POOLING_TYPE_NONE ? llama_get_embeddings_ith(ctx, n - 1) : llama_get_embeddings_seq(ctx, 0);
        if (!e) { fprintf(stderr, "no embeddings\n"); return 1; }
        printf("{\"text\":");
        json_str(text);
        printf(",\"tokens\":[");
        for (int i = 0; i < n; i++) printf(i ? ",%d" : "%d", toks[i]);
        printf("],\"embedding\":[");
        for (int i = 0; i < n_embd; i++) printf(i ? ",%.6g" : "%.6g", e[i]);
        printf("]}\n");
        llama_batch_free(b);
    }
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
