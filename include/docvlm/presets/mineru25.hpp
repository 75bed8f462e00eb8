// docvlm/presets/mineru25.hpp — MinerU2.5-2509-1.2B with every size fixed at compile time.
//
//   presets::MinerU25<W>  vision 32 × 1280, 16 heads, MLP 5120; decoder 24 × 896, 14/2 heads,
//                         MLP 4864, vocab 151936, M-RoPE sections 8/12/12 (the published sizes of
//                         the 2509 checkpoint; loading checks config.json and every tensor's shape
//                         against them). W = F32 | BF16 | Int8PerChannel | Int8PerGroup<g>.
// The same family with sizes read from config.json: presets::Qwen2VL<W> (presets/qwen2vl.hpp).
#pragma once

#include <docvlm/presets/qwen2vl.hpp>

DOCVLM_NAMESPACE_BEGIN
namespace presets {

template <WeightPolicy W = Int8PerChannel>
using MinerU25 = Qwen2VLFamily<32, 1280, 16, 5120, 24, 896, 14, 2, 4864, 151936, 8, 12, 12, W>;

}  // namespace presets
DOCVLM_NAMESPACE_END
