// docvlm/fwd.hpp — forward declarations of docvlm's main types, for headers that only name them
// (a member pointer, a function parameter) and should not pull in the whole library.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/policies.hpp>  // the configuration vocabulary (policies, WeightPolicy): types only

DOCVLM_NAMESPACE_BEGIN

// layers and the model parts every family shares
template <WeightPolicy W> class Linear;
class LayerNorm;
class RMSNorm;
class Embedding;
struct RopeTable;
struct Workspace;
template <WeightPolicy W> struct DecoderBlock;
template <WeightPolicy W> struct Decoder;
struct GenerationOptions;
struct GenerationStats;
class Sampler;
struct BatchRequest;
template <class Family> class TokenConcatContext;

// the families (Model<Config> picks one by Config::fusion)
template <class Config> class Qwen2VLModel;
template <class Config> class LlavaModel;
template <class Config> class QwenVLModel;
template <class Config> class GatedVlmModel;

namespace io {
struct Image;
class Checkpoint;
class Tokenizer;
class SentencePieceTokenizer;
}  // namespace io

namespace pipeline {
struct Block;
struct Document;
}  // namespace pipeline

DOCVLM_NAMESPACE_END
