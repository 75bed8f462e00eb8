// Must not compile: 4 key/value heads do not divide 14 query heads.
#include <docvlm/model/model.hpp>
#include <docvlm/presets/qwen2vl.hpp>
using Bad = docvlm::presets::Qwen2VLFamily<32, 1280, 16, 5120, 24, 896, 14, 4, 4864, 151936, 8, 12, 12, docvlm::F32>;
static_assert(sizeof(docvlm::Model<Bad>) > 0);
