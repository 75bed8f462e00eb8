// docvlm/core/thread_pool.hpp — one pool of threads for the process, and parallel_for over it.
//
// Kernels split their work by output tiles with parallel_for(n, fn): fn(begin, end) is called on
// disjoint sub-ranges covering [0, n), on the pool's workers and on the calling thread, and the
// call returns when all are done. A parallel_for issued from inside a pool task runs serially
// (no deadlock, no oversubscription); several application threads may call it at once (their
// jobs take turns, each using every worker). An exception thrown by fn reaches the caller.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

DOCVLM_NAMESPACE_BEGIN

/// Threads to use by default: $DOCVLM_NUM_THREADS if set (>= 1), else std::thread::hardware_concurrency().
std::size_t default_thread_count();

class ThreadPool {
public:
    /// A pool whose jobs run on `threads` threads in all: the caller plus threads - 1 workers.
    explicit ThreadPool(std::size_t threads = default_thread_count());
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    /// Number of threads a job runs on (workers + the calling thread).
    std::size_t size() const { return workers_.size() + 1; }

    /// Calls fn(begin, end) on disjoint ranges covering [0, n), each at least `grain` long
    /// (or all of [0, n) when n < grain), in parallel; returns when all calls have returned.
    template <class F>
    void parallel_for(std::size_t n, F&& fn, std::size_t grain = 1);

    /// Calls fn(i, i + 1) for every i in [0, n), each index handed to whichever thread is free
    /// next: for many similar items on threads that may run at different speeds (a busy sibling
    /// core, a hypervisor's steal time, big and little cores), where equal fixed shares would leave
    /// the fast threads waiting for the slow one.
    template <class F>
    void parallel_for_balanced(std::size_t n, F&& fn);

private:
    using TaskFn = void (*)(void* ctx, std::size_t task);
    void run_job(TaskFn fn, void* ctx, std::size_t tasks);
    void run_tasks() noexcept;
    void worker_loop();

    std::vector<std::thread> workers_;
    std::mutex submit_;                       // one job at a time
    std::atomic<std::uint32_t> generation_{0};  // bumped to start a job
    std::atomic<std::uint32_t> remaining_{0};   // workers still busy with the current job
    std::atomic<std::size_t> next_task_{0};
    std::atomic<bool> stop_{false};
    TaskFn task_fn_ = nullptr;
    void* task_ctx_ = nullptr;
    std::size_t task_count_ = 0;
    std::mutex error_mutex_;
    std::exception_ptr error_;
};

/// The process-wide pool (created on first use with default_thread_count() threads).
ThreadPool& thread_pool();

/// Replaces the process-wide pool with one of n threads (n >= 1). Not while a job runs.
void set_num_threads(std::size_t n);

/// parallel_for on the process-wide pool.
template <class F>
void parallel_for(std::size_t n, F&& fn, std::size_t grain = 1) {
    thread_pool().parallel_for(n, std::forward<F>(fn), grain);
}

// ------------------------------------------------------------------------------------------------
// Implementation
// ------------------------------------------------------------------------------------------------

namespace detail {
inline thread_local bool inside_pool_task = false;

inline void cpu_relax() {
#if DOCVLM_X86_64 && defined(__GNUC__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) && defined(__GNUC__)
    asm volatile("yield");
#endif
}
}  // namespace detail

inline std::size_t default_thread_count() {
    if (const char* env = std::getenv("DOCVLM_NUM_THREADS")) {
        char* end = nullptr;
        const long v = std::strtol(env, &end, 10);
        if (end != env && *end == '\0' && v >= 1 && v <= 1024) return std::size_t(v);
        detail::fail("DOCVLM_NUM_THREADS=", env, ": expected an integer from 1 to 1024");
    }
    return std::max<std::size_t>(1, std::thread::hardware_concurrency());
}

inline ThreadPool::ThreadPool(std::size_t threads) {
    if (threads == 0) detail::fail("ThreadPool: thread count must be at least 1");
    workers_.reserve(threads - 1);
    for (std::size_t i = 0; i + 1 < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

inline ThreadPool::~ThreadPool() {
    stop_.store(true, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
    generation_.notify_all();
    for (auto& t : workers_) t.join();
}

inline void ThreadPool::run_tasks() noexcept {
    detail::inside_pool_task = true;
    for (;;) {
        const std::size_t t = next_task_.fetch_add(1, std::memory_order_relaxed);
        if (t >= task_count_) break;
        try {
            task_fn_(task_ctx_, t);
        } catch (...) {
            std::lock_guard lock(error_mutex_);
            if (!error_) error_ = std::current_exception();
        }
    }
    detail::inside_pool_task = false;
}

inline void ThreadPool::worker_loop() {
    std::uint32_t seen = 0;
    for (;;) {
        // Spin briefly (a decode step issues jobs every few microseconds), then sleep on a futex.
        for (int i = 0; i < 4000 && generation_.load(std::memory_order_acquire) == seen; ++i) detail::cpu_relax();
        generation_.wait(seen, std::memory_order_acquire);
        seen = generation_.load(std::memory_order_acquire);
        if (stop_.load(std::memory_order_acquire)) return;
        run_tasks();
        if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) remaining_.notify_one();
    }
}

inline void ThreadPool::run_job(TaskFn fn, void* ctx, std::size_t tasks) {
    std::lock_guard lock(submit_);
    task_fn_ = fn;
    task_ctx_ = ctx;
    task_count_ = tasks;
    error_ = nullptr;
    next_task_.store(0, std::memory_order_relaxed);
    remaining_.store(std::uint32_t(workers_.size()), std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_acq_rel);
    generation_.notify_all();
    run_tasks();
    for (std::uint32_t left; (left = remaining_.load(std::memory_order_acquire)) != 0;) {
        for (int i = 0; i < 4000 && remaining_.load(std::memory_order_acquire) == left; ++i) detail::cpu_relax();
        if (remaining_.load(std::memory_order_acquire) == left) remaining_.wait(left, std::memory_order_acquire);
    }
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

template <class F>
void ThreadPool::parallel_for(std::size_t n, F&& fn, std::size_t grain) {
    if (n == 0) return;
    grain = std::max<std::size_t>(grain, 1);
    const std::size_t pieces = std::min(size(), std::max<std::size_t>(1, n / grain));
    if (pieces <= 1 || detail::inside_pool_task || workers_.empty()) {
        fn(std::size_t(0), n);
        return;
    }
    struct Ctx {
        F* fn;
        std::size_t n, pieces;
    } ctx{&fn, n, pieces};
    run_job(
        [](void* c, std::size_t task) {
            auto* x = static_cast<Ctx*>(c);
            const std::size_t begin = x->n * task / x->pieces, end = x->n * (task + 1) / x->pieces;
            if (begin < end) (*x->fn)(begin, end);
        },
        &ctx, pieces);
}

template <class F>
void ThreadPool::parallel_for_balanced(std::size_t n, F&& fn) {
    if (n == 0) return;
    if (n == 1 || detail::inside_pool_task || workers_.empty()) {
        fn(std::size_t(0), n);
        return;
    }
    using Fn = std::remove_reference_t<F>;
    run_job([](void* c, std::size_t task) { (*static_cast<Fn*>(c))(task, task + 1); },
            const_cast<void*>(static_cast<const void*>(&fn)), n);
}

namespace detail {
inline std::mutex global_pool_mutex;
inline std::unique_ptr<ThreadPool> global_pool;
}  // namespace detail

inline ThreadPool& thread_pool() {
    std::lock_guard lock(detail::global_pool_mutex);
    if (!detail::global_pool) detail::global_pool = std::make_unique<ThreadPool>();
    return *detail::global_pool;
}

inline void set_num_threads(std::size_t n) {
    auto fresh = std::make_unique<ThreadPool>(n);
    std::lock_guard lock(detail::global_pool_mutex);
    detail::global_pool = std::move(fresh);
}

DOCVLM_NAMESPACE_END
