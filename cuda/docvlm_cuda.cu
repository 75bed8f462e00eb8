// cuda/docvlm_cuda.cu — the CUDA backend: backend::Backend (include/docvlm/backend/backend.hpp)
// on one GPU. Built only with -DDOCVLM_CUDA=ON, as the static library docvlm::cuda; it defines
// make_cuda_backend and cuda_device_count.
//
// Numbers, per operation (the CPU's are in kernels/):
//   linear     cuBLAS. F32 weights: SGEMM in float (no TF32). BF16 weights: bf16 × bf16 products
//              summed in float (cublasGemmEx), x rounded to bf16. Int8 per channel: the int8
//              values as bf16 (exact) and the row scale applied after, in float. Int8 per group:
//              q · scale in float, SGEMM. Then one epilogue kernel: scale, bias, activation,
//              multiplier, residual, in the CPU's order.
//   rms_norm, layer_norm   one block per row, float sums (layer_norm: mean, then the deviations).
//   rope       one thread per rotated pair, the "rotate half" layout.
//   attention  one block per (query, head): keys in chunks of 128, one per thread; an online
//              softmax (running max and sum, the accumulator rescaled per chunk, as flash
//              attention does); GQA by head index; causal, window and anchors masks; head_dim
//              up to 256.
// Every operation is issued on the backend's one stream; upload and download wait for it.
#include <docvlm/backend/backend.hpp>
#include <docvlm/core/error.hpp>

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

DOCVLM_NAMESPACE_BEGIN
namespace backend {
namespace {

constexpr int kThreads = 128;       // threads of the attention and norm blocks
constexpr int kMaxHeadDim = 2 * kThreads;

void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) detail::fail("cuda: ", what, ": ", cudaGetErrorString(e));
}
void check(cublasStatus_t s, const char* what) {
    if (s != CUBLAS_STATUS_SUCCESS) detail::fail("cuda: ", what, ": cuBLAS status ", int(s));
}

// ---- device helpers ----

__device__ float activate(int act, float x) {
    switch (static_cast<Activation>(act)) {
        case Activation::none: return x;
        case Activation::gelu_erf: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
        case Activation::gelu_tanh: return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
        case Activation::quick_gelu: return x / (1.0f + expf(-1.702f * x));
        case Activation::silu: return x / (1.0f + expf(-x));
    }
    return x;
}

// The sum (or max) of v over the block's kThreads threads, returned to every thread. `red` holds
// kThreads / 32 floats of shared memory; the first barrier lets a previous call's readers finish.
template <bool Max>
__device__ float block_reduce(float v, float* red) {
    for (int o = 16; o > 0; o >>= 1) {
        const float w = __shfl_xor_sync(0xffffffffu, v, o);
        v = Max ? fmaxf(v, w) : v + w;
    }
    __syncthreads();
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
    __syncthreads();
    float r = red[0];
    for (int w = 1; w < kThreads / 32; ++w) r = Max ? fmaxf(r, red[w]) : r + red[w];
    return r;
}

// AttentionSpec in signed types for the kernel: the window test subtracts positions.
struct Mask {
    int heads, kv_heads, head_dim;
    float scale;
    bool causal;
    long long q_offset, window, anchors;
};

// kernels::attention_visible's rule.
__device__ bool visible(const Mask& a, long long pos, long long j) {
    if (a.causal && j > pos) return false;
    if (a.window == 0 || j < a.anchors || pos < a.anchors) return true;
    return (pos >= j ? pos - j : j - pos) <= a.window;
}
// Whether any key of [j0, j1) may be visible to `pos` (the same answer for the whole block).
__device__ bool chunk_visible(const Mask& a, long long pos, long long j0, long long j1) {
    if (a.window == 0 || pos < a.anchors || j0 < a.anchors) return true;
    return j0 <= pos + a.window && j1 - 1 >= pos - a.window;
}

// ---- kernels ----

// grid (n_q, heads), kThreads threads; shared: q row [head_dim] | probabilities [kThreads].
__global__ void attention_kernel(const float* q, std::size_t ldq, const float* k, std::size_t ldk, const float* v, std::size_t ldv,
                                 float* out, std::size_t ldo, long long n_kv, Mask a) {
    extern __shared__ float shared[];
    __shared__ float red[kThreads / 32];
    float* qs = shared;
    float* ps = shared + a.head_dim;
    const int hd = a.head_dim, h = blockIdx.y, kvh = h / (a.heads / a.kv_heads);
    const long long i = blockIdx.x, pos = a.q_offset + i;
    const int d0 = threadIdx.x, d1 = threadIdx.x + kThreads;
    for (int d = threadIdx.x; d < hd; d += kThreads) qs[d] = q[i * ldq + std::size_t(h) * hd + d];
    __syncthreads();
    float acc0 = 0.0f, acc1 = 0.0f, m = -INFINITY, l = 0.0f;
    const long long hi = a.causal ? min(n_kv, pos + 1) : n_kv;
    for (long long j0 = 0; j0 < hi; j0 += kThreads) {
        const long long j1 = min(j0 + kThreads, hi);
        if (!chunk_visible(a, pos, j0, j1)) continue;
        const long long j = j0 + threadIdx.x;
        float s = -INFINITY;
        if (j < j1 && visible(a, pos, j)) {
            const float* kr = k + std::size_t(j) * ldk + std::size_t(kvh) * hd;
            float dot = 0.0f;
            for (int d = 0; d < hd; ++d) dot += qs[d] * kr[d];
            s = dot * a.scale;
        }
        const float cmax = block_reduce<true>(s, red);
        if (cmax == -INFINITY) continue;  // every key of the chunk masked (the same for every thread)
        const float m_new = fmaxf(m, cmax);
        const float p = s == -INFINITY ? 0.0f : expf(s - m_new);
        ps[threadIdx.x] = p;
        const float csum = block_reduce<false>(p, red);  // its barriers publish ps
        const float alpha = expf(m - m_new);             // 0 on the first visible chunk
        l = l * alpha + csum;
        acc0 *= alpha, acc1 *= alpha;
        for (long long t = 0; t < j1 - j0; ++t) {
            const float pt = ps[t];
            if (pt == 0.0f) continue;
            const float* vr = v + std::size_t(j0 + t) * ldv + std::size_t(kvh) * hd;
            if (d0 < hd) acc0 += pt * vr[d0];
            if (d1 < hd) acc1 += pt * vr[d1];
        }
        m = m_new;
        __syncthreads();  // ps is read by every thread before the next chunk writes it
    }
    float* o = out + i * ldo + std::size_t(h) * hd;
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    if (d0 < hd) o[d0] = acc0 * inv;
    if (d1 < hd) o[d1] = acc1 * inv;
}

// grid m, kThreads threads: y row = x row / sqrt(mean(x²) + eps) · w (y may be x).
__global__ void rms_norm_kernel(const float* x, std::size_t ldx, const float* w, int dim, float eps, float* y, std::size_t ldy) {
    __shared__ float red[kThreads / 32];
    const float* xr = x + std::size_t(blockIdx.x) * ldx;
    float ss = 0.0f;
    for (int c = threadIdx.x; c < dim; c += kThreads) ss += xr[c] * xr[c];
    ss = block_reduce<false>(ss, red);
    const float inv = 1.0f / sqrtf(ss / float(dim) + eps);
    float* yr = y + std::size_t(blockIdx.x) * ldy;
    for (int c = threadIdx.x; c < dim; c += kThreads) yr[c] = xr[c] * inv * w[c];
}

// grid m, kThreads threads: y row = (x − mean) / sqrt(var + eps) · w + b, the variance from the
// deviations (two passes over the row, as the CPU's reference); y may be x.
__global__ void layer_norm_kernel(const float* x, std::size_t ldx, const float* w, const float* b, int dim, float eps, float* y,
                                  std::size_t ldy) {
    __shared__ float red[kThreads / 32];
    const float* xr = x + std::size_t(blockIdx.x) * ldx;
    float sum = 0.0f;
    for (int c = threadIdx.x; c < dim; c += kThreads) sum += xr[c];
    const float mean = block_reduce<false>(sum, red) / float(dim);
    float var = 0.0f;
    for (int c = threadIdx.x; c < dim; c += kThreads) var += (xr[c] - mean) * (xr[c] - mean);
    const float inv = 1.0f / sqrtf(block_reduce<false>(var, red) / float(dim) + eps);
    float* yr = y + std::size_t(blockIdx.x) * ldy;
    for (int c = threadIdx.x; c < dim; c += kThreads) yr[c] = (xr[c] - mean) * inv * w[c] + b[c];
}

// One thread per (row, head, i < head_dim / 2).
__global__ void rope_kernel(float* x, std::size_t ldx, std::size_t m, int heads, int hd, const float* cos, const float* sin) {
    const std::size_t half = std::size_t(hd) / 2, idx = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= m * heads * half) return;
    const std::size_t r = idx / (heads * half), h = idx / half % heads, i = idx % half;
    float* v = x + r * ldx + h * hd;
    const float* c = cos + r * hd;
    const float* s = sin + r * hd;
    const float a = v[i], b = v[i + half];
    v[i] = a * c[i] - b * s[i];
    v[i + half] = b * c[i + half] + a * s[i + half];
}

// y = act(t · scale + bias) · multiplier + residual; t [m, n] contiguous.
__global__ void epilogue_kernel(const float* t, std::size_t m, std::size_t n, const float* scale, const float* bias, int act,
                                const float* mult, std::size_t ldm, const float* res, std::size_t ldr, float* y, std::size_t ldy) {
    const std::size_t idx = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= m * n) return;
    const std::size_t r = idx / n, c = idx % n;
    float v = t[idx];
    if (scale) v *= scale[c];
    if (bias) v += bias[c];
    v = activate(act, v);
    if (mult) v *= mult[r * ldm + c];
    if (res) v += res[r * ldr + c];
    y[r * ldy + c] = v;
}

__global__ void to_bf16_kernel(const float* x, std::size_t ldx, std::size_t m, std::size_t k, __nv_bfloat16* out) {
    const std::size_t idx = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= m * k) return;
    out[idx] = __float2bfloat16_rn(x[idx / k * ldx + idx % k]);
}

__global__ void gated_add_kernel(float* x, const float* y, std::size_t m, std::size_t dim, const float* gate, std::size_t gate_size) {
    const std::size_t idx = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= m * dim) return;
    x[idx] += gate[gate_size == 1 ? 0 : idx % dim] * y[idx];
}

unsigned blocks_for(std::size_t n, unsigned threads = 256) { return unsigned((n + threads - 1) / threads); }

// ---- the backend ----

class CudaBackend final : public Backend {
public:
    explicit CudaBackend(int device) : device_(device) {
        int count = 0;
        const cudaError_t e = cudaGetDeviceCount(&count);
        if (e != cudaSuccess) detail::fail("cuda: no usable CUDA device (", cudaGetErrorString(e), ")");
        if (device < 0 || device >= count) detail::fail("cuda: device ", device, " does not exist (", count, " found)");
        check(cudaSetDevice(device), "cudaSetDevice");
        cudaDeviceProp prop{};
        check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
        name_ = "cuda:" + std::to_string(device) + " (" + prop.name + ")";
        check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
        check(cublasCreate(&blas_), "cublasCreate");
        check(cublasSetStream(blas_, stream_), "cublasSetStream");
        check(cublasSetMathMode(blas_, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");  // no TF32 for float GEMMs
    }
    ~CudaBackend() override {
        cudaSetDevice(device_);  // the handle and stream are this device's (an error here cannot be reported)
        scratch_bf16_.reset(), scratch_f32_.reset();
        cublasDestroy(blas_);
        cudaStreamDestroy(stream_);
    }

    std::string name() const override { return name_; }

    DeviceBuffer alloc(std::size_t bytes) override {
        use();
        void* p = nullptr;
        const cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
        if (e != cudaSuccess) detail::fail("cuda: cannot allocate ", bytes >> 20, " MiB on ", name_, ": ", cudaGetErrorString(e));
        return DeviceBuffer(this, p, bytes);
    }
    void release(void* p) noexcept override {
        cudaSetDevice(device_);
        cudaStreamSynchronize(stream_);  // no kernel still reads it
        cudaFree(p);
    }
    void upload(void* dst, const void* src, std::size_t bytes) override {
        use();
        check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_), "upload");
        check(cudaStreamSynchronize(stream_), "upload");  // the host memory may go once this returns
    }
    void download(void* dst, const void* src, std::size_t bytes) override {
        use();
        check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_), "download");
        check(cudaStreamSynchronize(stream_), "download");
    }
    void copy_rows(void* dst, std::size_t ldd, const void* src, std::size_t lds, std::size_t row_bytes, std::size_t rows) override {
        use();
        check(cudaMemcpy2DAsync(dst, ldd, src, lds, row_bytes, rows, cudaMemcpyDeviceToDevice, stream_), "copy_rows");
    }
    void synchronize() override {
        use();
        check(cudaStreamSynchronize(stream_), "synchronize");
    }

    DeviceLinear upload_linear(const DenseLinear& w) override;
    void linear(const DeviceLinear& w, const float* x, std::size_t m, std::size_t ldx, float* y, std::size_t ldy,
                const LinearEpilogue& ep) override;

    void rms_norm(const float* x, std::size_t m, std::size_t ldx, const float* weight, std::size_t dim, float eps, float* y,
                  std::size_t ldy) override {
        if (m == 0) return;
        use();
        rms_norm_kernel<<<unsigned(m), kThreads, 0, stream_>>>(x, ldx, weight, int(dim), eps, y, ldy);
        check(cudaGetLastError(), "rms_norm");
    }
    void layer_norm(const float* x, std::size_t m, std::size_t ldx, const float* weight, const float* bias, std::size_t dim, float eps,
                    float* y, std::size_t ldy) override {
        if (m == 0) return;
        use();
        layer_norm_kernel<<<unsigned(m), kThreads, 0, stream_>>>(x, ldx, weight, bias, int(dim), eps, y, ldy);
        check(cudaGetLastError(), "layer_norm");
    }
    void rope(float* x, std::size_t m, std::size_t ldx, std::size_t heads, std::size_t head_dim, const float* cos, const float* sin) override {
        const std::size_t n = m * heads * (head_dim / 2);
        if (n == 0) return;
        use();
        rope_kernel<<<blocks_for(n), 256, 0, stream_>>>(x, ldx, m, int(heads), int(head_dim), cos, sin);
        check(cudaGetLastError(), "rope");
    }
    void attention(const float* q, std::size_t ldq, const float* k, std::size_t ldk, const float* v, std::size_t ldv, float* out,
                   std::size_t ldo, std::size_t n_q, std::size_t n_kv, const AttentionSpec& s) override {
        if (s.head_dim == 0 || s.head_dim > std::size_t(kMaxHeadDim) || s.heads == 0 || s.kv_heads == 0 || s.heads % s.kv_heads)
            detail::fail("cuda attention: ", s.heads, " heads over ", s.kv_heads, " kv heads of ", s.head_dim, " (head_dim 1 to ", kMaxHeadDim, ")");
        if (n_kv == 0) detail::fail("cuda attention: no keys");
        if (n_q == 0) return;
        use();
        const Mask mask{int(s.heads), int(s.kv_heads), int(s.head_dim), s.scale, s.causal, (long long)s.q_offset, (long long)s.window,
                        (long long)s.anchors};
        const dim3 grid(unsigned(n_q), unsigned(s.heads));
        const std::size_t shared = (s.head_dim + kThreads) * sizeof(float);
        attention_kernel<<<grid, kThreads, shared, stream_>>>(q, ldq, k, ldk, v, ldv, out, ldo, (long long)n_kv, mask);
        check(cudaGetLastError(), "attention");
    }
    void gated_add(float* x, const float* y, std::size_t m, std::size_t dim, const float* gate, std::size_t gate_size) override {
        if (m * dim == 0) return;
        use();
        gated_add_kernel<<<blocks_for(m * dim), 256, 0, stream_>>>(x, y, m, dim, gate, gate_size);
        check(cudaGetLastError(), "gated_add");
    }

private:
    // f32: SGEMM on float weights; bf16: GemmEx on bf16 weights (with a row scale for int8 values).
    struct Weights final : DeviceLinear::Impl {
        bool bf16 = false;
        DeviceBuffer w, scale, bias;
    };

    int device_ = 0;
    std::string name_;
    cudaStream_t stream_ = nullptr;
    cublasHandle_t blas_ = nullptr;
    std::mutex scratch_mutex_;  // linear's scratch, shared by the callers of this backend
    DeviceBuffer scratch_bf16_, scratch_f32_;

    void use() const { check(cudaSetDevice(device_), "cudaSetDevice"); }
    DeviceBuffer uploaded(const void* src, std::size_t bytes) {
        DeviceBuffer b = alloc(bytes);
        upload(b.data(), src, bytes);
        return b;
    }
    static void grow(Backend& be, DeviceBuffer& b, std::size_t bytes) {
        if (b.bytes() < bytes) b = be.alloc(bytes);
    }
};

DeviceLinear CudaBackend::upload_linear(const DenseLinear& d) {
    auto w = std::make_unique<Weights>();
    const std::size_t n = d.out * d.in;
    switch (d.form) {
        case DenseLinear::Form::f32: w->w = uploaded(d.f32, n * sizeof(float)); break;
        case DenseLinear::Form::bf16:
            w->bf16 = true;
            w->w = uploaded(d.bf16, n * sizeof(std::uint16_t));
            break;
        case DenseLinear::Form::int8:
            if (d.group == 0) {  // q exactly in bf16 (|q| <= 127 needs 7 bits), the row's scale after the GEMM
                std::vector<std::uint16_t> q16(n);
                for (std::size_t i = 0; i < n; ++i) {
                    const float f = float(d.q[i]);
                    std::uint32_t bits;
                    std::memcpy(&bits, &f, 4);
                    q16[i] = std::uint16_t(bits >> 16);  // the low half of a small integer's float is zero
                }
                w->bf16 = true;
                w->w = uploaded(q16.data(), n * sizeof(std::uint16_t));
                w->scale = uploaded(d.scales, d.out * sizeof(float));
            } else {  // a scale per group of K: w = q · scale in float
                const std::size_t groups = (d.in + d.group - 1) / d.group;
                std::vector<float> f(n);
                for (std::size_t r = 0; r < d.out; ++r)
                    for (std::size_t c = 0; c < d.in; ++c) f[r * d.in + c] = float(d.q[r * d.in + c]) * d.scales[r * groups + c / d.group];
                w->w = uploaded(f.data(), n * sizeof(float));
            }
            break;
    }
    if (d.bias) w->bias = uploaded(d.bias, d.out * sizeof(float));
    return DeviceLinear(d.out, d.in, std::move(w));
}

void CudaBackend::linear(const DeviceLinear& l, const float* x, std::size_t m, std::size_t ldx, float* y, std::size_t ldy,
                         const LinearEpilogue& ep) {
    if (m == 0 || l.out_features() == 0) return;
    use();
    const auto& w = static_cast<const Weights&>(*l.impl());
    const std::size_t n = l.out_features(), k = l.in_features();
    std::lock_guard lock(scratch_mutex_);
    grow(*this, scratch_f32_, m * n * sizeof(float));
    float* t = scratch_f32_.f32();
    const float one = 1.0f, zero = 0.0f;
    // Row-major t [m, n] = x [m, k] · Wᵀ is column-major tᵀ [n, m] = W (k × n, transposed) · xᵀ.
    if (!w.bf16) {
        check(cublasSgemm(blas_, CUBLAS_OP_T, CUBLAS_OP_N, int(n), int(m), int(k), &one, w.w.f32(), int(k), x, int(ldx), &zero, t, int(n)),
              "cublasSgemm");
    } else {
        grow(*this, scratch_bf16_, m * k * sizeof(__nv_bfloat16));
        auto* xb = static_cast<__nv_bfloat16*>(scratch_bf16_.data());
        to_bf16_kernel<<<blocks_for(m * k), 256, 0, stream_>>>(x, ldx, m, k, xb);
        check(cudaGetLastError(), "to_bf16");
        check(cublasGemmEx(blas_, CUBLAS_OP_T, CUBLAS_OP_N, int(n), int(m), int(k), &one, w.w.data(), CUDA_R_16BF, int(k), xb, CUDA_R_16BF,
                           int(k), &zero, t, CUDA_R_32F, int(n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
              "cublasGemmEx (bf16)");
    }
    epilogue_kernel<<<blocks_for(m * n), 256, 0, stream_>>>(t, m, n, w.scale.f32(), w.bias.f32(), int(ep.act), ep.multiplier,
                                                            ep.ld_multiplier, ep.residual, ep.ld_residual, y, ldy);
    check(cudaGetLastError(), "linear epilogue");
}

}  // namespace

std::shared_ptr<Backend> make_cuda_backend(int device) { return std::make_shared<CudaBackend>(device); }

int cuda_device_count() noexcept {
    int count = 0;
    return cudaGetDeviceCount(&count) == cudaSuccess ? count : 0;
}

}  // namespace backend
DOCVLM_NAMESPACE_END
