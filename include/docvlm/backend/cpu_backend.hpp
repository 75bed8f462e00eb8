// docvlm/backend/cpu_backend.hpp — the Backend of the library's own CPU kernels, on host memory,
// and make_backend("cpu" | "cuda" | "cuda:N"), the one place that turns a device name into a
// backend.
//
// A linear layer uploaded here is packed again from its dense form (kernels::pack_f32, pack_bf16,
// pack_weight), so it computes exactly what the Linear<W> it came from computes.
#pragma once

#include <docvlm/backend/backend.hpp>
#include <docvlm/core/config.hpp>
#include <docvlm/core/dtype.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/thread_pool.hpp>
#include <docvlm/kernels/attention.hpp>
#include <docvlm/kernels/gemm.hpp>
#include <docvlm/kernels/qgemm.hpp>
#include <docvlm/kernels/rowwise.hpp>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <variant>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace backend {

class CpuBackend final : public Backend {
public:
    std::string name() const override { return "cpu"; }

    DeviceBuffer alloc(std::size_t bytes) override {
        void* p = ::operator new(bytes ? bytes : 1, std::align_val_t{64});
        return DeviceBuffer(this, p, bytes);
    }
    void release(void* p) noexcept override { ::operator delete(p, std::align_val_t{64}); }
    void upload(void* dst, const void* src, std::size_t bytes) override {
        if (bytes) std::memcpy(dst, src, bytes);
    }
    void download(void* dst, const void* src, std::size_t bytes) override {
        if (bytes) std::memcpy(dst, src, bytes);
    }
    void copy_rows(void* dst, std::size_t ldd, const void* src, std::size_t lds, std::size_t row_bytes, std::size_t rows) override {
        for (std::size_t r = 0; r < rows; ++r)
            std::memcpy(static_cast<char*>(dst) + r * ldd, static_cast<const char*>(src) + r * lds, row_bytes);
    }
    void synchronize() override {}

    DeviceLinear upload_linear(const DenseLinear& w) override;
    void linear(const DeviceLinear& w, const float* x, std::size_t m, std::size_t ldx, float* y, std::size_t ldy,
                const LinearEpilogue& ep) override;
    void rms_norm(const float* x, std::size_t m, std::size_t ldx, const float* weight, std::size_t dim, float eps, float* y,
                  std::size_t ldy) override {
        parallel_for(m, [&](std::size_t r0, std::size_t r1) {
            for (std::size_t r = r0; r < r1; ++r) kernels::rms_norm(x + r * ldx, weight, y + r * ldy, dim, eps);
        }, 16);
    }
    void layer_norm(const float* x, std::size_t m, std::size_t ldx, const float* weight, const float* bias, std::size_t dim, float eps,
                    float* y, std::size_t ldy) override {
        parallel_for(m, [&](std::size_t r0, std::size_t r1) {
            for (std::size_t r = r0; r < r1; ++r) kernels::layer_norm(x + r * ldx, weight, bias, y + r * ldy, dim, eps);
        }, 16);
    }
    void rope(float* x, std::size_t m, std::size_t ldx, std::size_t heads, std::size_t head_dim, const float* cos, const float* sin) override {
        parallel_for(m, [&](std::size_t r0, std::size_t r1) {
            for (std::size_t r = r0; r < r1; ++r) kernels::rope(x + r * ldx, heads, head_dim, cos + r * head_dim, sin + r * head_dim);
        }, 64);
    }
    void attention(const float* q, std::size_t ldq, const float* k, std::size_t ldk, const float* v, std::size_t ldv, float* out,
                   std::size_t ldo, std::size_t n_q, std::size_t n_kv, const AttentionSpec& s) override {
        const kernels::AttentionParams p{.heads = s.heads, .kv_heads = s.kv_heads, .head_dim = s.head_dim, .scale = s.scale,
                                         .causal = s.causal, .q_offset = s.q_offset, .window = s.window, .anchors = s.anchors};
        kernels::attention(q, ldq, k, ldk, v, ldv, out, ldo, n_q, n_kv, p);
    }
    void gated_add(float* x, const float* y, std::size_t m, std::size_t dim, const float* gate, std::size_t gate_size) override {
        for (std::size_t r = 0; r < m; ++r)
            for (std::size_t c = 0; c < dim; ++c) x[r * dim + c] += gate[gate_size == 1 ? 0 : c] * y[r * dim + c];
    }

private:
    struct Weights final : DeviceLinear::Impl {
        std::variant<kernels::PackedF32, kernels::PackedBF16, kernels::QuantizedWeight> w;
        std::vector<float> bias;
    };
};

/// The backend a device name asks for: "cpu", "cuda" (device 0) or "cuda:N". CUDA needs a build
/// with -DDOCVLM_CUDA=ON; otherwise, and for unknown names, a clear error.
std::shared_ptr<Backend> make_backend(const std::string& device);

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

inline DeviceLinear CpuBackend::upload_linear(const DenseLinear& d) {
    auto w = std::make_unique<Weights>();
    switch (d.form) {
        case DenseLinear::Form::f32: w->w = kernels::pack_f32(d.f32, d.out, d.in); break;
        case DenseLinear::Form::bf16: w->w = kernels::pack_bf16(reinterpret_cast<const bf16*>(d.bf16), d.out, d.in); break;
        case DenseLinear::Form::int8: {
            kernels::QuantizedWeight q = kernels::pack_weight(d.q, d.scales, d.out, d.in, d.group);
            q.qmax = d.qmax;
            w->w = std::move(q);
            break;
        }
    }
    if (d.bias) w->bias.assign(d.bias, d.bias + d.out);
    return DeviceLinear(d.out, d.in, std::move(w));
}

inline void CpuBackend::linear(const DeviceLinear& l, const float* x, std::size_t m, std::size_t ldx, float* y, std::size_t ldy,
                               const LinearEpilogue& e) {
    const auto& w = static_cast<const Weights&>(*l.impl());
    const kernels::Epilogue ep{.bias = w.bias.empty() ? nullptr : w.bias.data(), .residual = e.residual, .ld_residual = e.ld_residual,
                               .act = e.act, .multiplier = e.multiplier, .ld_multiplier = e.ld_multiplier};
    if (const auto* f = std::get_if<kernels::PackedF32>(&w.w)) kernels::sgemm(x, m, ldx, *f, y, ldy, ep);
    else if (const auto* b = std::get_if<kernels::PackedBF16>(&w.w)) kernels::bgemm(x, m, ldx, *b, y, ldy, ep);
    else kernels::qgemm(x, m, ldx, std::get<kernels::QuantizedWeight>(w.w), y, ldy, ep);
}

inline std::shared_ptr<Backend> make_backend(const std::string& device) {
    if (device == "cpu") return std::make_shared<CpuBackend>();
    if (device == "cuda" || device.rfind("cuda:", 0) == 0) {
        int index = 0;
        if (device.size() > 5) {
            char* end = nullptr;
            const long v = std::strtol(device.c_str() + 5, &end, 10);
            if (*end || v < 0 || v > 1024) detail::fail("--device ", device, ": the device number is not a number from 0");
            index = int(v);
        }
#ifdef DOCVLM_WITH_CUDA
        return make_cuda_backend(index);
#else
        (void)index;
        detail::fail("--device ", device, ": this docvlm was built without CUDA (configure with -DDOCVLM_CUDA=ON)");
#endif
    }
    detail::fail("--device ", device, ": unknown device (cpu, cuda or cuda:N)");
}

}  // namespace backend
DOCVLM_NAMESPACE_END
