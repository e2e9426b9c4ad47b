// Sampler fixtures: runs llama.cpp's own samplers (llama_sampler_* from the
// reference build) on fixed logits and prints, for each case, the candidates
// left with their logits and probabilities, as JSON. internal/sample's
// TestChainMatchesLlamaCpp replays the cases through kvserve's chain.
// Build and run: scripts/sampler-fixtures.sh (writes testdata/llamacpp/samplers.json).
#include "llama.h"
#include "llama-sampling.h"

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

struct Stage {
    std::string type;
    double a = 0, b = 0, c = 0;
    int n = 0, m = 0;
};

struct Case {
    std::string name;
    std::vector<Stage> stages;
    std::vector<int> history;
    std::vector<std::vector<int>> breakers;
    int ctx = 4096;
};

static std::vector<float> make_logits(int n) {
    std::vector<float> l(n);
    unsigned s = 12345;
    for (int i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        double u = ((s >> 8) & 0xFFFF) / 65536.0;
        l[i] = (float) (6.0 * u * u - 1.5) ;
    }
    l[7] = l[3];   // a tie
    l[11] = 5.2f;  // a favourite
    l[12] = 4.9f;
    return l;
}

static llama_sampler * make(const Stage & st, const Case & c) {
    if (st.type == "top_k") return llama_sampler_init_top_k(st.n);
    if (st.type == "top_p") return llama_sampler_init_top_p((float) st.a, st.n);
    if (st.type == "min_p") return llama_sampler_init_min_p((float) st.a, st.n);
    if (st.type == "typical") return llama_sampler_init_typical((float) st.a, st.n);
    if (st.type == "temp") return llama_sampler_init_temp_ext((float) st.a, (float) st.b, (float) st.c);
    if (st.type == "top_n_sigma") return llama_sampler_init_top_n_sigma((float) st.a);
    if (st.type == "xtc") return llama_sampler_init_xtc((float) st.a, (float) st.b, st.n, 1);
    if (st.type == "penalties") return llama_sampler_init_penalties(st.n, (float) st.a, (float) st.b, (float) st.c);
    if (st.type == "dry") return llama_sampler_init_dry_testing(c.ctx, (float) st.a, (float) st.b, st.n, st.m, c.breakers);
    if (st.type == "bias") {
        std::vector<llama_logit_bias> lb = {{11, -100.0f}, {5, 2.5f}, {40, -INFINITY}};
        return llama_sampler_init_logit_bias(64, (int) lb.size(), lb.data());
    }
    fprintf(stderr, "unknown stage %s\n", st.type.c_str());
    exit(1);
}

// num prints a float for JSON (-inf as -1e38, which JSON can hold).
static double num(float x) { return std::isinf(x) ? (x < 0 ? -1e38 : 1e38) : x; }

static void stage_json(const Stage & s) {
    printf("{\"type\":\"%s\",\"a\":%.9g,\"b\":%.9g,\"c\":%.9g,\"n\":%d,\"m\":%d}", s.type.c_str(), s.a, s.b, s.c, s.n, s.m);
}

int main() {
    const int n = 64;
    std::vector<float> logits = make_logits(n);
    auto S = [](const char * t, double a = 0, double b = 0, double c = 0, int n = 0, int m = 0) {
        Stage s; s.type = t; s.a = a; s.b = b; s.c = c; s.n = n; s.m = m; return s;
    };
    std::vector<int> hist = {11, 12, 3, 5, 11, 12, 3, 9, 20, 11, 12, 3};
    std::vector<Case> cases = {
        {"top_k 5", {S("top_k", 0, 0, 0, 5)}},
        {"top_k 0", {S("top_k", 0, 0, 0, 0)}},
        {"top_p 0.9", {S("top_p", 0.9)}},
        {"top_p 0.5 min_keep 4", {S("top_p", 0.5, 0, 0, 4)}},
        {"min_p 0.05 unsorted", {S("min_p", 0.05)}},
        {"min_p 0.3 after top_k", {S("top_k", 0, 0, 0, 20), S("min_p", 0.3)}},
        {"min_p 0.99 min_keep 3", {S("min_p", 0.99, 0, 0, 3)}},
        {"typical 0.5", {S("typical", 0.5)}},
        {"typical 0.9 min_keep 5", {S("typical", 0.9, 0, 0, 5)}},
        {"temp 0.7", {S("temp", 0.7, 0, 1)}},
        {"temp 0 (greedy)", {S("temp", 0, 0, 1)}},
        {"dynatemp 1.0±0.5 exp 1", {S("temp", 1.0, 0.5, 1)}},
        {"dynatemp 0.8±0.6 exp 2", {S("top_k", 0, 0, 0, 30), S("temp", 0.8, 0.6, 2)}},
        {"top_n_sigma 1", {S("top_n_sigma", 1.0)}},
        {"top_n_sigma 2.5", {S("top_n_sigma", 2.5)}},
        {"xtc p=1 t=0.1", {S("xtc", 1.0, 0.1, 0, 1)}},
        {"xtc p=1 t=0.01 min_keep 60", {S("xtc", 1.0, 0.01, 0, 60)}},
        {"logit bias", {S("bias")}},
        {"penalties repeat 1.3 freq 0.2 pres 0.5", {S("penalties", 1.3, 0.2, 0.5, 64)}, hist},
        {"penalties last 4", {S("penalties", 1.5, 0, 0, 4)}, hist},
        {"dry 0.8 base 1.75 allowed 2", {S("dry", 0.8, 1.75, 0, 2, -1)}, hist, {{20}}},
        {"dry no breakers", {S("dry", 0.8, 1.75, 0, 2, -1)}, hist, {{63}}},
        {"dry two-token breaker", {S("dry", 1.0, 2.0, 0, 1, 8)}, hist, {{9, 20}}},
        {"default chain", {S("penalties", 1.1, 0.1, 0.1, 64), S("dry", 0.8, 1.75, 0, 2, -1), S("top_n_sigma", -1),
                            S("top_k", 0, 0, 0, 40), S("typical", 1.0), S("top_p", 0.95), S("min_p", 0.05),
                            S("xtc", 0, 0.1, 0, 0), S("temp", 0.8, 0, 1)}, hist, {{20}}},
        {"everything", {S("bias"), S("penalties", 1.2, 0.0, 0.3, 64), S("dry", 0.5, 1.5, 0, 2, -1), S("top_n_sigma", 3.0),
                         S("top_k", 0, 0, 0, 50), S("typical", 0.95), S("top_p", 0.9), S("min_p", 0.02),
                         S("xtc", 1.0, 0.05, 0, 1), S("temp", 0.9, 0.3, 1.5)}, hist, {{20}}},
    };
    printf("{\"logits\":[");
    for (int i = 0; i < n; i++) printf("%s%.9g", i ? "," : "", logits[i]);
    printf("],\"cases\":[\n");
    for (size_t ci = 0; ci < cases.size(); ci++) {
        const Case & c = cases[ci];
        std::vector<llama_token_data> data(n);
        for (int i = 0; i < n; i++) data[i] = {i, logits[i], 0.0f};
        llama_token_data_array arr = {data.data(), data.size(), -1, false};
        printf("%s{\"name\":\"%s\",\"ctx\":%d,\"history\":[", ci ? ",\n" : "", c.name.c_str(), c.ctx);
        for (size_t i = 0; i < c.history.size(); i++) printf("%s%d", i ? "," : "", c.history[i]);
        printf("],\"breakers\":[");
        for (size_t i = 0; i < c.breakers.size(); i++) {
            printf("%s[", i ? "," : "");
            for (size_t j = 0; j < c.breakers[i].size(); j++) printf("%s%d", j ? "," : "", c.breakers[i][j]);
            printf("]");
        }
        printf("],\"stages\":[");
        for (size_t si = 0; si < c.stages.size(); si++) {
            if (si) printf(",");
            stage_json(c.stages[si]);
            llama_sampler * s = make(c.stages[si], c);
            for (int t : c.history) llama_sampler_accept(s, t);
            llama_sampler_apply(s, &arr);
            llama_sampler_free(s);
        }
        printf("],\"out\":[");
        for (size_t i = 0; i < arr.size; i++) {
            printf("%s[%d,%.9g,%.9g]", i ? "," : "", arr.data[i].id, num(arr.data[i].logit), num(arr.data[i].p));
        }
        printf("]}");
    }
    printf("\n]}\n");
    return 0;
}
