// docvlm/kernels/tiling.hpp — how GEMM-like kernels split [m rows] x [panels] of output across threads.
#pragma once

#include <docvlm/core/config.hpp>
#include <docvlm/core/error.hpp>
#include <docvlm/core/thread_pool.hpp>

#include <algorithm>
#include <cstddef>

DOCVLM_NAMESPACE_BEGIN
namespace kernels::detail {

/// Calls block(m_begin, m_end, panel) for every (row block, weight panel) pair, in parallel.
/// Rows are grouped in blocks whose activations (row_bytes each) fit `budget` bytes of L2 and that
/// are equal in size (a multiple of mr) so threads get equal shares; one thread visits every panel
/// of its share for one block in turn, so the block stays in cache while weight panels stream
/// past. Panels are split into chunks when there are too few row blocks to feed every thread
/// (e.g. decoding, m = 1) or when the blocks do not divide evenly among the threads.
template <class Block>
void parallel_blocks(std::size_t m, std::size_t row_bytes, std::size_t budget, std::size_t mr, std::size_t panels,
                     ThreadPool& pool, Block&& block) {
    if (m == 0 || panels == 0) return;
    const std::size_t mc_max = std::max(mr, budget / std::max<std::size_t>(row_bytes, 1) / mr * mr);
    const std::size_t threads = pool.size();
    const std::size_t nblocks = (m + mc_max - 1) / mc_max;
    const std::size_t mc = ((m + nblocks - 1) / nblocks + mr - 1) / mr * mr;
    const std::size_t mblocks = (m + mc - 1) / mc, want = 4 * threads;
    std::size_t nchunks = 1;
    if (mblocks < want) nchunks = std::min(panels, (want + mblocks - 1) / mblocks);
    else if (mblocks % threads != 0) nchunks = std::min(panels, threads);  // share the odd blocks evenly
    // Few row blocks: items run chunk-major, so each thread takes a range of panels over every row
    // (equal shares even when the last block is short); else block-major.
    const bool chunk_major = mblocks < want;
    pool.parallel_for_balanced(mblocks * nchunks, [&](std::size_t begin, std::size_t end) {
        for (std::size_t item = begin; item < end; ++item) {
            const std::size_t mb = chunk_major ? item % mblocks : item / nchunks, nc = chunk_major ? item / mblocks : item % nchunks;
            const std::size_t p0 = panels * nc / nchunks, p1 = panels * (nc + 1) / nchunks, m_end = std::min(m, (mb + 1) * mc);
            for (std::size_t p = p0; p < p1; ++p) block(mb * mc, m_end, p);
        }
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

/// parallel_tiles with K split in chunks of at most `kc` (in the caller's units of K): for every
/// (row block, panel), each chunk in turn visits every tile of the block, so that chunk of the
/// weight panel stays in L1 while the block's rows pass over it. Partial sums wait between chunks
/// in a stack buffer of MaxRows x 32 values of type Part (no allocation), at most MaxRows rows per
/// block when K is split. Calls tile(m0, rows, panel, k0, kn, part) with part the tile's [rows][32]
/// partial sums: the kernel starts from zero when k0 == 0 and from part otherwise, and the tile is
/// finished when k0 + kn == k.
template <class Part, std::size_t MaxRows, class Tile>
void parallel_chunked_tiles(std::size_t m, std::size_t row_bytes, std::size_t budget, std::size_t mr, std::size_t panels,
                            std::size_t k, std::size_t kc, ThreadPool& pool, Tile&& tile) {
    const std::size_t chunks = (k + kc - 1) / kc, step = (k + chunks - 1) / chunks;
    parallel_blocks(m, row_bytes, budget, mr, panels, pool, [&](std::size_t m_begin, std::size_t m_end, std::size_t p) {
        alignas(64) Part part[MaxRows * 32];
        if (m_end - m_begin > MaxRows && chunks > 1)
            docvlm::detail::fail("GEMM: a row block of ", m_end - m_begin, " rows exceeds ", MaxRows, " (internal error)");
        for (std::size_t k0 = 0; k0 < k; k0 += step)
            for (std::size_t m0 = m_begin; m0 < m_end; m0 += mr)
                tile(m0, std::min(mr, m_end - m0), p, k0, std::min(step, k - k0), chunks > 1 ? part + (m0 - m_begin) * 32 : part);
    });
}

}  // namespace kernels::detail
DOCVLM_NAMESPACE_END
