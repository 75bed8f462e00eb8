// Tutorial 01 — open a checkpoint and see what it holds, without loading it into memory.
//
//   build/bin/01_inspect_checkpoint [CHECKPOINT_DIR]
//
// Without an argument it opens docvlm's embedded model (models/docvlm-small); a Hugging Face
// Qwen2-VL-family folder (MinerU2.5, the tiny test checkpoints) works the same way. docvlm maps
// safetensors files read-only and validates every header entry; tensors are then viewed in place
// (zero-copy) or converted to float on demand.
#include <docvlm/docvlm.hpp>
#include <docvlm/model/qwen2vl.hpp>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>

int main(int argc, char** argv) try {
    const std::string dir = argc > 1 ? argv[1] : docvlm::default_model_dir();

    // 1. The architecture, from config.json. Its model_type says which family the folder holds.
    std::ifstream cfg(dir + "/config.json");
    const std::string type = cfg ? nlohmann::json::parse(cfg, nullptr, false).value("model_type", std::string()) : "";
    std::string example;  // a tensor to print a few values of
    if (type == "docvlm_small") {
        const auto d = docvlm::GatedVlmDims::from_config_json(dir + "/config.json");
        std::printf("docvlm-small: vision %zu blocks, width %zu, window ±%zu with %zu anchors; decoder %zu layers, width %zu, "
                    "cross-attention every %zu, vocab %zu\n",
                    d.v_layers, d.v_dim, d.window, d.anchors, d.layers, d.dim, d.xattn_every, d.vocab);
        example = "text.0.q.weight";
    } else {
        const auto d = docvlm::Qwen2VLDims::from_config_json(dir + "/config.json");
        std::printf("Qwen2-VL family: vision %zu blocks, width %zu, %zu heads; decoder %zu layers, width %zu, vocab %zu\n", d.v_depth,
                    d.v_dim, d.v_heads, d.layers, d.hidden, d.vocab);
        example = "model.norm.weight";
    }

    // 2. The tensors: name, dtype, shape. Checkpoint::open accepts a folder, a file or an index.json.
    const auto ckpt = docvlm::io::Checkpoint::open(dir);
    std::size_t values = 0;
    for (const std::string& name : ckpt.names()) {
        const auto& t = ckpt.info(name);
        values += t.numel();
        const bool first_layer = name.find("layers.0.") != std::string::npos || name.find("blocks.0.") != std::string::npos ||
                                 name.rfind("text.0.", 0) == 0 || name.rfind("vision.0.", 0) == 0;
        if (first_layer) {
            std::printf("  %-52s %-4s [", name.c_str(), std::string(docvlm::dtype_name(t.dtype)).c_str());
            for (std::size_t i = 0; i < t.shape.size(); ++i) std::printf(i ? ", %zu" : "%zu", t.shape[i]);
            std::printf("]\n");
        }
    }
    std::printf("%zu tensors, %zu values\n", ckpt.names().size(), values);

    // 3. One tensor's values, converted to float (int8 weights stay int8 here; their per-row scales
    //    are the tensor NAME_scale beside them).
    const auto t = ckpt.to_f32(example);
    std::printf("%s[0..2] = %.4f %.4f %.4f\n", example.c_str(), double(t.data()[0]), double(t.data()[1]), double(t.data()[2]));
    return 0;
} catch (const docvlm::Error& e) {
    std::fprintf(stderr, "01_inspect_checkpoint: %s\n", e.what());
    return 1;
}
