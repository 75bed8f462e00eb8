// Tutorial 01 — open a checkpoint and see what it holds, without loading it into memory.
//
//   build/bin/01_inspect_checkpoint [CHECKPOINT_DIR]
//
// docvlm maps safetensors files read-only and validates every header entry; tensors are then
// viewed in place (zero-copy) or converted to float on demand.
#include <docvlm/docvlm.hpp>
#include <docvlm/model/qwen2vl.hpp>

#include <cstdio>
#include <filesystem>

int main(int argc, char** argv) try {
    const std::string dir = argc > 1 ? argv[1] : DOCVLM_GOLDEN_DIR;

    // 1. The architecture, from config.json (every size a Qwen2-VL-family model needs).
    const auto dims = docvlm::Qwen2VLDims::from_config_json(dir + "/config.json");
    std::printf("vision: %zu blocks, width %zu, %zu heads; decoder: %zu layers, width %zu, vocab %zu\n", dims.v_depth, dims.v_dim,
                dims.v_heads, dims.layers, dims.hidden, dims.vocab);

    // 2. The tensors: name, dtype, shape. Checkpoint::open accepts a folder, a file or an index.json.
    const auto ckpt = docvlm::io::Checkpoint::open(dir);
    std::size_t params = 0;
    for (const std::string& name : ckpt.names()) {
        const auto& t = ckpt.info(name);
        params += t.numel();
        if (name.find("layers.0.") != std::string::npos || name.find("blocks.0.") != std::string::npos) {
            std::printf("  %-52s %-4s [", name.c_str(), std::string(docvlm::dtype_name(t.dtype)).c_str());
            for (std::size_t i = 0; i < t.shape.size(); ++i) std::printf(i ? ", %zu" : "%zu", t.shape[i]);
            std::printf("]\n");
        }
    }
    std::printf("%zu tensors, %zu parameters\n", ckpt.names().size(), params);

    // 3. One tensor's values: a zero-copy view when the dtype is known, else a float copy.
    const auto norm = ckpt.to_f32("model.norm.weight");
    std::printf("model.norm.weight[0..3] = %.4f %.4f %.4f\n", double(norm(0)), double(norm(1)), double(norm(2)));
    return 0;
} catch (const docvlm::Error& e) {
    std::fprintf(stderr, "01_inspect_checkpoint: %s\n", e.what());
    return 1;
}
