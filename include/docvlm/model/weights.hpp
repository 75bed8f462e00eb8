// docvlm/model/weights.hpp — layers from checkpoint tensors: the one place where io (safetensors)
// meets layers. Every reader checks the tensor's shape and that its values are finite, and names
// the tensor in its error.
//
//   load_tensor      a float tensor of a given shape
//   load_linear<W>   a Linear from `weight` [out, in] (+ `bias`): float / bf16 / f16 files, int8 with
//                    per-row `<weight>_scale` (docvlm-small's QAT export), or packed int8 written
//                    by `docvlm quantize` (PackedNames; read without repacking)
//   load_layer_norm, load_rms_norm
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/tensor.hpp>
#include <docvlm/core/thread_pool.hpp>
#include <docvlm/io/safetensors.hpp>
#include <docvlm/kernels/qgemm.hpp>
#include <docvlm/layers/linear.hpp>
#include <docvlm/layers/norm.hpp>
#include <docvlm/model/config.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

/// Fails, naming the tensor, when `p[0..n)` holds NaN or ±inf: a corrupt or diverged checkpoint
/// would otherwise compute garbage (and int8 quantisation would hide a NaN in finite values).
inline void check_finite(const std::string& source, const std::string& name, const float* p, std::size_t n) {
    // exponent bits all ones: inf or NaN (an OR over the bits, which vectorises; split over the
    // pool, since the MinerU2.5-sized checkpoint holds ~1.2 G values)
    std::atomic<bool> any{false};
    parallel_for(n, [&](std::size_t b, std::size_t e) {
        std::uint32_t hit = 0;
        for (std::size_t i = b; i < e; ++i) {
            std::uint32_t u;
            std::memcpy(&u, p + i, 4);
            hit |= std::uint32_t((u & 0x7f800000u) == 0x7f800000u);
        }
        if (hit) any = true;
    }, std::size_t(1) << 16);
    if (!any) return;
    std::size_t bad = 0;
    for (std::size_t i = 0; i < n; ++i) bad += !(std::fabs(p[i]) <= std::numeric_limits<float>::max());
    std::size_t first = 0;
    while (std::fabs(p[first]) <= std::numeric_limits<float>::max()) ++first;
    detail::fail(source, ": tensor '", name, "' holds ", bad, " values that are not finite numbers (NaN or inf; the first at index ",
                 first, "): the checkpoint is corrupt");
}

/// Reads tensor `name` as float and checks its shape and that every value is finite; the error
/// names the tensor (and both shapes).
inline Array<float> load_tensor(const io::Checkpoint& ck, const std::string& name, const std::vector<std::size_t>& shape) {
    if (!ck.contains(name)) detail::fail(ck.source(), ": missing tensor '", name, "'");
    const auto& info = ck.info(name);
    if (info.shape != shape) {
        std::string want, got;
        for (std::size_t d : shape) want += (want.empty() ? "" : ", ") + std::to_string(d);
        for (std::size_t d : info.shape) got += (got.empty() ? "" : ", ") + std::to_string(d);
        detail::fail(ck.source(), ": tensor '", name, "' has shape [", got, "], the model expects [", want, "]");
    }
    if (!is_floating(info.dtype)) detail::fail(ck.source(), ": tensor '", name, "' is ", dtype_name(info.dtype), ", expected a float type");
    Array<float> a = ck.to_f32(name);
    check_finite(ck.source(), name, a.data(), a.size());
    return a;
}

/// Tensor names of a packed int8 weight `name` in a checkpoint written by `docvlm quantize`.
struct PackedNames {
    std::string data, scales, col_sums, info;
    explicit PackedNames(const std::string& name)
        : data(name + ".qweight"), scales(name + ".qscale"), col_sums(name + ".qcolsum"), info(name + ".qinfo") {}
};

/// Adds the packed form of `w` under `name` to a writer (int8 data, scales, column sums and
/// [n, k, k_padded, group] as I64).
inline void write_packed(io::SafeTensorsWriter& out, const std::string& name, const kernels::QuantizedWeight& w) {
    const PackedNames t(name);
    out.add(t.data, {w.data.size()}, w.data.data());
    out.add(t.scales, {w.scales.size()}, w.scales.data());
    out.add(t.col_sums, {w.col_sums.size()}, w.col_sums.data());
    const std::int64_t info[4] = {std::int64_t(w.n), std::int64_t(w.k), std::int64_t(w.k_padded), std::int64_t(w.group)};
    out.add(t.info, {4}, info);
}

/// Reads a packed int8 weight written by write_packed, checking every size against [out, in].
inline kernels::QuantizedWeight read_packed(const io::Checkpoint& ck, const std::string& name, std::size_t out, std::size_t in) {
    const PackedNames t(name);
    for (const std::string* n : {&t.data, &t.scales, &t.col_sums, &t.info})
        if (!ck.contains(*n)) detail::fail(ck.source(), ": packed weight '", name, "' lacks tensor '", *n, "'");
    const Array<float> info = ck.to_f32(t.info);
    if (info.size() != 4) detail::fail(ck.source(), ": '", t.info, "' must hold 4 values");
    kernels::QuantizedWeight w;
    w.n = std::size_t(info(0)), w.k = std::size_t(info(1)), w.k_padded = std::size_t(info(2)), w.group = std::size_t(info(3));
    if (w.n != out || w.k != in)
        detail::fail(ck.source(), ": packed weight '", name, "' is ", w.n, "x", w.k, ", the model expects ", out, "x", in);
    if ((w.group != 0 && w.group != 32 && w.group != 64 && w.group != 128) || w.k_padded < w.k || w.k_padded % (w.group ? w.group : 4) ||
        w.k_padded > w.k + 128)
        detail::fail(ck.source(), ": packed weight '", name, "' has an invalid layout (k_padded ", w.k_padded, ", group ", w.group, ")");
    const std::size_t cols = w.panels() * kernels::qpanel;
    auto copy = [&](const std::string& tn, DType dt, std::size_t count, auto& buf) {
        const auto& ti = ck.info(tn);
        if (ti.dtype != dt || ti.numel() != count)
            detail::fail(ck.source(), ": '", tn, "' is ", dtype_name(ti.dtype), " with ", ti.numel(), " values, expected ", dtype_name(dt), " with ", count);
        using E = std::remove_reference_t<decltype(buf[0])>;
        buf = AlignedBuffer<E>(count);
        std::memcpy(buf.data(), ck.bytes(tn).data(), count * sizeof(E));  // bytes may be unaligned in the file
    };
    copy(t.data, DType::i8, cols * w.k_padded, w.data);
    copy(t.scales, DType::f32, cols * w.groups(), w.scales);
    copy(t.col_sums, DType::i32, cols * w.groups(), w.col_sums);
    w.qmax = 0;  // the range decides which kernels may run (kernels::activation_qpath)
    for (std::size_t i = 0; i < w.data.size(); ++i) w.qmax = std::max(w.qmax, std::abs(std::int32_t(w.data[i])));
    return w;
}

/// A linear layer from checkpoint tensors `weight` [out, in] and, if non-empty, `bias` [out].
template <WeightPolicy W>
Linear<W> load_linear(const io::Checkpoint& ck, const std::string& weight, const std::string& bias, std::size_t out, std::size_t in) {
    if constexpr (!std::is_same_v<W, F32> && !std::is_same_v<W, BF16>) {
        if (ck.contains(PackedNames(weight).data)) {  // already quantised by `docvlm quantize`: no repacking
            kernels::QuantizedWeight q = read_packed(ck, weight, out, in);
            std::size_t want_group = 0;
            if constexpr (!std::is_same_v<W, Int8PerChannel>) want_group = std::size_t(W::group);
            if (q.group != want_group)
                detail::fail(ck.source(), ": '", weight, "' was quantised with group ", q.group, ", the model type wants ", want_group);
            if (bias.empty()) return Linear<W>(std::move(q));
            const Array<float> b = load_tensor(ck, bias, {out});
            return Linear<W>(std::move(q), b.data());
        }
    }
    if (ck.contains(weight) && ck.info(weight).dtype == DType::i8) {  // int8 per output channel + `<weight>_scale`
        const std::string sname = weight + "_scale";
        const auto& info = ck.info(weight);
        if (info.shape != std::vector<std::size_t>{out, in}) {
            std::string got;
            for (std::size_t d : info.shape) got += (got.empty() ? "" : ", ") + std::to_string(d);
            detail::fail(ck.source(), ": int8 tensor '", weight, "' has shape [", got, "], the model expects [", out, ", ", in, "]");
        }
        if (!ck.contains(sname)) detail::fail(ck.source(), ": int8 tensor '", weight, "' has no scales ('", sname, "')");
        const Array<float> s = load_tensor(ck, sname, {out});
        std::vector<std::int8_t> q(out * in);
        std::memcpy(q.data(), ck.bytes(weight).data(), q.size());
        for (std::size_t i = 0; i < q.size(); ++i)
            if (q[i] == -128) detail::fail(ck.source(), ": int8 tensor '", weight, "' holds -128 (symmetric int8 lies in [-127, 127])");
        for (std::size_t r = 0; r < out; ++r)
            if (!(s(r) >= 0.0f) || !std::isfinite(s(r))) detail::fail(ck.source(), ": '", sname, "' holds a negative or non-finite scale");
        Array<float> b;
        if (!bias.empty()) b = load_tensor(ck, bias, {out});
        if constexpr (std::is_same_v<W, Int8PerChannel>) {
            Linear<W> l(kernels::pack_weight(q.data(), s.data(), out, in, 0), bias.empty() ? nullptr : b.data());
            return l;
        } else {
            std::vector<float> w(out * in);
            for (std::size_t r = 0; r < out; ++r)
                for (std::size_t c = 0; c < in; ++c) w[r * in + c] = float(q[r * in + c]) * s(r);
            return Linear<W>(w.data(), out, in, bias.empty() ? nullptr : b.data());
        }
    }
    if (!ck.contains(weight) && ck.contains(PackedNames(weight).data))
        detail::fail(ck.source(), ": '", weight, "' is stored as packed int8 (docvlm quantize); load it with an int8 weight policy");
    const Array<float> w = load_tensor(ck, weight, {out, in});
    if (bias.empty()) return Linear<W>(w.data(), out, in);
    const Array<float> b = load_tensor(ck, bias, {out});
    return Linear<W>(w.data(), out, in, b.data());
}

/// LayerNorm from `<prefix>.weight` and `<prefix>.bias` [dim].
inline LayerNorm load_layer_norm(const io::Checkpoint& ck, const std::string& prefix, std::size_t dim, float eps) {
    const auto w = load_tensor(ck, prefix + ".weight", {dim}), b = load_tensor(ck, prefix + ".bias", {dim});
    return LayerNorm({w.begin(), w.end()}, {b.begin(), b.end()}, eps);
}

/// RMSNorm from `name` [dim].
inline RMSNorm load_rms_norm(const io::Checkpoint& ck, const std::string& name, std::size_t dim, float eps) {
    const auto w = load_tensor(ck, name, {dim});
    return RMSNorm({w.begin(), w.end()}, eps);
}

DOCVLM_NAMESPACE_END
