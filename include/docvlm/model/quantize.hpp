// docvlm/model/quantize.hpp — writes an int8 checkpoint in docvlm's packed layout (still
// safetensors), which int8 models then load without quantising or repacking anything.
//
// Every linear weight (2-D "*.weight" other than the token embedding, and the 5-D patch
// embedding) becomes NAME.qweight / .qscale / .qcolsum / .qinfo (see layers/linear.hpp); every
// other tensor is copied as it is. A tied LM head is written as a packed "lm_head.weight" too.
// The JSON and tokenizer files of the folder are copied alongside.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/io/safetensors.hpp>
#include <docvlm/kernels/qgemm.hpp>
#include <docvlm/layers/linear.hpp>
#include <docvlm/model/weights.hpp>

#include <filesystem>
#include <functional>
#include <string>

DOCVLM_NAMESPACE_BEGIN

struct QuantizeReport {
    std::size_t quantized = 0, copied = 0;
    std::size_t bytes_in = 0, bytes_out = 0;
};

/// Quantises the checkpoint in `in_dir` into `out_dir` (created; an existing model.safetensors is
/// replaced atomically). group: 0 per output channel, or 32 / 64 / 128. progress(done, total).
QuantizeReport quantize_checkpoint(const std::string& in_dir, const std::string& out_dir, std::size_t group = 0,
                                   const std::function<void(std::size_t, std::size_t)>& progress = {});

// ------------------------------------------------------------------------------------------------

// Packed files use the full int8 range on every CPU, so that one file computes the same
// everywhere (AVX2 without VNNI runs such weights on its exact int16 kernel).
inline constexpr int packed_qmax = 127;

inline QuantizeReport quantize_checkpoint(const std::string& in_dir, const std::string& out_dir, std::size_t group,
                                          const std::function<void(std::size_t, std::size_t)>& progress) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::exists(out_dir) && fs::equivalent(in_dir, out_dir, ec)) detail::fail("quantize: the output folder must differ from the input");
    const io::Checkpoint ck = io::Checkpoint::open(in_dir);
    for (const auto& name : ck.names())
        if (name.ends_with(".qweight")) detail::fail(in_dir, ": already quantised by docvlm (tensor '", name, "')");
    fs::create_directories(out_dir);
    io::SafeTensorsWriter w;
    w.set_metadata("format", "pt");
    w.set_metadata("docvlm", "int8-packed-1");
    w.set_metadata("docvlm_group", std::to_string(group));
    QuantizeReport r;
    const auto names = ck.names();
    std::size_t done = 0;
    for (const auto& name : names) {
        const auto& info = ck.info(name);
        r.bytes_in += info.nbytes;
        const bool linear = name.ends_with(".weight") && name.find("embed_tokens") == std::string::npos && is_floating(info.dtype) &&
                            (info.shape.size() == 2 || (info.shape.size() == 5 && name.find("patch_embed") != std::string::npos));
        if (linear) {
            std::size_t k = 1;
            for (std::size_t i = 1; i < info.shape.size(); ++i) k *= info.shape[i];
            const Array<float> f = ck.to_f32(name);
            check_finite(ck.source(), name, f.data(), f.size());
            write_packed(w, name, kernels::quantize_weight(f.data(), info.shape[0], k, group, packed_qmax));
            ++r.quantized;
        } else {
            w.add(name, info.dtype, info.shape, ck.bytes(name));
            ++r.copied;
        }
        if (progress) progress(++done, names.size());
    }
    // A tied head (no lm_head.weight) gets its own packed copy so loading never quantises.
    if (!ck.contains("lm_head.weight")) {
        for (const char* emb : {"model.embed_tokens.weight", "model.language_model.embed_tokens.weight"})
            if (ck.contains(emb)) {
                const auto& info = ck.info(emb);
                const Array<float> f = ck.to_f32(emb);
                check_finite(ck.source(), emb, f.data(), f.size());
                write_packed(w, "lm_head.weight", kernels::quantize_weight(f.data(), info.shape[0], info.shape[1], group, packed_qmax));
                ++r.quantized;
                break;
            }
    }
    const std::string out_file = (fs::path(out_dir) / "model.safetensors").string();
    w.write(out_file);
    r.bytes_out = fs::file_size(out_file);
    const fs::path src = fs::is_directory(in_dir) ? fs::path(in_dir) : fs::path(in_dir).parent_path();
    for (const char* f : {"config.json", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json",
                          "special_tokens_map.json", "chat_template.json", "vocab.json", "merges.txt"})
        if (fs::exists(src / f)) fs::copy_file(src / f, fs::path(out_dir) / f, fs::copy_options::overwrite_existing);
    return r;
}

DOCVLM_NAMESPACE_END
