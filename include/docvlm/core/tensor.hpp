// docvlm/core/tensor.hpp — tensor aliases over xtensor, non-owning views, aligned buffers, arenas.
//
// Owning containers are xtensor's (Tensor<T, N>). Weights stay where they are (an mmapped
// safetensors file, a packed aligned buffer) and are seen through TensorView<T, N>, a
// zero-copy xtensor adaptor. Hot loops take raw pointers (`view.data()`), never xt views.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>

#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xtensor.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

DOCVLM_NAMESPACE_BEGIN

/// Owning, row-major tensor with a static number of dimensions.
template <class T, std::size_t N>
using Tensor = xt::xtensor<T, N>;

/// Owning, row-major tensor with a run-time number of dimensions.
template <class T>
using Array = xt::xarray<T>;

/// Non-owning, row-major view of N-dimensional data living elsewhere (mmapped file, arena, buffer).
template <class T, std::size_t N>
using TensorView = xt::xtensor_adaptor<xt::xbuffer_adaptor<T*, xt::no_ownership, std::allocator<std::remove_const_t<T>>>, N>;

/// A view of `data` with the given row-major shape. The memory must outlive the view.
template <class T, std::size_t N>
TensorView<T, N> make_view(T* data, const std::array<std::size_t, N>& shape);

/// Byte alignment of every docvlm buffer: one cache line, enough for any AVX-512 load.
inline constexpr std::size_t buffer_alignment = 64;

/// An owning, 64-byte-aligned array of trivially copyable T. Move-only. Zero-filled on creation.
template <class T>
class AlignedBuffer {
    static_assert(std::is_trivially_copyable_v<T>, "AlignedBuffer holds trivially copyable elements");

public:
    AlignedBuffer() = default;
    explicit AlignedBuffer(std::size_t count);

    T* data() { return ptr_.get(); }
    const T* data() const { return ptr_.get(); }
    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    T& operator[](std::size_t i) { return ptr_.get()[i]; }
    const T& operator[](std::size_t i) const { return ptr_.get()[i]; }
    T* begin() { return data(); }
    T* end() { return data() + size_; }
    const T* begin() const { return data(); }
    const T* end() const { return data() + size_; }

private:
    struct Free {
        void operator()(T* p) const { ::operator delete[](static_cast<void*>(p), std::align_val_t(buffer_alignment)); }
    };
    std::unique_ptr<T[], Free> ptr_;
    std::size_t size_ = 0;
};

/// A bump allocator over one aligned block, sized once (e.g. at model load) and reset per use,
/// so hot loops never touch the heap. Allocations are 64-byte aligned and uninitialised.
class Arena {
public:
    Arena() = default;
    explicit Arena(std::size_t capacity_bytes) : block_(capacity_bytes) {}

    /// n elements of T; throws docvlm::Error when the arena is exhausted.
    template <class T>
    T* allocate(std::size_t n);
    /// Forgets every allocation (memory is reused by the next ones).
    void reset() { used_ = 0; }
    std::size_t used() const { return used_; }
    std::size_t capacity() const { return block_.size(); }

private:
    AlignedBuffer<std::byte> block_;
    std::size_t used_ = 0;
};

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

template <class T, std::size_t N>
TensorView<T, N> make_view(T* data, const std::array<std::size_t, N>& shape) {
    std::size_t n = 1;
    for (std::size_t d : shape) n *= d;
    return xt::adapt(static_cast<T*>(data), n, xt::no_ownership(), shape);  // prvalue: the view stores a plain pointer
}

template <class T>
AlignedBuffer<T>::AlignedBuffer(std::size_t count) : size_(count) {
    if (count == 0) return;
    if (count > std::size_t(-1) / sizeof(T) - buffer_alignment)
        detail::fail("AlignedBuffer: ", count, " elements of ", sizeof(T), " bytes overflow the address space");
    const std::size_t bytes = (count * sizeof(T) + buffer_alignment - 1) / buffer_alignment * buffer_alignment;
    void* p = ::operator new[](bytes, std::align_val_t(buffer_alignment));
    std::memset(p, 0, bytes);
    ptr_.reset(static_cast<T*>(p));
}

template <class T>
T* Arena::allocate(std::size_t n) {
    static_assert(alignof(T) <= buffer_alignment);
    const std::size_t start = (used_ + buffer_alignment - 1) / buffer_alignment * buffer_alignment;
    if (n > (capacity() - std::min(start, capacity())) / sizeof(T))
        detail::fail("Arena: ", n, " elements of ", sizeof(T), " bytes do not fit (", used_, " of ", capacity(),
                     " bytes used)");
    used_ = start + n * sizeof(T);
    return reinterpret_cast<T*>(block_.data() + start);
}

DOCVLM_NAMESPACE_END
