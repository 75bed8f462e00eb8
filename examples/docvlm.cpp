// docvlm — the command-line tool.
//
//   docvlm info CHECKPOINT          what a checkpoint holds: architecture, sizes, dtypes, parameters
//   docvlm golden-check DIR         compare docvlm with Hugging Face reference tensors in DIR
//   docvlm --help | COMMAND --help
#include <docvlm/docvlm.hpp>
#include <docvlm/model/golden_check.hpp>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace {

const char* usage = R"(docvlm — document vision-language models on the CPU

usage: docvlm COMMAND [ARGS]

commands:
  info CHECKPOINT      architecture, sizes, dtypes, parameter count and file sizes of a checkpoint
                       (a Hugging Face folder, a .safetensors file or a sharded index.json)
  golden-check DIR     run docvlm on a folder of Hugging Face reference tensors (config.json,
                       model.safetensors, input.png, input_ids.npy, *.npy) and compare every one;
                       exits 0 only if all match

run 'docvlm COMMAND --help' for details and examples.
)";

const char* info_help = R"(usage: docvlm info CHECKPOINT

Lists what a checkpoint holds without loading it into memory: the model family and sizes from
config.json (when the folder has one), tensor count and parameters per top-level prefix, the
dtypes used, and the size of each safetensors file.

example:
  docvlm info ~/models/MinerU2.5-2509-1.2B
)";

const char* golden_help = R"(usage: docvlm golden-check DIR

Loads DIR with the dynamic Qwen2-VL preset (float32) and checks, against the reference tensors
present: preprocessing (pixel_values, image_grid_thw), M-RoPE positions, every traced vision and
decoder tensor, every vision block and decoder layer, logits, and greedy generation with the KV
cache (generated_ids, generated_step_logits). Prints the worst error of each tensor.
Tolerances: pixel values 1e-5 absolute, tensors 1e-4 of the tensor's largest magnitude,
ids and positions exact. Exit status 0 only if every check passes.

example:
  docvlm golden-check tests/data/golden/qwen2vl-tiny-a
)";

int cmd_info(const std::string& path) {
    namespace fs = std::filesystem;
    const auto ckpt = docvlm::io::Checkpoint::open(path);
    const fs::path dir = fs::is_directory(path) ? fs::path(path) : fs::path(path).parent_path();
    if (fs::exists(dir / "config.json")) {
        try {
            const auto d = docvlm::Qwen2VLDims::from_config_json((dir / "config.json").string());
            std::printf("architecture  Qwen2-VL family (vision tower + Qwen2 decoder, token concatenation)\n");
            std::printf("vision        %zu blocks x %zu wide, %zu heads, MLP %zu, patch %zu, merge %zux%zu\n", d.v_depth, d.v_dim,
                        d.v_heads, d.v_mlp, d.patch, d.merge, d.merge);
            std::printf("decoder       %zu layers x %zu wide, %zu/%zu heads (head_dim %zu), MLP %zu, vocab %zu, M-RoPE %d/%d/%d, %s\n",
                        d.layers, d.hidden, d.heads, d.kv_heads, d.head_dim, d.mlp, d.vocab, d.mrope_section[0], d.mrope_section[1],
                        d.mrope_section[2], d.tie_embeddings ? "tied lm_head" : "separate lm_head");
        } catch (const docvlm::Error& e) {
            std::printf("config.json   not a Qwen2-VL-family config (%s)\n", e.what());
        }
    }
    std::map<std::string, std::size_t> params, dtypes;
    std::size_t total = 0;
    for (const auto& name : ckpt.names()) {
        const auto& t = ckpt.info(name);
        params[name.substr(0, name.find('.'))] += t.numel();
        dtypes[std::string(docvlm::dtype_name(t.dtype))] += t.numel();
        total += t.numel();
    }
    std::printf("tensors       %zu, %.3f M parameters\n", ckpt.names().size(), double(total) / 1e6);
    for (const auto& [p, n] : params) std::printf("  %-24s %12zu parameters\n", p.c_str(), n);
    for (const auto& [t, n] : dtypes) std::printf("  dtype %-18s %12zu values\n", t.c_str(), n);
    for (const auto& shard : ckpt.shards())
        std::printf("file          %s (%.1f MB)\n", shard.source().c_str(), double(fs::file_size(shard.source())) / 1e6);
    return 0;
}

int cmd_golden_check(const std::string& dir) {
    std::printf("%-34s %12s %12s  %s\n", "check", "max |error|", "ref scale", "result");
    const bool ok = docvlm::golden_check(dir, [](const docvlm::GoldenResult& r) {
        if (r.scale > 0 || r.max_abs_error > 0)
            std::printf("%-34s %12.3e %12.3e  %s %s\n", r.name.c_str(), r.max_abs_error, r.scale, r.passed ? "ok" : "FAIL", r.note.c_str());
        else
            std::printf("%-34s %12s %12s  %s %s\n", r.name.c_str(), "", "", r.passed ? "ok" : "FAIL", r.note.c_str());
        std::fflush(stdout);
    });
    std::printf("%s\n", ok ? "golden-check: all checks passed" : "golden-check: MISMATCH");
    return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<std::string> args(argv + 1, argv + argc);
    auto wants_help = [&](std::size_t from) {
        for (std::size_t i = from; i < args.size(); ++i)
            if (args[i] == "--help" || args[i] == "-h") return true;
        return false;
    };
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        std::fputs(usage, args.empty() ? stderr : stdout);
        return args.empty() ? 2 : 0;
    }
    const std::string& cmd = args[0];
    try {
        if (cmd == "info") {
            if (wants_help(1)) return std::fputs(info_help, stdout), 0;
            if (args.size() != 2) return std::fputs(info_help, stderr), 2;
            return cmd_info(args[1]);
        }
        if (cmd == "golden-check") {
            if (wants_help(1)) return std::fputs(golden_help, stdout), 0;
            if (args.size() != 2) return std::fputs(golden_help, stderr), 2;
            return cmd_golden_check(args[1]);
        }
        std::fprintf(stderr, "docvlm: unknown command '%s'\n\n%s", cmd.c_str(), usage);
        return 2;
    } catch (const docvlm::Error& e) {
        std::fprintf(stderr, "docvlm %s: %s\n", cmd.c_str(), e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "docvlm %s: unexpected error: %s\n", cmd.c_str(), e.what());
        return 1;
    }
}
