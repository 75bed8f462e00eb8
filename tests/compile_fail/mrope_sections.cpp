// Must not compile: M-RoPE sections 16/24/24 sum to 64, but head_dim / 2 is 896 / 14 / 2 = 32.
#include <docvlm/model/model.hpp>
#include <docvlm/presets/qwen2vl.hpp>
using Bad = docvlm::presets::Qwen2VLFamily<32, 1280, 16, 5120, 24, 896, 14, 2, 4864, 151936, 16, 24, 24, docvlm::F32>;
static_assert(sizeof(docvlm::Model<Bad>) > 0);
