// docvlm/backend/device_layers.hpp — the pieces of layers that a backend holds: norms and MLPs
// uploaded from the CPU's layers (layers/norm.hpp, layers/attention.hpp), and the MLP run as
// backend operations, shared by DeviceDecoder (backend/device_decoder.hpp) and DeviceViT
// (backend/device_vit.hpp).
#pragma once

#include <docvlm/backend/backend.hpp>
#include <docvlm/backend/dense_weights.hpp>
#include <docvlm/core/config.hpp>
#include <docvlm/layers/attention.hpp>
#include <docvlm/layers/norm.hpp>

#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace backend {

/// An RMSNorm (no bias) or a LayerNorm (with bias) on a backend.
struct DeviceNorm {
    DeviceBuffer weight, bias;
    std::size_t dim = 0;
    float eps = 1e-6f;
};

/// plain: fc2(act(fc1 x)); gated: down(act(gate x) · up x).
struct DeviceMlp {
    DeviceLinear first, up, last;  // fc1 or gate, up (gated only), fc2 or down
    Activation act = Activation::none;
    bool gated = false;
    std::size_t hidden() const { return first.out_features(); }
};

DeviceBuffer upload_floats(Backend& be, const std::vector<float>& values);
DeviceNorm upload_norm(Backend& be, const RMSNorm& n);
DeviceNorm upload_norm(Backend& be, const LayerNorm& n);
template <WeightPolicy W>
DeviceLinear upload_linear(Backend& be, const Linear<W>& l) {
    return be.upload_linear(host_linear(l).view);
}
template <WeightPolicy W>
DeviceMlp upload_mlp(Backend& be, const Mlp<W>& m);

/// y [n, out] (stride ldy) = mlp(h [n, in]) (+ residual [n][ldy], which may be y); the hidden
/// activations in g [n, hidden].
void run_mlp(Backend& be, const DeviceMlp& m, const float* h, std::size_t n, float* g, float* y, std::size_t ldy, const float* residual);
/// y = norm(x), rows of n.dim values.
void run_norm(Backend& be, const DeviceNorm& n, const float* x, std::size_t m, std::size_t ldx, float* y, std::size_t ldy);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline DeviceBuffer upload_floats(Backend& be, const std::vector<float>& values) {
    DeviceBuffer b = be.alloc(values.size() * sizeof(float));
    be.upload(b.data(), values.data(), values.size() * sizeof(float));
    return b;
}

inline DeviceNorm upload_norm(Backend& be, const RMSNorm& n) { return {upload_floats(be, n.weight()), {}, n.dim(), n.eps()}; }
inline DeviceNorm upload_norm(Backend& be, const LayerNorm& n) {
    return {upload_floats(be, n.weight()), upload_floats(be, n.bias()), n.dim(), n.eps()};
}

template <WeightPolicy W>
DeviceMlp upload_mlp(Backend& be, const Mlp<W>& m) {
    DeviceMlp d;
    d.first = upload_linear(be, m.first());
    if (m.is_gated()) d.up = upload_linear(be, m.up());
    d.last = upload_linear(be, m.last());
    d.act = m.activation();
    d.gated = m.is_gated();
    return d;
}

inline void run_mlp(Backend& be, const DeviceMlp& m, const float* h, std::size_t n, float* g, float* y, std::size_t ldy,
                    const float* residual) {
    const std::size_t in = m.first.in_features(), hid = m.hidden();
    be.linear(m.first, h, n, in, g, hid, {.act = m.act});
    if (m.gated) be.linear(m.up, h, n, in, g, hid, {.multiplier = g, .ld_multiplier = hid});
    be.linear(m.last, g, n, hid, y, ldy, {.residual = residual, .ld_residual = residual ? ldy : 0});
}

inline void run_norm(Backend& be, const DeviceNorm& n, const float* x, std::size_t m, std::size_t ldx, float* y, std::size_t ldy) {
    if (n.bias) be.layer_norm(x, m, ldx, n.weight.f32(), n.bias.f32(), n.dim, n.eps, y, ldy);
    else be.rms_norm(x, m, ldx, n.weight.f32(), n.dim, n.eps, y, ldy);
}

}  // namespace backend
DOCVLM_NAMESPACE_END
