// Must not compile: 12 vision heads do not divide a width of 1280.
#include <docvlm/model/model.hpp>
#include <docvlm/presets/qwen2vl.hpp>
using Bad = docvlm::presets::Qwen2VLFamily<32, 1280, 12, 5120, 24, 896, 14, 2, 4864, 151936, 8, 12, 12, docvlm::F32>;
docvlm::Model<Bad>* unused = nullptr;
static_assert(sizeof(docvlm::Model<Bad>) > 0);
