// docvlm/model/config.hpp — compile-time model configuration: the checks of a Config.
//
// A model is a type: a Config struct of static constexpr sizes and policy type aliases (the
// vocabulary of core/policies.hpp). Any size may be `docvlm::dynamic`, read from config.json at
// load time (as Eigen's Dynamic). Configs that make no sense fail to compile with a readable
// static_assert (see check_vision_config / check_text_config below and tests/compile_fail/).
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/policies.hpp>

#include <cstddef>
#include <string>

DOCVLM_NAMESPACE_BEGIN

namespace detail {
constexpr bool divides_or_dynamic(int a, int b) { return a == dynamic || b == dynamic || (b > 0 && a % b == 0); }
constexpr bool positive_or_dynamic(int a) { return a == dynamic || a > 0; }
}  // namespace detail

/// Compile-time checks of a vision config (depth, dim, heads, mlp, patch; attention, position).
template <class V>
consteval bool check_vision_config() {
    static_assert(detail::positive_or_dynamic(V::depth) && detail::positive_or_dynamic(V::dim) &&
                      detail::positive_or_dynamic(V::heads) && detail::positive_or_dynamic(V::mlp) &&
                      detail::positive_or_dynamic(V::patch),
                  "vision config: every size must be positive or docvlm::dynamic");
    static_assert(detail::divides_or_dynamic(V::dim, V::heads), "vision config: heads must divide dim");
    static_assert(AttentionPolicy<typename V::attention>, "vision config: attention must be an attention policy");
    static_assert(PositionPolicy<typename V::position>, "vision config: position must be a position policy");
    return true;
}

/// Compile-time checks of a text (decoder) config.
template <class T>
consteval bool check_text_config() {
    static_assert(detail::positive_or_dynamic(T::layers) && detail::positive_or_dynamic(T::hidden) &&
                      detail::positive_or_dynamic(T::heads) && detail::positive_or_dynamic(T::kv_heads) &&
                      detail::positive_or_dynamic(T::mlp) && detail::positive_or_dynamic(T::vocab),
                  "text config: every size must be positive or docvlm::dynamic");
    static_assert(detail::divides_or_dynamic(T::hidden, T::heads), "text config: heads must divide hidden");
    static_assert(detail::divides_or_dynamic(T::heads, T::kv_heads), "text config: kv_heads must divide heads");
    static_assert(PositionPolicy<typename T::position>, "text config: position must be a position policy");
    if constexpr (detail::is_mrope<typename T::position>::value) {
        static_assert(T::hidden == dynamic || T::heads == dynamic || T::position::half_dim == dynamic ||
                          T::position::half_dim * 2 == T::hidden / T::heads,
                      "text config: MRope sections must sum to head_dim / 2");
    }
    return true;
}

namespace detail {
// A static size in a Config must equal the checkpoint's; `dynamic` accepts anything.
inline void check_size(int want, std::size_t got, const char* what, const std::string& path) {
    if (want != dynamic && std::size_t(want) != got)
        fail(path, ": ", what, " is ", got, " but the model type fixes it at ", want, " (use a preset with docvlm::dynamic sizes)");
}
}  // namespace detail

/// Compile-time checks of a whole model config.
template <class C>
consteval bool check_model_config() {
    static_assert(check_vision_config<typename C::vision>());
    static_assert(check_text_config<typename C::text>());
    static_assert(FusionPolicy<typename C::fusion>, "model config: fusion must be TokenConcat, MlpProjector, Resampler<q> or GatedCrossAttention<k>");
    static_assert(WeightPolicy<typename C::weights>, "model config: weights must be F32, BF16, Int8PerChannel or Int8PerGroup<g>");
    return true;
}

DOCVLM_NAMESPACE_END
