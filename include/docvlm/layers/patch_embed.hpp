// docvlm/layers/patch_embed.hpp — PatchEmbed<W>: an image's P×P patches through one linear map,
// the Conv2d (Qwen2-VL: Conv3d over two frames) whose stride equals its kernel:
//
//   token[p] = W · flatten(patch p) (+ b)       flatten: [channel][row in patch][column in patch]
//
// Patches are numbered row by row (CLIP, Qwen-VL) or column by column (docvlm-small's towers,
// whose tokens run down the columns); Qwen2-VL's processor hands over patches it flattened itself.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/layers/linear.hpp>

#include <vector>

DOCVLM_NAMESPACE_BEGIN

/// The order of an image's patches among the tokens.
enum class PatchOrder { rows, columns };

template <WeightPolicy W>
class PatchEmbed {
public:
    PatchEmbed() = default;
    /// proj [dim, channels · patch²] (for flattened patches: any input width).
    PatchEmbed(Linear<W> proj, std::size_t channels, std::size_t patch) : proj_(std::move(proj)), channels_(channels), patch_(patch) {}

    /// tokens [n, dim] (row stride ldo) of patches already flattened [n, in_features()].
    void forward(const float* patches, std::size_t n, float* out, std::size_t ldo) const {
        proj_.forward(patches, n, proj_.in_features(), out, ldo);
    }
    /// tokens [(height / P) · (width / P), dim] (row stride ldo) of an image [channels][height][width]
    /// whose sides are multiples of P, in `order`.
    void forward(const float* image, std::size_t height, std::size_t width, PatchOrder order, float* out, std::size_t ldo) const;

    std::size_t dim() const { return proj_.out_features(); }
    std::size_t in_features() const { return proj_.in_features(); }
    std::size_t patch() const { return patch_; }

private:
    Linear<W> proj_;
    std::size_t channels_ = 0, patch_ = 0;
};

template <WeightPolicy W>
void PatchEmbed<W>::forward(const float* image, std::size_t height, std::size_t width, PatchOrder order, float* out, std::size_t ldo) const {
    const std::size_t P = patch_, in = channels_ * P * P;
    if (P == 0 || height % P || width % P) detail::fail("PatchEmbed: a ", width, "x", height, " image is not made of ", P, "-pixel patches");
    if (in != proj_.in_features()) detail::fail("PatchEmbed: ", channels_, " channels of ", P, "² pixels, the projection takes ", proj_.in_features());
    const std::size_t rows = height / P, cols = width / P;
    std::vector<float> patches(rows * cols * in);
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c) {
            float* dst = patches.data() + (order == PatchOrder::rows ? r * cols + c : c * rows + r) * in;
            for (std::size_t ch = 0; ch < channels_; ++ch)
                for (std::size_t y = 0; y < P; ++y) {
                    const float* src = image + (ch * height + r * P + y) * width + c * P;
                    dst = std::copy_n(src, P, dst);
                }
        }
    forward(patches.data(), rows * cols, out, ldo);
}

DOCVLM_NAMESPACE_END
