// docvlm/kernels/tiling.hpp — how GEMM-like kernels split [m rows] x [panels] of output across threads.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/tensor.hpp>
#include <docvlm/core/thread_pool.hpp>

#include <algorithm>
#include <cstddef>

DOCVLM_NAMESPACE_BEGIN
namespace kernels::detail {

/// Most weight panels in one item when panels are split among few row blocks (decoding's GEMV):
/// the last items of a job are then short, so a thread that falls behind there (a busy sibling
/// core, a hypervisor) keeps the other waiting for little. The lm_head of a Qwen2-0.5B-sized
/// decoder (4748 panels, 136 MB of int8 weights) went from 8 items of 17 MB to 76 of 1.8 MB; on
/// a 2-core Zen 3 the calling thread then waited 28-37 us at its end instead of 58-327 us.
inline constexpr std::size_t max_item_panels = 64;

/// Calls range(m_begin, m_end, p0, p1) for every (row block, range of weight panels) item, in
/// parallel. Rows are grouped in blocks whose activations (row_bytes each) fit `budget` bytes of L2
/// and that are equal in size (a multiple of mr) so threads get equal shares; one thread visits
/// every panel of its item for one block in turn, so the block stays in cache while weight panels
/// stream past. Panels are split into ranges when there are too few row blocks to feed every
/// thread (e.g. decoding, m = 1; then at most max_item_panels each) or when the blocks do not
/// divide evenly among the threads.
template <class Range>
void parallel_block_ranges(std::size_t m, std::size_t row_bytes, std::size_t budget, std::size_t mr, std::size_t panels,
                           ThreadPool& pool, Range&& range) {
    if (m == 0 || panels == 0) return;
    const std::size_t mc_max = std::max(mr, budget / std::max<std::size_t>(row_bytes, 1) / mr * mr);
    const std::size_t threads = pool.size();
    const std::size_t nblocks = (m + mc_max - 1) / mc_max;
    const std::size_t mc = ((m + nblocks - 1) / nblocks + mr - 1) / mr * mr;
    const std::size_t mblocks = (m + mc - 1) / mc, want = 4 * threads;
    std::size_t nchunks = 1;
    if (mblocks < want) {
        nchunks = std::min(panels, std::max((want + mblocks - 1) / mblocks, (panels + max_item_panels - 1) / max_item_panels));
        while (mblocks * nchunks % threads != 0 && nchunks < panels) ++nchunks;  // as many items for every thread
    } else if (mblocks % threads != 0) {
        nchunks = std::min(panels, threads);  // share the odd blocks evenly
    }
    // Few row blocks: items run chunk-major, so each thread takes a range of panels over every row
    // (equal shares even when the last block is short); else block-major.
    const bool chunk_major = mblocks < want;
    pool.parallel_for_balanced(mblocks * nchunks, [&](std::size_t begin, std::size_t end) {
        for (std::size_t item = begin; item < end; ++item) {
            const std::size_t mb = chunk_major ? item % mblocks : item / nchunks, nc = chunk_major ? item / mblocks : item % nchunks;
            range(mb * mc, std::min(m, (mb + 1) * mc), panels * nc / nchunks, panels * (nc + 1) / nchunks);
        }
    });
}

/// Calls block(m_begin, m_end, panel) for every (row block, weight panel) pair, in parallel, as
/// parallel_block_ranges orders them.
template <class Block>
void parallel_blocks(std::size_t m, std::size_t row_bytes, std::size_t budget, std::size_t mr, std::size_t panels,
                     ThreadPool& pool, Block&& block) {
    parallel_block_ranges(m, row_bytes, budget, mr, panels, pool, [&](std::size_t m_begin, std::size_t m_end, std::size_t p0, std::size_t p1) {
        for (std::size_t p = p0; p < p1; ++p) block(m_begin, m_end, p);
    });
}

/// Calls tile(m0, rows, panel) for every tile of at most `mr` rows and one weight panel, in
/// parallel, block by block as parallel_blocks orders them.
template <class Tile>
void parallel_tiles(std::size_t m, std::size_t row_bytes, std::size_t budget, std::size_t mr, std::size_t panels,
                    ThreadPool& pool, Tile&& tile) {
    parallel_blocks(m, row_bytes, budget, mr, panels, pool, [&](std::size_t m_begin, std::size_t m_end, std::size_t p) {
        for (std::size_t m0 = m_begin; m0 < m_end; m0 += mr) tile(m0, std::min(mr, m_end - m0), p);
    });
}

/// A callback that does nothing (the default for the tile loops' hooks).
struct NoHook {
    template <class... A>
    void operator()(A&&...) const noexcept {}
};

/// Calls tile(m0, rows, panel) for every tile of at most `mr` rows and one weight panel, in
/// parallel: items of (row block, panel range) as parallel_block_ranges makes them, and inside an
/// item the panels in groups of `group`, each tile of the block visiting every panel of a group in
/// turn before the next tile. A tile's activations then stay in L1 while the group's panels (sized
/// by the caller to stay in L2) pass over it, and its output rows are written in runs of `group`
/// panels instead of one panel's width at a time. begin(m_begin, m_end) and end(m_begin, m_end)
/// run on the item's thread before and after its tiles.
template <class Tile, class Begin = NoHook, class End = NoHook>
void parallel_grouped_tiles(std::size_t m, std::size_t row_bytes, std::size_t budget, std::size_t mr, std::size_t panels,
                            std::size_t group, ThreadPool& pool, Tile&& tile, Begin&& begin = {}, End&& end = {}) {
    group = std::max<std::size_t>(group, 1);
    parallel_block_ranges(m, row_bytes, budget, mr, panels, pool, [&](std::size_t m_begin, std::size_t m_end, std::size_t p0, std::size_t p1) {
        begin(m_begin, m_end);
        for (std::size_t g0 = p0; g0 < p1; g0 += group) {
            const std::size_t g1 = std::min(p1, g0 + group);
            for (std::size_t m0 = m_begin; m0 < m_end; m0 += mr)
                for (std::size_t p = g0; p < g1; ++p) tile(m0, std::min(mr, m_end - m0), p);
        }
        end(m_begin, m_end);
    });
}

/// Prefetches part `i` of `n` equal parts of [p, p + bytes) into L2 (prefetcht1, one per line).
inline void prefetch_part_l2(const void* p, std::size_t bytes, std::size_t i, std::size_t n) {
    const char* c = static_cast<const char*>(p);
    const std::size_t lines = (bytes + 63) / 64, b = lines * i / n, e = lines * (i + 1) / n;
    // asm volatile: GCC deletes a loop of __builtin_prefetch as having no effect.
    for (std::size_t l = b; l < e; ++l) {
#if DOCVLM_X86_64
        asm volatile("prefetcht1 %0" : : "m"(c[64 * l]));
#else
        __builtin_prefetch(c + 64 * l, 0, 2);
#endif
    }
}

/// Fewest tiles per chunk for which parallel_chunked_tiles calls `ahead`: with fewer (decoding,
/// m = 1) the weights stream once, and a chunk asked for all at once slowed GEMV by 10-40 %.
inline constexpr std::size_t min_ahead_tiles = 4;

/// parallel_tiles with K split in chunks of at most `kc` (in the caller's units of K): for every
/// (row block, panel), each chunk in turn visits every tile of the block, so that chunk of the
/// weight panel stays in L1 while the block's rows pass over it. Partial sums wait between chunks
/// in a stack buffer of MaxRows x 32 values of type Part (no allocation), at most MaxRows rows per
/// block when K is split. Calls tile(m0, rows, panel, k0, kn, part) with part the tile's [rows][32]
/// partial sums: the kernel starts from zero when k0 == 0 and from part otherwise, and the tile is
/// finished when k0 + kn == k. Every output sees its chunks in order of K.
///
/// Long rows (K large): when fewer than `min_block_rows` whole rows fit the budget (and m is
/// larger), blocks that small would read every weight chunk from memory for one or two tiles.
/// Then K is cut into slices of whole chunks, with min_block_rows rows of a slice in the budget,
/// and each item visits slice by slice every panel of its range: part points into a per-thread
/// buffer of [tiles][panels of the range] partial tiles (allocated once per thread).
///
/// Hooks: begin_block(m_begin, m_end, panel) before a block's tiles for a panel (e.g. to pack its
/// rows once; all of K); ahead(panel, k0, kn, i, n) after tile i of the n tiles of each chunk,
/// naming the chunk that comes next, so the caller can prefetch part i of n of its weights into
/// L2 while this chunk computes: without it the first tile of every chunk waits for its weights
/// from L3 or memory. Only when a chunk has at least min_ahead_tiles tiles.
template <class Part, std::size_t MaxRows, class Tile, class BeginBlock = NoHook, class Ahead = NoHook>
void parallel_chunked_tiles(std::size_t m, std::size_t row_bytes, std::size_t budget, std::size_t mr, std::size_t panels,
                            std::size_t k, std::size_t kc, std::size_t min_block_rows, ThreadPool& pool, Tile&& tile,
                            BeginBlock&& begin_block = {}, Ahead&& ahead = {}) {
    const std::size_t chunks = (k + kc - 1) / kc, step = (k + chunks - 1) / chunks;
    const std::size_t full_rows = budget / std::max<std::size_t>(row_bytes, 1);
    if (min_block_rows > 0 && chunks > 1 && full_rows < min_block_rows && m > full_rows) {
        const std::size_t unit_bytes = std::max<std::size_t>(1, row_bytes / k);
        const std::size_t slice = std::max<std::size_t>(1, budget / (min_block_rows * unit_bytes * step)) * step;
        parallel_block_ranges(m, slice * unit_bytes, budget, mr, panels, pool,
                              [&](std::size_t m_begin, std::size_t m_end, std::size_t p0, std::size_t p1) {
            thread_local AlignedBuffer<Part> buffer;
            const std::size_t tiles = (m_end - m_begin + mr - 1) / mr, np = p1 - p0, tile_size = mr * 32;
            if (buffer.size() < tiles * np * tile_size) buffer = AlignedBuffer<Part>(tiles * np * tile_size);
            begin_block(m_begin, m_end, p0);
            for (std::size_t s0 = 0; s0 < k; s0 += slice) {
                const std::size_t s1 = std::min(k, s0 + slice);
                for (std::size_t p = p0; p < p1; ++p)
                    for (std::size_t k0 = s0; k0 < s1; k0 += step) {
                        const std::size_t kn = std::min(step, k - k0);
                        // The chunk after this one: the next of the slice, else the slice's first
                        // of the next panel, else the next slice's first of the range's first panel.
                        std::size_t next_p = p, next_k0 = k0 + step;
                        if (next_k0 >= s1) {
                            next_p = p + 1 < p1 ? p + 1 : p0;
                            next_k0 = p + 1 < p1 ? s0 : s1;
                        }
                        for (std::size_t i = 0; i < tiles; ++i) {
                            const std::size_t m0 = m_begin + i * mr;
                            tile(m0, std::min(mr, m_end - m0), p, k0, kn, buffer.data() + (i * np + (p - p0)) * tile_size);
                            if (next_k0 < k && tiles >= min_ahead_tiles) ahead(next_p, next_k0, std::min(step, k - next_k0), i, tiles);
                        }
                    }
            }
        });
        return;
    }
    parallel_blocks(m, row_bytes, budget, mr, panels, pool, [&](std::size_t m_begin, std::size_t m_end, std::size_t p) {
        alignas(64) Part part[MaxRows * 32];
        if (m_end - m_begin > MaxRows && chunks > 1)
            docvlm::detail::fail("GEMM: a row block of ", m_end - m_begin, " rows exceeds ", MaxRows, " (internal error)");
        begin_block(m_begin, m_end, p);
        const std::size_t tiles = (m_end - m_begin + mr - 1) / mr;
        for (std::size_t k0 = 0; k0 < k; k0 += step) {
            const bool last = k0 + step >= k;
            const std::size_t next_p = last ? p + 1 : p, next_k0 = last ? 0 : k0 + step;
            for (std::size_t i = 0; i < tiles; ++i) {
                const std::size_t m0 = m_begin + i * mr;
                tile(m0, std::min(mr, m_end - m0), p, k0, std::min(step, k - k0), chunks > 1 ? part + (m0 - m_begin) * 32 : part);
                if (next_p < panels && tiles >= min_ahead_tiles) ahead(next_p, next_k0, std::min(step, k - next_k0), i, tiles);
            }
        }
    });
}

}  // namespace kernels::detail
DOCVLM_NAMESPACE_END
