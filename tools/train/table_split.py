"""The table task as split-and-merge maps (model.TableSplit): training targets from a grid answer
(common.table_tokens) and the grid read back from the maps. include/docvlm/pipeline/table_split.hpp
reads the maps the same way (read_split_grid); the test data of tests/data/gated-tiny checks both.

Targets, for a table input of H x W pixels (PATCH-pixel patches, rows x cols of them):
  row separator [H]: the pixel rows between one row's ink extent and the next one's (at least two
      pixel rows around their meeting point when the extents touch);
  column separator [W]: the same between columns;
  local row separator [cols, H]: the row separator where, at this patch column (its column: the
      column extent nearest to the patch's centre), the cells above and below are different cells
      (not one cell spanning both rows);
  local column separator [rows, W]: the same for columns, per patch row.

Reading the grid (read_grid): the table's lines are the runs of pixel rows (columns) whose row
(column) separator probability is at most SEPARATOR (or in a run that never reaches PEAK) inside
the extent of the input's ink, keeping those
with text ink (a pixel row darker than ink_threshold somewhere but not across most of the table: a rule is
not a row); then a cell is joined to the one on its left (above) where the mean local separator
probability over the gap between them, in the patch rows (columns) of its row (column), is below
JOIN; joins are grown into rectangles row by row, left to right (the first cell of a span decides).
"""
from __future__ import annotations

import numpy as np

import common as C

RULE_SHARE = 0.6  # a pixel row (column) dark over more than this share of the ink extent is a rule
SEPARATOR = 0.5  # a row (column) separator where its probability is above this
PEAK = 0.7  # ... in a run of such positions whose highest probability reaches this
JOIN = 0.1  # cells joined where the mean local separator probability between them is below this


def parse_grid(ids) -> tuple[list, list, list]:
    """A grid answer -> (column extents [(x0, x1)] in pixels, ends exclusive, row extents [(y0, y1)],
    cell ids [[int]] per row: one id per grid position, equal for the positions of one cell)."""
    cols, ext, kinds = C.grid_parts(ids)
    px = lambda e: (e[0] * C.TABLE_Q, (e[1] + 1) * C.TABLE_Q)
    keep = [r for r, k in enumerate(kinds) if k]
    return [px(e) for e in cols], [px(ext[r]) for r in keep], cell_ids([kinds[r] for r in keep])


def cell_ids(kinds: list[list[int]]) -> list[list[int]]:
    """OTSL kinds per row -> one id per grid position (lcel / xcel: the left one's, ucel: the upper one's)."""
    out, nxt = [], 0
    for r, row in enumerate(kinds):
        ids = []
        for c, k in enumerate(row):
            if k in (C.LCEL, C.XCEL) and c > 0:
                ids.append(ids[c - 1])
            elif k == C.UCEL and r > 0 and c < len(out[r - 1]):
                ids.append(out[r - 1][c])
            else:
                ids.append(nxt)
                nxt += 1
        out.append(ids)
    return out


def structure(ids: list[list[int]]) -> list[list[int]]:
    """Cell ids -> OTSL kinds without the filled / empty distinction (FCEL for both)."""
    kinds = []
    for r, row in enumerate(ids):
        out = []
        for c, i in enumerate(row):
            left = c > 0 and row[c - 1] == i
            up = r > 0 and c < len(ids[r - 1]) and ids[r - 1][c] == i
            out.append(C.XCEL if left and up else C.LCEL if left else C.UCEL if up else C.FCEL)
        kinds.append(out)
    return kinds


def _gaps(ext: list[tuple], n: int) -> list[tuple[int, int]]:
    """Pixel ranges between consecutive extents (at least 2 pixels, clipped to [0, n))."""
    out = []
    for (_, a), (b, _) in zip(ext, ext[1:]):
        if b - a < 2:
            m = (a + b) // 2
            a, b = m - 1, m + 1
        out.append((min(n, max(0, a)), min(n, b)))
    return out


def _nearest(ext: list[tuple], v: float) -> int:
    return int(np.argmin([max(lo - v, 0, v - hi) for lo, hi in ext]))


def _widen(gaps: list[tuple[int, int]], ext: list[tuple], text: np.ndarray) -> list[tuple[int, int]]:
    """Each gap grown over the positions without text ink next to it (the extents are multiples of
    TABLE_Q: the white between two rows reaches up to TABLE_Q - 1 pixels into them), never past the
    neighbouring extents' far ends."""
    out, n = [], len(text)
    for (a, b), (lo, _), (_, hi) in zip(gaps, ext, ext[1:]):
        a, b = min(a, n), min(b, n)
        while a - 1 > lo and not text[a - 1]:
            a -= 1
        while b < min(hi, n) - 1 and not text[b]:
            b += 1
        out.append((a, b))
    return out


def targets(ids, rows: int, cols: int, img: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """(local row [cols, H], local column [rows, W], row [H], column [W]) float32 0/1 targets of a
    table input of rows x cols patches; with the input image, every separator covers the white
    next to it as well (_widen)."""
    return targets_of_grid(*parse_grid(ids), rows, cols, img)


def targets_of_grid(cx: list, ry: list, cid: list, rows: int, cols: int, img: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """targets() of a grid given as parse_grid's parts (extents in input pixels, ends exclusive)."""
    P = C.PATCH
    H, W = rows * P, cols * P
    lr, lc = np.zeros((cols, H), np.float32), np.zeros((rows, W), np.float32)
    gr, gc = np.zeros(H, np.float32), np.zeros(W, np.float32)
    if not cx or not ry:
        return lr, lc, gr, gc
    row_gaps, col_gaps = _gaps(ry, H), _gaps(cx, W)
    if img is not None:
        x = np.full((H, W), 255, np.uint8)  # the image, padded with white to the input's size
        x[:min(H, img.shape[0]), :min(W, img.shape[1])] = img[:H, :W]
        dark = x < ink_threshold(x)
        ys, xs = np.nonzero(dark)
        if len(ys):
            ink_w, ink_h = int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)
            row_gaps = _widen(row_gaps, ry, text_lines(dark.sum(1), ink_w))
            col_gaps = _widen(col_gaps, cx, text_lines(dark.sum(0), ink_h))
    for r, (a, b) in enumerate(row_gaps):
        gr[a:b] = 1
        for pc in range(cols):
            c = _nearest(cx, pc * P + P / 2)
            if c < len(cid[r]) and c < len(cid[r + 1]) and cid[r][c] != cid[r + 1][c]:
                lr[pc, a:b] = 1
    for c, (a, b) in enumerate(col_gaps):
        gc[a:b] = 1
        for pr in range(rows):
            r = _nearest(ry, pr * P + P / 2)
            if c + 1 < len(cid[r]) and cid[r][c] != cid[r][c + 1]:
                lc[pr, a:b] = 1
    return lr, lc, gr, gc


def text_lines(dark_counts: np.ndarray, extent: int) -> np.ndarray:
    """Which pixel rows (columns) hold text ink: some dark pixels, but not a rule's share."""
    return (dark_counts > 0) & (dark_counts <= RULE_SHARE * max(1, extent))


def _lines(sep: np.ndarray, text: np.ndarray) -> list[tuple[int, int]]:
    """Runs of non-separator positions inside the ink's extent that hold text."""
    idx = np.flatnonzero(text)
    if len(idx) == 0:
        return []
    out, start = [], None
    for i in range(int(idx[0]), int(idx[-1]) + 1):
        if not sep[i]:
            if start is None:
                start = i
        elif start is not None:
            out.append((start, i))
            start = None
    if start is not None:
        out.append((start, int(idx[-1]) + 1))
    return [(a, b) for a, b in out if text[a:b].any()]


def ink_threshold(img: np.ndarray) -> float:
    """INK, or halfway between the darkest pixel and white where even that is lighter (faint tables)."""
    return max(float(C.INK), (float(img.min()) + 255.0) / 2)


def separators(prob: np.ndarray, separator: float = SEPARATOR, peak: float = PEAK) -> np.ndarray:
    """The positions above `separator`, in runs that reach `peak` somewhere (hysteresis: a blip
    just over the threshold is no separator)."""
    sep = prob > separator
    i, n = 0, len(sep)
    while i < n:
        if not sep[i]:
            i += 1
            continue
        j = i
        while j < n and sep[j]:
            j += 1
        if prob[i:j].max() < peak:
            sep[i:j] = False
        i = j
    return sep


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def read_grid(img: np.ndarray, local_r: np.ndarray, local_c: np.ndarray, row_l: np.ndarray, col_l: np.ndarray,
              height: int, width: int, separator: float = SEPARATOR, join: float = JOIN, peak: float = PEAK):
    """img uint8 [H, W] (the table input), the logits of TableSplit.maps for it (batch index taken),
    the input's content size -> (column extents, row extents, cell ids) as parse_grid gives them."""
    P = C.PATCH
    dark = img[:height, :width] < ink_threshold(img[:height, :width])
    ys, xs = np.nonzero(dark)
    if len(ys) == 0:
        return [], [], []
    ink_w, ink_h = int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)
    rows = _lines(separators(_sigmoid(row_l[:height]), separator, peak), text_lines(dark.sum(1), ink_w))
    cols = _lines(separators(_sigmoid(col_l[:width]), separator, peak), text_lines(dark.sum(0), ink_h))
    if not rows or not cols:
        return cols, rows, []
    pr_all, pc_all = local_c.shape[0], local_r.shape[0]

    def bands(ext, n):  # the patch indices whose centres fall in each extent (else the nearest one)
        out = []
        for a, b in ext:
            k = [i for i in range(n) if a <= i * P + P / 2 < b]
            out.append(k or [min(n - 1, int((a + b) / 2 // P))])
        return out

    prow, pcol = bands(rows, pr_all), bands(cols, pc_all)
    R, K = len(rows), len(cols)
    join_l = np.zeros((R, K), bool)
    join_u = np.full((R, K), 0.0)
    for r in range(R):
        for c in range(1, K):
            a, b = cols[c - 1][1], cols[c][0]
            join_l[r, c] = _sigmoid(local_c[prow[r], a:b]).mean() < join
    for r in range(1, R):
        a, b = rows[r - 1][1], rows[r][0]
        for c in range(K):
            join_u[r, c] = _sigmoid(local_r[pcol[c], a:b]).mean()
    ids = [[-1] * K for _ in range(R)]
    nxt = 0
    for r in range(R):
        for c in range(K):
            if ids[r][c] >= 0:
                continue
            c1 = c
            while c1 + 1 < K and ids[r][c1 + 1] < 0 and join_l[r, c1 + 1]:
                c1 += 1
            r1 = r
            while r1 + 1 < R and all(ids[r1 + 1][k] < 0 for k in range(c, c1 + 1)) and join_u[r1 + 1, c:c1 + 1].mean() < join:
                r1 += 1
            for rr in range(r, r1 + 1):
                for k in range(c, c1 + 1):
                    ids[rr][k] = nxt
            nxt += 1
    return cols, rows, ids


def tile_of(c) -> tuple[int, int]:
    """The splitter's tile (patch rows, patch columns) for model.Config c: its rows, and the
    columns of the table task's width (TABLE_MAX_W) its column embeddings cover."""
    return c.max_rows, min(c.max_cols, C.TABLE_MAX_W // c.patch)


def tile_starts(n: int, tile: int, overlap: int) -> list[int]:
    """First patch of each tile along an axis of n patches: tiles of `tile` patches (fewer when n
    is smaller) that overlap by at least `overlap`, the last one ending at n."""
    if n <= tile:
        return [0]
    step = max(1, tile - overlap)
    starts = list(range(0, n - tile, step))
    return starts + [n - tile]


def tile_owner(n: int, starts: list[int], tile: int) -> list[int]:
    """For each patch along the axis: the tile (index into starts) whose middle it is nearest."""
    size = min(n, tile)
    return [min((i for i, s in enumerate(starts) if s <= p < s + size), key=lambda i: abs(starts[i] + size / 2 - p - 0.5))
            for p in range(n)]


def tiled_maps(split, x: np.ndarray, tile_rows: int, tile_cols: int, shift: int = 0):
    """The splitter's maps of a table input larger than its tower (x uint8 [H, W], multiples of
    PATCH): tiles of tile_rows x tile_cols patches overlapping by a quarter of a tile; the head's
    logits of every patch token come from the tile whose middle it is nearest, then are pooled
    over the whole table as one input would be (TableSplit.pool). With `shift` (0 < shift < PATCH
    pixels) the input is read a second time moved `shift` pixels right and down (white above, on
    the left and up to the next patch), and the row and column logits are the means of the two
    readings at each pixel (the local maps: the first reading's). The C++
    GatedVlmModel::table_split_maps reads a table the same way."""
    maps = _tiled_maps(split, x, tile_rows, tile_cols)
    if shift:
        h, w = x.shape
        P = C.PATCH
        moved = np.full(((h + shift + P - 1) // P * P, (w + shift + P - 1) // P * P), 255, np.uint8)
        moved[shift:shift + h, shift:shift + w] = x
        again = _tiled_maps(split, moved, tile_rows, tile_cols)
        maps[2] = (maps[2] + again[2][shift:shift + h]) / np.float32(2)
        maps[3] = (maps[3] + again[3][shift:shift + w]) / np.float32(2)
    return maps


def _tiled_maps(split, x: np.ndarray, tile_rows: int, tile_cols: int):
    import torch

    P = C.PATCH
    R, K = x.shape[0] // P, x.shape[1] // P
    rs, cs = tile_starts(R, tile_rows, tile_rows // 4), tile_starts(K, tile_cols, tile_cols // 4)
    tr, tc = min(R, tile_rows), min(K, tile_cols)
    ro, co = tile_owner(R, rs, tile_rows), tile_owner(K, cs, tile_cols)
    y = None
    with torch.no_grad():
        for i, r0 in enumerate(rs):
            for j, c0 in enumerate(cs):
                tile = np.ascontiguousarray(x[r0 * P:(r0 + tr) * P, c0 * P:(c0 + tc) * P])
                yt = split.head_logits(torch.from_numpy(C.patchify(tile))[None].to(split.anchor.dtype), tr, tc)
                if y is None:
                    y = torch.zeros(1, K, R, *yt.shape[3:])
                for c in range(tc):
                    if co[c0 + c] != j:
                        continue
                    keep = [r for r in range(tr) if ro[r0 + r] == i]
                    y[0, c0 + c, [r0 + r for r in keep]] = yt[0, c, keep]
        return [m[0].numpy() for m in split.pool(y)]
