// docvlm/core/policies.hpp — the policy vocabulary of compile-time configuration, shared by the
// layers (which are templates over these policies) and the models (whose Configs name them):
//   attention  FullAttention | CausalAttention | WindowAnchor<window, anchors>
//   position   NoPosition | Rope1D | Rope2D | MRope<sections...>
//   fusion     TokenConcat | MlpProjector | Resampler<queries> | GatedCrossAttention<every>
//   weights    F32 | BF16 | Int8PerChannel | Int8PerGroup<32 | 64 | 128>
// and `dynamic`, a size read from config.json at load time. Types only.
#pragma once

#include <docvlm/core/config.hpp>

#include <array>
#include <concepts>
#include <type_traits>

DOCVLM_NAMESPACE_BEGIN

/// A size known only when the checkpoint's config.json is read.
inline constexpr int dynamic = -1;

// ---- attention masks ----
struct FullAttention {};
struct CausalAttention {};
/// Each token sees the tokens within `Window` positions of itself; the first `Anchors` tokens see
/// and are seen by all (memory O(n · (window + anchors))).
template <int Window, int Anchors>
struct WindowAnchor {
    static_assert(Window >= 1, "WindowAnchor: the window must be at least 1 token");
    static_assert(Anchors >= 0, "WindowAnchor: the number of anchor tokens cannot be negative");
    static constexpr int window = Window, anchors = Anchors;
};

// ---- positions ----
struct NoPosition {};
struct Rope1D {};
struct Rope2D {};
/// Qwen2-VL multimodal rope: head_dim / 2 frequencies split into (t, h, w) sections.
template <int... Sections>
struct MRope {
    static_assert(sizeof...(Sections) == 3, "MRope: give exactly three sections (t, h, w)");
    static_assert(((Sections > 0 || Sections == -1) && ...), "MRope: every section must be positive (or docvlm::dynamic)");
    static constexpr std::array<int, 3> sections{Sections...};
    /// head_dim / 2, or dynamic (-1) when a section is dynamic.
    static constexpr int half_dim = ((Sections == -1) || ...) ? -1 : (Sections + ...);
};

// ---- fusion of vision into text ----
/// Image embeddings, merged 2x2 by the patch merger, replace the image-pad tokens (Qwen2-VL, MinerU2.5).
struct TokenConcat {};
/// Image embeddings, through a 2-layer MLP projector, replace the <image> tokens (LLaVA-1.5).
struct MlpProjector {};
/// A cross-attention resampler pools the image into `Queries` tokens (learned queries with 2D
/// sin-cos positions), which replace the image span of the prompt (Qwen-VL).
template <int Queries>
struct Resampler {
    static_assert(Queries > 0 || Queries == -1, "Resampler: the number of queries must be positive (or docvlm::dynamic)");
    static constexpr int queries = Queries;
};
/// A gated cross-attention block before every `Every`-th decoder layer (Flamingo style).
template <int Every>
struct GatedCrossAttention {
    static_assert(Every >= 1, "GatedCrossAttention: a block every 0 layers makes no sense");
    static constexpr int every = Every;
};

// ---- weights ----
struct F32 {};
struct BF16 {};
struct Int8PerChannel {};
template <int Group>
struct Int8PerGroup {
    static_assert(Group == 32 || Group == 64 || Group == 128, "Int8PerGroup: the group size must be 32, 64 or 128");
    static constexpr int group = Group;
};

namespace detail {
template <class T> struct is_mrope : std::false_type {};
template <int... S> struct is_mrope<MRope<S...>> : std::true_type {};
template <class T> struct is_window_anchor : std::false_type {};
template <int W, int A> struct is_window_anchor<WindowAnchor<W, A>> : std::true_type {};
template <class T> struct is_int8_group : std::false_type {};
template <int G> struct is_int8_group<Int8PerGroup<G>> : std::true_type {};
template <class T> struct is_resampler : std::false_type {};
template <int Q> struct is_resampler<Resampler<Q>> : std::true_type {};
template <class T> struct is_gated_xattn : std::false_type {};
template <int E> struct is_gated_xattn<GatedCrossAttention<E>> : std::true_type {};

}  // namespace detail

template <class T>
concept AttentionPolicy = std::same_as<T, FullAttention> || std::same_as<T, CausalAttention> || detail::is_window_anchor<T>::value;
template <class T>
concept PositionPolicy = std::same_as<T, NoPosition> || std::same_as<T, Rope1D> || std::same_as<T, Rope2D> || detail::is_mrope<T>::value;
template <class T>
concept FusionPolicy = std::same_as<T, TokenConcat> || std::same_as<T, MlpProjector> || detail::is_resampler<T>::value ||
                      detail::is_gated_xattn<T>::value;
/// Whether a weight policy stores int8 weights.
template <class W>
inline constexpr bool int8_weights = std::same_as<W, Int8PerChannel> || detail::is_int8_group<W>::value;

template <class T>
concept WeightPolicy = std::same_as<T, F32> || std::same_as<T, BF16> || std::same_as<T, Int8PerChannel> || detail::is_int8_group<T>::value;

DOCVLM_NAMESPACE_END
