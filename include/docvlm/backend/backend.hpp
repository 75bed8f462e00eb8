// docvlm/backend/backend.hpp — the dispatch interface: where a model's layers run.
//
// A Backend owns memory on its device and runs the operations a decoder is made of, on row-major
// float matrices in that memory:
//   linear      y [m, out] = act(x [m, in] · Wᵀ + bias) · multiplier + residual   (weights uploaded once)
//   rms_norm    y [m, dim] = x / sqrt(mean(x²) + eps) · weight
//   layer_norm  y [m, dim] = (x − mean) / sqrt(var + eps) · weight + bias
//   rope        x [m, heads · head_dim] rotated in place ("rotate half"; cos/sin [m, head_dim])
//   attention   out [n_q, heads · hd] = softmax(q kᵀ · scale, masked) v   (GQA, causal, window + anchors)
//   gated_add   x [m, dim] += gate ⊙ y   (gate: one value or one per channel)
//   copy        rows between buffers (the KV cache append of batched decoding)
// Two implementations: CpuBackend (backend/cpu_backend.hpp: the library's own kernels, host memory)
// and the CUDA backend (cuda/docvlm_cuda.cu, built only with -DDOCVLM_CUDA=ON, which defines
// DOCVLM_WITH_CUDA for every target that links it). Pointers passed to the operations are the
// backend's own (DeviceBuffer::data); upload and download move bytes between host and device.
//
// This header is light on purpose: the CUDA translation unit includes it and nothing else of the
// library.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/kernels/activation_kind.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

DOCVLM_NAMESPACE_BEGIN
namespace backend {

class Backend;

/// Memory on a backend's device; freed by its backend. Move-only.
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    DeviceBuffer(Backend* owner, void* p, std::size_t bytes) : owner_(owner), p_(p), bytes_(bytes) {}
    DeviceBuffer(DeviceBuffer&& o) noexcept : owner_(std::exchange(o.owner_, nullptr)), p_(std::exchange(o.p_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
        if (this != &o) {
            reset();
            owner_ = std::exchange(o.owner_, nullptr), p_ = std::exchange(o.p_, nullptr), bytes_ = std::exchange(o.bytes_, 0);
        }
        return *this;
    }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    ~DeviceBuffer() { reset(); }

    float* f32() const { return static_cast<float*>(p_); }
    void* data() const { return p_; }
    std::size_t bytes() const { return bytes_; }
    explicit operator bool() const { return p_ != nullptr; }
    void reset();

private:
    Backend* owner_ = nullptr;
    void* p_ = nullptr;
    std::size_t bytes_ = 0;
};

/// A linear layer's weights on the host, unpacked (backend/dense_weights.hpp makes them from a
/// Linear<W>): W [out, in] row-major in one of three forms.
struct DenseLinear {
    enum class Form { f32, bf16, int8 };
    std::size_t out = 0, in = 0;
    Form form = Form::f32;
    const float* f32 = nullptr;          ///< f32: [out, in]
    const std::uint16_t* bf16 = nullptr; ///< bf16: [out, in], the bits of bfloat16 values
    const std::int8_t* q = nullptr;      ///< int8: [out, in], w ≈ q · scale
    const float* scales = nullptr;       ///< int8: [out][groups]
    std::size_t group = 0;               ///< int8: 0 one scale per row, else values of K per scale
    int qmax = 127;                      ///< int8: |q| <= qmax
    const float* bias = nullptr;         ///< [out] or null
};

/// A linear layer uploaded to a backend (Backend::upload_linear); what it holds is the backend's.
class DeviceLinear {
public:
    struct Impl {
        virtual ~Impl() = default;
    };
    DeviceLinear() = default;
    DeviceLinear(std::size_t out, std::size_t in, std::unique_ptr<Impl> impl) : out_(out), in_(in), impl_(std::move(impl)) {}
    std::size_t out_features() const { return out_; }
    std::size_t in_features() const { return in_; }
    Impl* impl() const { return impl_.get(); }

private:
    std::size_t out_ = 0, in_ = 0;
    std::unique_ptr<Impl> impl_;
};

/// What linear() does after x · Wᵀ (+ the layer's bias): y = act(·) · multiplier + residual.
/// multiplier and residual ([m][ld]) may alias y.
struct LinearEpilogue {
    Activation act = Activation::none;
    const float* multiplier = nullptr;
    std::size_t ld_multiplier = 0;
    const float* residual = nullptr;
    std::size_t ld_residual = 0;
};

/// The attention of one call: query i sits at position q_offset + i; key j is visible when
/// (not causal or j <= position) and (no window, or j or the query is an anchor (< anchors), or
/// |position − j| <= window) — kernels::attention_visible's rule.
struct AttentionSpec {
    std::size_t heads = 1, kv_heads = 1, head_dim = 64;
    float scale = 0.125f;
    bool causal = false;
    std::size_t q_offset = 0, window = 0, anchors = 0;
};

class Backend {
public:
    virtual ~Backend() = default;
    /// "cpu", or "cuda:<device> (<name>)".
    virtual std::string name() const = 0;

    // ---- memory ----
    /// `bytes` of device memory (a clear error when the device has no room).
    virtual DeviceBuffer alloc(std::size_t bytes) = 0;
    /// Frees what alloc returned (DeviceBuffer calls it).
    virtual void release(void* p) noexcept = 0;
    virtual void upload(void* dst, const void* src, std::size_t bytes) = 0;
    virtual void download(void* dst, const void* src, std::size_t bytes) = 0;
    /// rows × row_bytes from src (row stride lds bytes) to dst (stride ldd bytes), both on the device.
    virtual void copy_rows(void* dst, std::size_t ldd, const void* src, std::size_t lds, std::size_t row_bytes, std::size_t rows) = 0;
    /// Waits until every operation issued so far has finished (download waits by itself).
    virtual void synchronize() = 0;

    // ---- weights ----
    virtual DeviceLinear upload_linear(const DenseLinear& w) = 0;

    // ---- operations (pointers: this backend's memory) ----
    /// y [m, out] (stride ldy) = epilogue(x [m, in] (stride ldx) · Wᵀ + bias).
    virtual void linear(const DeviceLinear& w, const float* x, std::size_t m, std::size_t ldx, float* y, std::size_t ldy,
                        const LinearEpilogue& ep = {}) = 0;
    /// y [m, dim] = rms_norm(x [m, dim]) · weight [dim]; y may be x.
    virtual void rms_norm(const float* x, std::size_t m, std::size_t ldx, const float* weight, std::size_t dim, float eps, float* y,
                          std::size_t ldy) = 0;
    /// y [m, dim] = layer_norm(x [m, dim]) · weight + bias; y may be x.
    virtual void layer_norm(const float* x, std::size_t m, std::size_t ldx, const float* weight, const float* bias, std::size_t dim,
                            float eps, float* y, std::size_t ldy) = 0;
    /// Rotates the heads of each row of x [m] (stride ldx) with row r of cos / sin [m, head_dim].
    virtual void rope(float* x, std::size_t m, std::size_t ldx, std::size_t heads, std::size_t head_dim, const float* cos,
                      const float* sin) = 0;
    /// out [n_q, heads · hd] (stride ldo) from q [n_q] (ldq), k and v [n_kv] (ldk, ldv; kv_heads · hd values).
    virtual void attention(const float* q, std::size_t ldq, const float* k, std::size_t ldk, const float* v, std::size_t ldv, float* out,
                           std::size_t ldo, std::size_t n_q, std::size_t n_kv, const AttentionSpec& spec) = 0;
    /// x [m, dim] += gate ⊙ y [m, dim]; gate has `gate_size` values (1 or dim).
    virtual void gated_add(float* x, const float* y, std::size_t m, std::size_t dim, const float* gate, std::size_t gate_size) = 0;
};

#ifdef DOCVLM_WITH_CUDA
/// The CUDA backend on device `device` (cuda/docvlm_cuda.cu); fails with the CUDA runtime's
/// reason when there is no such device.
std::shared_ptr<Backend> make_cuda_backend(int device);
/// How many CUDA devices the runtime sees (0 without a driver or a GPU).
int cuda_device_count() noexcept;
#endif

inline void DeviceBuffer::reset() {
    if (p_ && owner_) owner_->release(p_);
    owner_ = nullptr, p_ = nullptr, bytes_ = 0;
}

}  // namespace backend
DOCVLM_NAMESPACE_END
