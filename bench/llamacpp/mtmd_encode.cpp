// mtmd_encode: the time llama.cpp's mtmd takes to encode one W x H image with the files of
// make_gguf.py (bench/llamacpp/README.md). Built against a llama.cpp build beside docvlm.
#include "llama.h"
#include "mtmd.h"
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
int main(int argc, char** argv) {
    if (argc < 6) { std::fprintf(stderr, "usage: enc TEXT.gguf MMPROJ.gguf W H THREADS [REPS]\n"); return 1; }
    const int W = std::atoi(argv[3]), H = std::atoi(argv[4]), threads = std::atoi(argv[5]), reps = argc > 6 ? std::atoi(argv[6]) : 2;
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    llama_model* model = llama_model_load_from_file(argv[1], mp);
    mtmd_context_params p = mtmd_context_params_default();
    p.n_threads = threads; p.print_timings = false; p.warmup = false; p.use_gpu = false;
    p.image_min_tokens = 1; p.image_max_tokens = 16384;
    mtmd_context* ctx = mtmd_init_from_file(argv[2], model, p);
    if (!ctx) return 2;
    std::vector<unsigned char> rgb(size_t(W) * H * 3);
    for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = (unsigned char)(200 + (i * 2654435761u >> 24) % 56);
    mtmd_bitmap* bmp = mtmd_bitmap_init(W, H, rgb.data());
    mtmd_input_chunks* chunks = mtmd_input_chunks_init();
    mtmd_input_text text{mtmd_default_marker(), std::strlen(mtmd_default_marker()), false, false};
    const mtmd_bitmap* bmps[1] = {bmp};
    if (mtmd_tokenize(ctx, chunks, &text, bmps, 1) != 0) { std::fprintf(stderr, "tokenize failed\n"); return 3; }
    for (size_t i = 0; i < mtmd_input_chunks_size(chunks); ++i) {
        const mtmd_input_chunk* c = mtmd_input_chunks_get(chunks, i);
        if (mtmd_input_chunk_get_type(c) != MTMD_INPUT_CHUNK_TYPE_IMAGE) continue;
        std::printf("image chunk: %zu tokens\n", mtmd_input_chunk_get_n_tokens(c));
        for (int r = 0; r < reps; ++r) {
            const auto t0 = std::chrono::steady_clock::now();
            if (mtmd_encode_chunk(ctx, c) != 0) { std::fprintf(stderr, "encode failed\n"); return 4; }
            std::printf("encode %dx%d: %.3f s\n", W, H, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
    }
    return 0;
}
