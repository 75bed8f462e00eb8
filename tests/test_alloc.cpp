// "No heap allocation per decoded token": global operator new is replaced in this test binary by
// a counting one, and decode steps after warm-up must not allocate at all.
#include "test_util.hpp"

#include <docvlm/model/model.hpp>
#include <docvlm/presets/docvlm_small.hpp>
#include <docvlm/presets/llava15.hpp>
#include <docvlm/presets/qwen2vl.hpp>

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<std::size_t> g_allocations{0};

void* counted_alloc(std::size_t n, std::size_t align) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    void* p = align > alignof(std::max_align_t) ? std::aligned_alloc(align, (n + align - 1) / align * align) : std::malloc(n ? n : 1);
    if (!p) throw std::bad_alloc();
    return p;
}
}  // namespace

void* operator new(std::size_t n) { return counted_alloc(n, 0); }
void* operator new[](std::size_t n) { return counted_alloc(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) { return counted_alloc(n, std::size_t(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted_alloc(n, std::size_t(a)); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    try {
        return counted_alloc(n, 0);
    } catch (...) {
        return nullptr;
    }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
    try {
        return counted_alloc(n, 0);
    } catch (...) {
        return nullptr;
    }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

using namespace docvlm;

TEST_SUITE("alloc") {

TEST_CASE("decode steps allocate nothing after warm-up (f32 and int8 weights)") {
    // One thread: kernels keep thread-local scratch, so a pool worker that first runs a kernel
    // after the warm-up (the calling thread may take every piece of a job while a worker wakes:
    // seen under ASan on a loaded 2-core machine) grows its slot once — a cost per thread, not per
    // token, that would make this count depend on scheduling.
    set_num_threads(1);
    const std::string golden = test::data("golden/qwen2vl-tiny-a");
    auto check = [&](const auto& model) {
        std::vector<std::int32_t> ids(40);
        for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = std::int32_t(10 + i);
        auto ctx = model.context(128);
        std::span<const float> l = ctx.prefill(ids, {}, {});
        std::int32_t t = 5;
        for (int i = 0; i < 3; ++i) l = ctx.decode_step(t);  // warm-up: scratch buffers reach their size
        const std::size_t before = g_allocations.load();
        for (int i = 0; i < 20; ++i) {
            l = ctx.decode_step(t);
            t = std::int32_t(std::max_element(l.begin(), l.end()) - l.begin());
        }
        CHECK(g_allocations.load() - before == 0);
    };
    check(Model<presets::Qwen2VL<F32>>::load(golden));
    check(Model<presets::Qwen2VL<Int8PerChannel>>::load(golden));
    check(Model<presets::Llava15<F32>>::load(test::data("golden/llava-tiny-a")));
}

TEST_CASE("docvlm-small's decode steps (gated cross-attention in the decoder) allocate nothing after warm-up") {
    set_num_threads(1);  // as above
    const auto model = load_default_model();
    io::Image crop(96, 24, 1, 255);
    for (std::size_t i = 0; i < crop.pixels.size(); ++i) crop.pixels[i] = std::uint8_t(i % 7 == 0 ? 0 : 255);
    const Tensor<float, 2> vis = model.encode_image(crop);
    auto ctx = model.context();
    const std::int32_t task = model.dims().task_token("text");
    std::span<const float> l = ctx.prefill(vis, std::span(&task, 1));
    std::int32_t t = 5;
    for (int i = 0; i < 3; ++i) l = ctx.decode_step(t);
    const std::size_t before = g_allocations.load();
    for (int i = 0; i < 20; ++i) {
        l = ctx.decode_step(t);
        t = std::int32_t(std::max_element(l.begin(), l.end()) - l.begin());
    }
    CHECK(g_allocations.load() - before == 0);
}

}  // TEST_SUITE
